"""Training objectives: (model, images) -> loss, for the one training loop (osr.train.fit).

Most losses only need the logits (``on_logits``); the m-OvR rotation head and the masking methods need the
model itself: a second view through the shared trunk, or the gradient of the loss at a hooked activation.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from osr.masking import NEEDS_ATTRIBUTION, PLACERS, noise_box
from osr.train import Objective

LogitLoss = Callable[[torch.Tensor], torch.Tensor]


def on_logits(loss: LogitLoss) -> Objective:
    return lambda model, x: loss(model(x))


def rotate_quarters(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Image i rotated by (i mod 4) * 90 degrees, and those rotation labels (square images)."""
    k = torch.arange(len(x), device=x.device) % 4
    out = x.clone()
    for r in (1, 2, 3):
        out[k == r] = torch.rot90(x[k == r], r, dims=(2, 3))
    return out, k


def with_rotation(loss: LogitLoss, weight: float) -> Objective:
    """loss(logits of the un-rotated images) + weight * 4-way rotation CE of the rotation head (one trunk pass)."""
    def objective(model, x):
        x_rot, k = rotate_quarters(x)
        f = model.features(torch.cat([x, x_rot]))
        return loss(model.fc(f[:len(x)])) + weight * F.cross_entropy(model.rotation(f[len(x):]).float(), k)
    return objective


def logits_objective(loss: LogitLoss, rotation: float = 0.0) -> Objective:
    """The objective of a loss of the logits, with the rotation-head term when `rotation` > 0."""
    return with_rotation(loss, rotation) if rotation > 0 else on_logits(loss)


def masked(method: str, y: torch.Tensor, box_hw: tuple[int, int], lam: float, seed: int, layers: list[str],
           clean_loss: LogitLoss, masked_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Objective:
    """clean_loss(S(x)) + lam_eff * masked_loss(S(x_m), x_m), x_m = x with a noise box placed by `method`.

    For GradMix the box sits at the LayerCAM peak of CE(S(x), y) at `layers` of the model being trained,
    from the clean forward itself (``autograd.grad``, graph kept for the backward of the total loss).
    """
    def objective(model, x):
        acts: list[torch.Tensor] = []
        hooks = [getattr(model, name).register_forward_hook(lambda m, i, o: acts.append(o))
                 for name in (layers if method in NEEDS_ATTRIBUTION else [])]
        try:
            z = model(x)
        finally:
            for h in hooks:
                h.remove()
        grads = list(torch.autograd.grad(F.cross_entropy(z.float(), y), acts, retain_graph=True)) if acts else []
        centres = PLACERS[method](acts, grads, x, seed)
        x_m = noise_box(x, centres, box_hw, seed)
        return clean_loss(z) + lam * masked_loss(model(x_m), x_m)
    return objective
