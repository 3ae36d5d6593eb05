"""The two views of GradMix's contrastive training (methods.md §3.3, SupCon's recipe): RandomResizedCrop (scale
0.2-1, ratio 3/4-4/3), horizontal flip, ColorJitter(0.4, 0.4, 0.4, 0.1) with p = 0.8, grayscale with p = 0.2.

Batched like osr/augment.py: every random parameter is drawn per image on the host from a seeded CPU generator (so
a seed gives the same views on every device), then each operation is one tensor operation over the batch with a
factor per image. torchvision.transforms.v2 takes one factor per call, so the colour operations are its kernels'
formulas with per-image factors (its grayscale and HSV conversions are used as they are); tests/
test_gradmix_contrastive.py checks them against torchvision image by image. The crop is resized bilinearly from
the whole image (no antialiasing: a crop is never larger than the image, so it is only enlarged).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF
from torchvision.transforms.v2.functional._color import _hsv_to_rgb, _rgb_to_hsv

from osr.pixels import to_float

SCALE, RATIO, TRIES = (0.2, 1.0), (3 / 4, 4 / 3), 10
JITTER, JITTER_P, GRAY_P = (0.4, 0.4, 0.4, 0.1), 0.8, 0.2  # brightness, contrast, saturation, hue


def crop_boxes(b: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """RandomResizedCrop.get_params for b images [b, 4] (top, left, height, width): up to 10 tries of an area
    share in SCALE and a log-uniform aspect ratio in RATIO, the first that fits; else the central crop of the
    clamped aspect ratio."""
    area = h * w * torch.empty(b, TRIES).uniform_(*SCALE, generator=gen)
    aspect = torch.exp(torch.empty(b, TRIES).uniform_(math.log(RATIO[0]), math.log(RATIO[1]), generator=gen))
    cw, ch = torch.sqrt(area * aspect).round(), torch.sqrt(area / aspect).round()
    fits = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
    first = fits.int().argmax(1)
    ch, cw = ch.gather(1, first[:, None])[:, 0], cw.gather(1, first[:, None])[:, 0]
    u = torch.rand(b, 2, generator=gen)
    top, left = (u[:, 0] * (h - ch + 1)).floor(), (u[:, 1] * (w - cw + 1)).floor()
    ratio = w / h
    fh, fw = (round(w / RATIO[0]), w) if ratio < RATIO[0] else (h, round(h * RATIO[1])) if ratio > RATIO[1] else (h, w)
    none = ~fits.any(1)
    box = torch.stack([top, left, ch, cw], 1)
    box[none] = torch.tensor([(h - fh) // 2, (w - fw) // 2, fh, fw], dtype=box.dtype)
    return box


def resized_crop(x: torch.Tensor, box: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Each image's box [top, left, height, width] resized bilinearly to the image size, mirrored where `flip`."""
    b, _, h, w = x.shape
    box = box.to(x.device, torch.float32)
    sx, sy = box[:, 3] / w, box[:, 2] / h
    theta = torch.zeros(b, 2, 3, device=x.device)
    theta[:, 0, 0] = torch.where(flip.to(x.device), -sx, sx)
    theta[:, 0, 2] = (2 * box[:, 1] + box[:, 3]) / w - 1
    theta[:, 1, 1] = sy
    theta[:, 1, 2] = (2 * box[:, 0] + box[:, 2]) / h - 1
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _per_image(f: torch.Tensor) -> torch.Tensor:
    return f[:, None, None, None]


def blend(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """torchvision's `_blend` with a factor per image: f*a + (1-f)*b, clamped to [0, 1]."""
    return (_per_image(f) * a + (1 - _per_image(f)) * b).clamp(0, 1)


def _gray(x: torch.Tensor) -> torch.Tensor:
    return TF.rgb_to_grayscale(x) if x.shape[1] == 3 else x


def brightness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return blend(x, torch.zeros_like(x), f)


def contrast(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return blend(x, _gray(x).mean((1, 2, 3), keepdim=True), f)


def saturation(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return blend(x, _gray(x), f) if x.shape[1] == 3 else x


def hue(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    if x.shape[1] != 3:
        return x
    hh, s, v = _rgb_to_hsv(x).unbind(1)
    return _hsv_to_rgb(torch.stack(((hh + f[:, None, None]).remainder(1.0), s, v), 1))


COLOUR_OPS = (brightness, contrast, saturation, hue)  # ColorJitter's fn_idx order


def colour_jitter(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """ColorJitter(0.4, 0.4, 0.4, 0.1), applied with p = JITTER_P: per image, factors in [1 - j, 1 + j] (hue
    [-0.1, 0.1]) and a random order of the four operations."""
    b, dev = len(x), x.device
    on = torch.rand(b, generator=gen) < JITTER_P
    lo = torch.tensor([1 - JITTER[0], 1 - JITTER[1], 1 - JITTER[2], -JITTER[3]])
    hi = torch.tensor([1 + JITTER[0], 1 + JITTER[1], 1 + JITTER[2], JITTER[3]])
    factors = (lo + (hi - lo) * torch.rand(b, 4, generator=gen)).to(dev)
    order = torch.argsort(torch.rand(b, 4, generator=gen), 1)
    for position in range(4):
        for k, op in enumerate(COLOUR_OPS):
            chosen = (on & (order[:, position] == k)).to(dev)
            x = torch.where(_per_image(chosen), op(x, factors[:, k]), x)
    return x


def view(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One augmented view of float images [B, C, H, W] in [0, 1]."""
    b, c, h, w = x.shape
    x = resized_crop(x, crop_boxes(b, h, w, gen), torch.rand(b, generator=gen) < 0.5)
    x = colour_jitter(x, gen)
    if c == 3:
        gray = (torch.rand(b, generator=gen) < GRAY_P).to(x.device)
        x = torch.where(_per_image(gray), TF.rgb_to_grayscale(x, num_output_channels=3), x)
    return x


def two_views(x: torch.Tensor, seed: int) -> torch.Tensor:
    """[view 1; view 2] of the uint8 images x [B, C, H, W]: float in [0, 1], channels_last, [2B, C, H, W]."""
    gen = torch.Generator().manual_seed(int(seed))
    xf = to_float(x)
    return torch.cat([view(xf, gen), view(xf, gen)]).contiguous(memory_format=torch.channels_last)
