"""Student training over the plan with cached teacher outputs (shared by the distill stage and tuning trials)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from osr import OSRError
from osr.augment import MIXERS, BaseAug, PlannedStep, planned_steps
from osr.losses import STEP_LOSSES, Step, StepLoss, both_views, relabel_decision
from osr.models import load_init, new_model
from osr.objectives import NOISE_SHARE, logits_objective, masked, noise_exposed
from osr.pixels import noise_images, to_float
from osr.roles import SplitTensors
from osr.train import Batch, fingerprint, fit, fit_settings

if TYPE_CHECKING:  # annotations only: osr.config is not among the DVC deps of this code
    from osr.config import Params


def needs_live_teacher(augment_method: str, method: str) -> bool:
    """A masked view depends on the student, so a loss that reads teacher logits queries the frozen teacher on
    it during training."""
    return MIXERS[augment_method].placer is not None and STEP_LOSSES[method].reads_teacher


def student_fingerprint(p: Params, *files: Path) -> str:
    """What determines a student run (guards its checkpoint): its params sections and input files."""
    keys = {"student": asdict(p.student), "distill": asdict(p.distill), "data": asdict(p.data), "seed": p.base.seed,
            "movr": asdict(p.movr), "relabel": asdict(p.relabel), "layers": p.augment.layers}
    return fingerprint(keys, *files)


def masked_step_loss(st: PlannedStep, step_loss: StepLoss, p: Params, t_raw: torch.Tensor,
                     teacher: torch.nn.Module | None) -> Callable:
    """Loss on a masked view: the method's mixed-step loss with the image as its own partner (lam = lam_eff).

    kd/asym need the frozen teacher on the masked view (it depends on the student, so it cannot be cached):
    it supplies kd's targets and asym's hard-sample selection, exactly as for a cached mixed view.
    """
    ident = torch.arange(len(st.y), device=st.y.device)

    def loss(z_m: torch.Tensor, x_m: torch.Tensor) -> torch.Tensor:
        t_m = hard = target = None
        if teacher is not None:
            with torch.no_grad():
                t_m = teacher(x_m).float()
            r = p.relabel
            hard, target = relabel_decision(t_m, st.y, st.y, st.lam, r.rule, r.threshold, r.smoothing)
        return step_loss(z_m, Step(y=st.y, mixed=True, partner=ident, lam=st.lam, t_raw=t_raw, t_mixed=t_m,
                                   hard=hard, target=target), p)
    return loss


def _epoch_cache(cache: dict[str, np.ndarray], epoch: int, device: torch.device) -> dict[str, torch.Tensor]:
    """The epoch's cached teacher outputs on the device, one host-to-device copy each (not one per step), and
    per step the rows ordered hard first, then easy, each ascending (`n_hard` of them hard), known on the host."""
    ep = {k: torch.from_numpy(np.ascontiguousarray(cache[k][epoch])).to(device)
          for k in ("t_raw", "t_mixed", "hard", "target")}
    hard = cache["hard"][epoch]  # [S, B]
    ep["by_hardness"] = torch.from_numpy(np.argsort(~hard, axis=1, kind="stable")).to(device)
    return {**ep, "n_hard": hard.sum(1)}


def student_batches(x: torch.Tensor, y: torch.Tensor, plan: dict[str, np.ndarray], cache: dict[str, np.ndarray],
                    epoch: int, aug: BaseAug, p: Params, teacher: torch.nn.Module | None = None) -> Iterator[Batch]:
    """(image batch, objective) per planned step of `distill.method`; the student sees the mixed view if any.
    With `distill.noise_exposure` > 0 the batch also carries 1 / NOISE_SHARE as many images of uniform pixel
    noise (`noise_exposed`; not on masked steps, which `train_student` refuses to combine with it). `teacher`:
    the frozen teacher a masked view needs (`needs_live_teacher`)."""
    step_loss, noise = STEP_LOSSES[p.distill.method], p.distill.noise_exposure
    masker = str(plan["method"]) if MIXERS[str(plan["method"])].placer is not None else None
    ep = _epoch_cache(cache, epoch, x.device)
    for s, st in enumerate(planned_steps(x, y, plan, epoch, aug)):
        mixed = st.x_mixed is not None
        n_hard = ep["n_hard"][s]
        step = Step(y=st.y, mixed=mixed, partner=st.partner, lam=st.lam, t_raw=ep["t_raw"][s].float(),
                    t_mixed=ep["t_mixed"][s].float() if mixed else None, hard=ep["hard"][s] if mixed else None,
                    target=ep["target"][s].float() if mixed else None,
                    rows=(ep["by_hardness"][s, :n_hard], ep["by_hardness"][s, n_hard:]) if mixed else None)
        two_views = mixed and p.distill.raw_on_mixed > 0  # [ours]: the raw view too, stacked before the mixed one
        loss = both_views(step_loss, step, p) if two_views else partial(step_loss, s=step, p=p)
        if masker and st.mixed:
            box_hw = (int(st.box[1] - st.box[0]), int(st.box[3] - st.box[2]))
            objective = masked(masker, st.y, box_hw, st.lam, st.seed, p.augment.layers, loss,
                               masked_step_loss(st, step_loss, p, step.t_raw, teacher))
            images = st.x_raw
        else:
            n_noise = len(st.y) // NOISE_SHARE if noise > 0 else 0
            objective = logits_objective(noise_exposed(loss, n_noise, noise), step_loss.rotation(p.movr))
            images = torch.cat([st.x_raw, st.x_mixed]) if two_views else st.x_mixed if mixed else st.x_raw
            if n_noise:
                _, c, size, _ = x.shape
                images = torch.cat([images, to_float(noise_images(n_noise, c, size, st.seed)).to(x.device)])
        yield images, objective


def train_student(data: SplitTensors, plan: dict[str, np.ndarray], cache: dict[str, np.ndarray], p: Params, *,
                  ckpt_path: Path, fingerprint: str, device: torch.device, desc: str | None = None,
                  on_epoch_end: Callable[[torch.nn.Module, int], dict] | None = None,
                  teacher: torch.nn.Module | None = None, init: Path | None = None
                  ) -> tuple[torch.nn.Module, dict, list[dict]]:
    """A student trained on the plan, by params.yaml's sections `student`, `distill`, `movr`, `data`, `relabel`
    and `augment.layers` (GradMix's attribution layers), fresh or started from the weights of `init`
    (`osr.models.load_init`; its file belongs in `fingerprint`). Returns (model, meta, history).

    `teacher` (frozen) is needed only when the loss reads teacher logits on a masked view (`needs_live_teacher`).
    """
    student, method, augment_method = p.student, p.distill.method, str(plan["method"])
    step_loss = STEP_LOSSES[method]
    if needs_live_teacher(augment_method, method) and teacher is None:
        raise OSRError(f"distill.method {method} with augment.method {augment_method}: needs the teacher model")
    if MIXERS[augment_method].placer is not None and step_loss.rotation(p.movr) > 0:
        raise OSRError(f"movr.rotation: the rotation head is not combined with augment.method {augment_method}; "
                       "set movr.rotation=0")
    if p.distill.noise_exposure and (MIXERS[augment_method].placer is not None or step_loss.rotation(p.movr) > 0):
        raise OSRError(f"distill.noise_exposure: not combined with augment.method {augment_method} or the m-OvR "
                       "rotation head; set distill.noise_exposure=0")
    x, y = data.x["train"], data.y["train"]
    model, meta = new_model(student, p.data, data.num_classes, x.shape[1], device, **step_loss.head(p.movr))
    if init is not None:
        print(load_init(model, init, "student"))
    aug = BaseAug(randaugment=student.randaugment)

    def batches(epoch: int) -> Iterator[Batch]:
        return student_batches(x, y, plan, cache, epoch, aug, p, teacher)

    epochs, steps = plan["order"].shape[:2]
    history = fit(model, batches, epochs=epochs, steps_per_epoch=steps, ckpt_path=ckpt_path, fingerprint=fingerprint,
                  desc=desc or f"student[{method}]", device=device, on_epoch_end=on_epoch_end,
                  **fit_settings(student, device, epochs))
    return model, meta, history
