"""Student training over the plan with cached teacher outputs (shared by the distill stage and tuning trials)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from osr.augment import BaseAug, planned_steps
from osr.losses import STEP_LOSSES, DistillConfig, Step
from osr.models import new_model
from osr.split import SplitTensors
from osr.train import Batch, OptimConfig, fit


def student_batches(x: torch.Tensor, y: torch.Tensor, plan: dict[str, np.ndarray], cache: dict[str, np.ndarray],
                    epoch: int, aug: BaseAug, method: str, cfg: DistillConfig) -> Iterator[Batch]:
    """(image batch, loss of the student's logits) per planned step; the student sees the mixed view if any."""
    step_loss = STEP_LOSSES[method]
    dev = x.device

    def cached(name: str, s: int) -> torch.Tensor:
        return torch.from_numpy(cache[name][epoch, s]).to(dev).float()

    for s, st in enumerate(planned_steps(x, y, plan, epoch, aug)):
        mixed = st.x_mixed is not None
        step = Step(y=st.y, mixed=mixed, partner=st.partner, lam=st.lam, t_raw=cached("t_raw", s),
                    t_mixed=cached("t_mixed", s) if mixed else None,
                    hard=torch.from_numpy(cache["hard"][epoch, s]).to(dev) if mixed else None,
                    target=cached("target", s) if mixed else None)
        yield (st.x_mixed if mixed else st.x_raw), (lambda z, step=step: step_loss(z, step, cfg))


def train_student(data: SplitTensors, plan: dict[str, np.ndarray], cache: dict[str, np.ndarray], student: dict,
                  distill: dict, data_params: dict, ckpt_path: Path, fingerprint: str, desc: str,
                  device: torch.device, on_epoch_end: Callable[[torch.nn.Module, int], dict] | None = None
                  ) -> tuple[torch.nn.Module, dict, list[dict]]:
    """A fresh student (params sections `student`, `distill`, `data`) trained on the plan; (model, meta, history)."""
    x, y = data.x["train"], data.y["train"]
    model, meta = new_model(student, data_params, data.num_classes, x.shape[1], device)
    cfg = DistillConfig(tau=float(distill["tau"]), alpha=float(distill["alpha"]), beta=float(distill["beta"]),
                        gamma=float(distill["gamma"]))
    aug = BaseAug(randaugment=student["randaugment"])

    def batches(epoch: int) -> Iterator[Batch]:
        return student_batches(x, y, plan, cache, epoch, aug, distill["method"], cfg)

    epochs, steps = plan["order"].shape[:2]
    history = fit(model, batches, epochs, steps, student["batch_size"], OptimConfig.from_section(student), ckpt_path,
                  fingerprint, desc, device, student["amp"], on_epoch_end)
    return model, meta, history
