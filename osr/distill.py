"""Student batches over the plan with cached teacher outputs: the input of `osr.train.fit` for distillation."""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from osr.augment import BaseAug, planned_steps
from osr.losses import STEP_LOSSES, DistillConfig, Step
from osr.train import Batch


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
