"""The augment stage's preview: the first mixed (or masked) step of the plan's first epoch, as images and titles."""
from __future__ import annotations

import numpy as np
import torch

from osr.augment import MIXERS, BaseAug, PlannedStep, planned_steps
from osr.masking import PLACERS, noise_box


def _shown(step: PlannedStep, masker: bool) -> torch.Tensor:
    """The view the student trains on; a masker's box at a random place (GradMix places it during training)."""
    shown = step.x_mixed if step.x_mixed is not None else step.x_raw
    if masker and step.mixed:
        hw = (int(step.box[1] - step.box[0]), int(step.box[3] - step.box[2]))
        shown = noise_box(shown, PLACERS["noisebox"]([], [], shown, step.seed), hw, step.seed)
    return shown


def _title(step: PlannedStep, i: int, name) -> str:
    if step.x_mixed is not None:
        return f"{name(int(step.y[i]))}+{name(int(step.y[step.partner[i]]))} λ={step.lam:.2f}"
    return f"{name(int(step.y[i]))} λ={step.lam:.2f}" if step.mixed else name(int(step.y[i]))


def preview(x: torch.Tensor, y: torch.Tensor, plan: dict[str, np.ndarray], aug: BaseAug, k: int,
            names: list[str]) -> tuple[np.ndarray, list[str], str]:
    """(uint8 images [k, H, W, C], their titles, a caption) of up to k images of the preview step."""
    method = str(plan["method"])
    masker = MIXERS[method].placer is not None
    steps = list(planned_steps(x, y, plan, 0, aug))
    step = next((s for s in steps if s.mixed), steps[0])
    k = min(k, len(step.y))
    imgs = (_shown(step, masker)[:k] * 255).round().byte().permute(0, 2, 3, 1).numpy()
    name = (lambda c: names[c]) if names else str
    note = "boxes at random places; GradMix places them by attribution in training" if masker \
        else "classes a+b, λ of a"
    return imgs, [_title(step, i, name) for i in range(k)], f"{method} ({note})"
