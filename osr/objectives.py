"""Training objectives: (model, images) -> loss, for the one training loop (osr.train.fit).

Most losses only need the logits (``on_logits``); the m-OvR rotation head and the masking methods need the
model itself: a second view through the shared trunk, or the gradient of the loss at a hooked activation.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from osr.masking import PLACERS, noise_box
from osr.train import Objective

LogitLoss = Callable[[torch.Tensor], torch.Tensor]


def on_logits(loss: LogitLoss) -> Objective:
    return lambda model, x: loss(model(x))


NOISE_SHARE = 8  # noise exposure: one noise image per this many images of a batch


def noise_exposed(loss: LogitLoss, n_noise: int, weight: float) -> LogitLoss:
    """`loss` of all rows but the last `n_noise`, plus `weight` times the cross-entropy from the uniform
    distribution to the softmax of those last rows: images of pixel noise appended to the batch (outlier exposure,
    Hendrycks et al. 2019, with noise for outliers). A network that never saw anything but its classes otherwise
    answers noise with confident, large logits."""
    if not n_noise:
        return loss
    return lambda z: loss(z[:-n_noise]) - weight * F.log_softmax(z[-n_noise:].float(), 1).mean()


def rotate_quarters(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Image i rotated by (i mod 4) * 90 degrees, and those rotation labels (square images)."""
    k = torch.arange(len(x), device=x.device) % 4
    out = x.clone()
    for r in (1, 2, 3):
        idx = torch.arange(r, len(x), 4, device=x.device)  # the rows with k == r, without a device sync
        out[idx] = torch.rot90(x[idx], r, dims=(2, 3))
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


@torch.compiler.disable
def eager(fn: Callable[[torch.nn.Module], torch.Tensor], model: torch.nn.Module) -> torch.Tensor:
    """fn(the plain module), outside any compiled region, for a `model` compiled or not.

    GradMix differentiates the clean loss at hooked activations: inside a compiled graph those are not tensors
    autograd can differentiate with respect to ("differentiated Tensor ... not used in the graph"), and a compiled
    forward between the eager forward and the backward bumps the batch-norm buffers' versions (functionalised
    running-stat updates) that the eager backward saved. So a masked GradMix step runs its two forwards eagerly
    (`eager_forward`); raw steps and the noise box stay compiled.
    """
    return fn(getattr(model, "_orig_mod", model))


def eager_forward(base: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The uncompiled forward: `eager_forward` of a model with a compiled trunk (CifarResNet.compile_trunk),
    else ``forward`` (which also bypasses ``model.compile()``)."""
    return getattr(base, "eager_forward", base.forward)


def attribution(base: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                layers: list[str]) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Clean logits of the plain module, its activations at `layers` and CE(z, y)'s gradients there (graph kept)."""
    acts: list[torch.Tensor] = []
    hooks = [getattr(base, name).register_forward_hook(lambda m, i, o: acts.append(o)) for name in layers]
    try:
        z = eager_forward(base)(x)
    finally:
        for h in hooks:
            h.remove()
    return z, acts, list(torch.autograd.grad(F.cross_entropy(z.float(), y), acts, retain_graph=True))


def masked(method: str, y: torch.Tensor, box_hw: tuple[int, int], lam: float, seed: int, layers: list[str],
           clean_loss: LogitLoss, masked_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Objective:
    """clean_loss(S(x)) + lam_eff * masked_loss(S(x_m), x_m), x_m = x with a noise box placed by `method`.

    For GradMix the box sits at the LayerCAM peak of CE(S(x), y) at `layers` of the model being trained,
    from the clean forward itself (``autograd.grad``, graph kept for the backward of the total loss).
    """
    placer = PLACERS[method]

    def place_and_mask(forward, x, z, acts, grads):
        x_m = noise_box(x, placer(acts, grads, x, seed), box_hw, seed)
        return clean_loss(z) + lam * masked_loss(forward(x_m), x_m)

    def objective(model, x):
        if not placer.needs_attribution:
            return place_and_mask(model, x, model(x), [], [])
        return eager(lambda base: place_and_mask(eager_forward(base), x, *attribution(base, x, y, layers)), model)
    return objective
