"""Teacher training: a loss of the `STEP_LOSSES` registry that trains teachers (CE or m-OvR), on raw known-class
images with the on-device augmentation, by `osr.train.fit` (checkpoint/resume)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from osr import OSRError
from osr.augment import TEACHER_STREAM, BaseAug, epoch_order, noise_images, to_float
from osr.losses import STEP_LOSSES, DistillConfig, Step, StepLoss
from osr.models import load_init, new_model
from osr.objectives import NOISE_SHARE, logits_objective, noise_exposed
from osr.split import SplitTensors
from osr.train import Batch, budget_epochs, fingerprint, fit, fit_settings


def teacher_batches(x: torch.Tensor, y: torch.Tensor, epoch: int, seed: int, batch_size: int, aug: BaseAug,
                    loss: StepLoss, cfg: DistillConfig, noise: float) -> Iterator[Batch]:
    """(augmented raw images, objective) per step of one epoch, in the teacher's own seeded order; with `noise`
    > 0 each batch also carries batch_size / NOISE_SHARE images of uniform pixel noise (`noise_exposed`)."""
    order, seeds = epoch_order(len(x), batch_size, seed, epoch, TEACHER_STREAM)
    n_noise = batch_size // NOISE_SHARE if noise > 0 else 0
    for idx, s in zip(order, seeds):
        idx = torch.from_numpy(idx).to(x.device)
        def raw(z, yy=y[idx]):
            return loss(z, Step(y=yy, mixed=False, partner=None, lam=1.0), cfg)
        views = aug(x[idx], int(s))
        if n_noise:
            views = torch.cat([views, noise_images(n_noise, x.shape[1], x.shape[2], int(s)).to(x.device)])
        yield to_float(views), logits_objective(noise_exposed(raw, n_noise, noise), loss.rotation(cfg.movr))


def train_teacher(data: SplitTensors, params: dict, *, ckpt_path: Path, inputs: tuple[Path, ...],
                  device: torch.device,
                  on_epoch_end: Callable[[torch.nn.Module, int], dict] | None = None, init: Path | None = None
                  ) -> tuple[torch.nn.Module, dict, list[dict]]:
    """A teacher trained by params.yaml's `teacher` section (with `data`, `base.seed` and the sections its
    loss reads, `StepLoss.settings`), fresh or started from the weights of `init` (`osr.models.load_init`).
    `inputs`: the files the run reads, fingerprinted with those parameters to guard the resume checkpoint.
    Returns (model, meta, history)."""
    t, seed = params["teacher"], params["base"]["seed"]
    loss = STEP_LOSSES[t["loss"]]
    cfg = DistillConfig.from_sections(params["distill"], params["movr"])  # a teacher loss reads its movr only
    x, y = data.x["train"], data.y["train"]
    model, meta = new_model(t, params["data"], data.num_classes, x.shape[1], device, **loss.head(cfg.movr))
    if init is not None:
        print(load_init(model, init, "teacher"))
        inputs = (*inputs, init)
    aug, bs, noise = BaseAug(randaugment=t["randaugment"]), t["batch_size"], float(t["noise_exposure"])
    if noise and loss.rotation(cfg.movr) > 0:
        raise OSRError("teacher.noise_exposure: not combined with the m-OvR rotation head; set movr.rotation=0")

    def batches(epoch: int) -> Iterator[Batch]:
        return teacher_batches(x, y, epoch, seed, bs, aug, loss, cfg, noise)

    run = {"teacher": t, "data": params["data"], "seed": seed, **{s: params[s] for s in loss.settings}}
    epochs = budget_epochs(t, len(x))
    history = fit(model, batches, epochs=epochs, steps_per_epoch=len(x) // bs, ckpt_path=ckpt_path,
                  fingerprint=fingerprint(run, *inputs), desc="teacher", device=device, on_epoch_end=on_epoch_end,
                  **fit_settings(t, device, epochs))
    return model, meta, history
