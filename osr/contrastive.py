"""GradMix as published (methods.md §3.3): supervised and self-supervised contrastive learning on two views, with
view 1 masked at its attribution peak as an extra positive, every batch.

One step on the views x = [v1; v2] of a batch with labels y (the features are the model's unit projections):

1. LayerCAM of the label-free NT-Xent loss of both views at `augment.layers` (an extra forward and backward, as
   released; only the gradients at the hooked activations are taken, so no parameter gradient is left over);
2. one box per step, its size from lam ~ U(0, 1) = Beta(1, 1) (`osr.augment.mask_size`), centred at each view-1
   image's CAM maximum and spanning [c - s//2, c + s//2) as the released code cuts it, filled with noise that is
   U(0, 1) in normalised tensor space, in view 1 only;
3. L = supcon * SupCon(v1, v2; y) + ntxent * [NT-Xent(v1, v2) + lam_eff * NT-Xent'(v1, v2)], where in NT-Xent'
   the positives come from a forward of [m1; v2]: view-2 anchors take the masked view m1, view-1 anchors v2, and
   the denominators keep the unmasked features.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from osr.augment import mask_size
from osr.masking import PLACERS, Placer, noise_box
from osr.objectives import eager
from osr.train import Objective

if TYPE_CHECKING:  # annotations only: osr.config is not among the DVC deps of this code
    from osr.config import Contrastive


def contrastive_loss(features: torch.Tensor, temperature: float, base_temperature: float,
                     labels: torch.Tensor | None = None, positives: torch.Tensor | None = None) -> torch.Tensor:
    """The released SupConLoss (contrast mode "all") of unit features [2B, D] = [view 1; view 2]: SupCon with
    `labels`, NT-Xent (SimCLR: the other view of the same image is the one positive) without.

    `positives` [2B, D] replace the features on the numerator's side only (the denominators keep `features`). As
    released, each anchor's positive and negative logits are shifted by their own detached row maxima, so with
    `positives` the value carries a gradient-free offset; it is kept so that values match the released code.
    """
    n, dev = len(features), features.device
    ids = (labels if labels is not None else torch.arange(n // 2, device=dev)).repeat(2)
    not_self = ~torch.eye(n, dtype=torch.bool, device=dev)
    pos_mask = (ids[:, None] == ids[None, :]) & not_self
    f = features.float()
    p = f if positives is None else positives.float()
    with torch.autocast(dev.type, enabled=False):  # fp32 logits at temperature 0.05 (bf16 keeps 8 bits)
        lp, ln = f @ p.T / temperature, f @ f.T / temperature
    lp = lp - lp.max(1, keepdim=True).values.detach()
    ln = ln - ln.max(1, keepdim=True).values.detach()
    log_prob = lp - torch.log((torch.exp(ln) * not_self).sum(1, keepdim=True))
    mean_log_prob_pos = (pos_mask * log_prob).sum(1) / pos_mask.sum(1)
    return -(temperature / base_temperature) * mean_log_prob_pos.mean()


def released_box(lam: float, h: int, w: int) -> tuple[tuple[int, int], float]:
    """The masked extent (2 * (bh // 2), 2 * (bw // 2)) of the released code's cut [c - s//2, c + s//2) of the
    box of `mask_size`, and lam_eff = 1 - bh * bw / (H * W) from the unclipped box, as released."""
    box, lam_eff = mask_size(lam, h, w)
    return (2 * (int(box[1]) // 2), 2 * (int(box[3]) // 2)), lam_eff


def attribution(base: torch.nn.Module, x: torch.Tensor, layers: list[str],
                cfg: Contrastive) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Activations of the plain module at `layers` and the label-free NT-Xent loss's gradients there."""
    acts: list[torch.Tensor] = []
    hooks = [getattr(base, name).register_forward_hook(lambda m, i, o: acts.append(o)) for name in layers]
    try:
        f = base.eager_projection(x)
    finally:
        for h in hooks:
            h.remove()
    return acts, list(torch.autograd.grad(contrastive_loss(f, cfg.temperature, cfg.base_temperature), acts))


def step_lam(seed: int) -> float:
    """A step's lam ~ Beta(1, 1), from its seed."""
    return float(np.random.default_rng([int(seed), 3]).beta(1.0, 1.0))


@dataclass(frozen=True)
class ContrastiveLoss:
    """A contrastive `teacher.loss` entry: SupCon + NT-Xent, and with a masking method of osr/masking.py the extra
    NT-Xent term whose positive is view 1 with a noise box placed by it (every step)."""
    placer: Placer | None = None

    def objective(self, y: torch.Tensor, cfg: Contrastive, layers: list[str], seed: int) -> Objective:
        """The loss of a step on x = [view 1; view 2] of the images labelled y."""
        t, bt = cfg.temperature, cfg.base_temperature

        def objective(model, x):
            b = len(y)
            if self.placer is not None and self.placer.needs_attribution:
                acts, grads = eager(lambda base: attribution(base, x, layers, cfg), model)
            else:
                acts, grads = [], []
            v = model.features(x)
            loss = cfg.supcon * contrastive_loss(v, t, bt, labels=y) + cfg.ntxent * contrastive_loss(v, t, bt)
            if self.placer is None:
                return loss
            box_hw, lam_eff = released_box(step_lam(seed), x.shape[2], x.shape[3])
            base = getattr(model, "_orig_mod", model)
            m1 = noise_box(x[:b], self.placer(acts, grads, x, seed)[:b], box_hw, seed, (base.mean, base.std))
            m = model.features(torch.cat([m1, x[b:]]))
            return loss + cfg.ntxent * lam_eff * contrastive_loss(v, t, bt, positives=m)
        return objective


# name -> ContrastiveLoss: SupCon + NT-Xent alone, then one masked variant per masker ("gradmix_con": as published;
# "noisebox_con": its control, the same box at a random place)
CONTRASTIVE_LOSSES: dict[str, ContrastiveLoss] = {
    "supcon": ContrastiveLoss(),
    **{f"{name}_con": ContrastiveLoss(placer) for name, placer in PLACERS.items()},
}
