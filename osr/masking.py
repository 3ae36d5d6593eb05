"""Attribution-guided masking (GradMix, methods.md §3.3) and its control, a noise box at a random location.

GradMix hides what the model already relies on: LayerCAM of the CE loss on the clean batch
(``sum_channels A * ReLU(dL/dA)`` per attribution layer, min-max normalised over the whole batch tensor,
bilinearly resized and summed over layers) puts a box at each image's attribution peak, and the box is filled
with uniform noise (one value per pixel for all channels). Box sizes come from the plan (``mask_size``).

Choice of map: the paper is explicit that the maps are the *current model's* ("use the current model's gradient
attribution maps to mask out the concepts it has already learned"), so the map comes from the model being
trained, computed from the same forward pass as its clean loss (``autograd.grad`` on the hooked activations, no
extra forward), not from the frozen teacher. This is the CE adaptation of methods.md [ours]: the released code
is contrastive. Deviation: noise is U(0, 1) in image space (the model normalises inside), not in normalised space.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def layercam(acts: list[torch.Tensor], grads: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """LayerCAM [B, H, W]: per layer sum_c A * ReLU(G), min-max normalised over the batch tensor, resized, summed."""
    cam = None
    for a, g in zip(acts, grads):
        m = (a.float() * g.float().clamp(min=0)).sum(1, keepdim=True)
        m = (m - m.min()) / (m.max() - m.min() + 1e-12)
        m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)[:, 0]
        cam = m if cam is None else cam + m
    return cam


def cam_peaks(cam: torch.Tensor) -> torch.Tensor:
    """(row, col) of each map's maximum [B, 2]."""
    flat = cam.flatten(1).argmax(1)
    return torch.stack([flat // cam.shape[2], flat % cam.shape[2]], 1)


def random_centres(n: int, h: int, w: int, seed: int, device: torch.device) -> torch.Tensor:
    """Uniform box centres [n, 2] for the random-location control."""
    rng = np.random.default_rng([seed, 7])
    return torch.from_numpy(np.stack([rng.integers(0, h, n), rng.integers(0, w, n)], 1)).to(device)


def noise_box(x: torch.Tensor, centres: torch.Tensor, box_hw: tuple[int, int], seed: int,
              normalised: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """x with a (bh, bw) box centred at each centre (clipped at the borders) filled with U(0, 1) noise; with
    `normalised` = (mean, std) of the model's input normalisation, noise that is U(0, 1) after it (the released
    code's noise, drawn in normalised tensor space): u * std + mean in image space."""
    b, _, h, w = x.shape
    bh, bw = box_hw
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    y0, x0 = centres[:, 0, None, None] - bh // 2, centres[:, 1, None, None] - bw // 2
    inside = (rows >= y0) & (rows < y0 + bh) & (cols >= x0) & (cols < x0 + bw)  # [B, H, W]
    gen = torch.Generator().manual_seed(int(seed) + 1)  # on the CPU: the same noise on every device
    noise = torch.rand((b, 1, h, w), generator=gen).to(x.device, x.dtype)
    if normalised is not None:
        noise = noise * normalised[1].to(x.dtype) + normalised[0].to(x.dtype)
    return torch.where(inside[:, None], noise, x)


Tensors = list[torch.Tensor]


def _attribution_peaks(acts: Tensors, grads: Tensors, x: torch.Tensor, seed: int) -> torch.Tensor:
    return cam_peaks(layercam(acts, grads, tuple(x.shape[2:])))


def _random_places(acts: Tensors, grads: Tensors, x: torch.Tensor, seed: int) -> torch.Tensor:
    return random_centres(len(x), x.shape[2], x.shape[3], seed, x.device)


@dataclass(frozen=True)
class Placer:
    """A masking method: where the noise box goes, and whether that needs the attribution of the model being
    trained (its activations at `augment.layers` and their CE gradients, from the clean forward)."""
    place: Callable[[Tensors, Tensors, torch.Tensor, int], torch.Tensor]
    needs_attribution: bool = False

    def __call__(self, acts: Tensors, grads: Tensors, x: torch.Tensor, seed: int) -> torch.Tensor:
        """Box centres [B, 2] from (activations, their CE gradients, images, step seed)."""
        return self.place(acts, grads, x, seed)


# name -> Placer; each is also an `augment.method` (osr/augment.py MIXERS)
PLACERS: dict[str, Placer] = {
    "gradmix": Placer(_attribution_peaks, needs_attribution=True),
    "noisebox": Placer(_random_places),
}
