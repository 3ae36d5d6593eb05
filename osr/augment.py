"""Batched on-device augmentation over uint8 tensors, mixing registry and the seeded mixing plan.

Nothing here loops over samples in Python: crops are one gather, flips one ``where``, RandAugment is applied
per (op, sign) group with torchvision's functional ops, mixing is tensor arithmetic.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from osr import OSRError
from osr.masking import PLACERS, Placer
from osr.pixels import to_float


def random_crop_flip(x: torch.Tensor, gen: torch.Generator, pad: int = 4, flip: bool = True) -> torch.Tensor:
    """RandomCrop(padding=pad) + RandomHorizontalFlip on a uint8 batch [B, C, H, W]; `gen` is a CPU generator."""
    b, _, h, w = x.shape
    dev = x.device
    if pad:
        xp = F.pad(x, (pad, pad, pad, pad))
        oy = torch.randint(0, 2 * pad + 1, (b,), generator=gen).to(dev, non_blocking=True)
        ox = torch.randint(0, 2 * pad + 1, (b,), generator=gen).to(dev, non_blocking=True)
        rows = (oy[:, None] + torch.arange(h, device=dev))[:, :, None]   # [B, H, 1]
        cols = (ox[:, None] + torch.arange(w, device=dev))[:, None, :]   # [B, 1, W]
        x = xp.permute(0, 2, 3, 1)[torch.arange(b, device=dev)[:, None, None], rows, cols].permute(0, 3, 1, 2)
    if flip:
        f = (torch.rand(b, generator=gen) < 0.5).to(dev, non_blocking=True)
        x = torch.where(f[:, None, None, None], x.flip(3), x)
    return x


def _ra_ops(m: int, size: int, channels: int) -> list[tuple[str, Callable[[torch.Tensor, float], torch.Tensor], bool]]:
    """RandAugment ops at magnitude bin m of 31 (torchvision's table): (name, fn(x, sign), signed)."""
    frac = m / 30.0
    ops = [
        ("identity", lambda x, s: x, False),
        ("shear_x", lambda x, s: TF.affine(x, angle=0.0, translate=[0, 0], scale=1.0,
                                           shear=[float(np.degrees(np.arctan(s * 0.3 * frac))), 0.0]), True),
        ("shear_y", lambda x, s: TF.affine(x, angle=0.0, translate=[0, 0], scale=1.0,
                                           shear=[0.0, float(np.degrees(np.arctan(s * 0.3 * frac)))]), True),
        ("translate_x", lambda x, s: TF.affine(x, angle=0.0, translate=[int(s * 150 / 331 * size * frac), 0],
                                               scale=1.0, shear=[0.0, 0.0]), True),
        ("translate_y", lambda x, s: TF.affine(x, angle=0.0, translate=[0, int(s * 150 / 331 * size * frac)],
                                               scale=1.0, shear=[0.0, 0.0]), True),
        ("rotate", lambda x, s: TF.rotate(x, s * 30.0 * frac), True),
        ("brightness", lambda x, s: TF.adjust_brightness(x, 1.0 + s * 0.9 * frac), True),
        ("contrast", lambda x, s: TF.adjust_contrast(x, 1.0 + s * 0.9 * frac), True),
        ("sharpness", lambda x, s: TF.adjust_sharpness(x, 1.0 + s * 0.9 * frac), True),
        ("posterize", lambda x, s: TF.posterize(x, int(8 - round(m / 7.5))), False),
        ("solarize", lambda x, s: TF.solarize(x, 255.0 * (1 - frac)), False),
        ("autocontrast", lambda x, s: TF.autocontrast(x), False),
        ("equalize", lambda x, s: TF.equalize(x), False),
    ]
    if channels == 3:
        ops.append(("color", lambda x, s: TF.adjust_saturation(x, 1.0 + s * 0.9 * frac), True))
    return ops


def rand_augment(x: torch.Tensor, gen: torch.Generator, magnitude: int) -> torch.Tensor:
    """RandAugment(N=1, M=magnitude), sampled per image on the host (CPU `gen`), applied per (op, sign) group.

    Sampling on the host makes the views independent of the device and the groups known without a device sync.
    """
    ops = _ra_ops(magnitude, x.shape[-1], x.shape[1])
    b, dev = x.shape[0], x.device
    op = torch.randint(0, len(ops), (b,), generator=gen)
    sign = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    out = x.clone()
    for k, (_, fn, signed) in enumerate(ops):
        for s in ((-1.0, 1.0) if signed else (1.0,)):
            idx = torch.nonzero((op == k) & ((sign == s) | (not signed)), as_tuple=True)[0]
            if len(idx):
                idx = idx.to(dev, non_blocking=True)
                out[idx] = fn(x[idx], s)
    return out


@dataclass(frozen=True)
class BaseAug:
    """The per-image augmentation shared by teacher and student (raw views), drawn from a CPU generator so one
    seed gives the same crops, flips and RandAugment ops on every device."""
    randaugment: int  # RandAugment magnitude (teacher/student.randaugment); 0 = off
    pad: int = 4
    flip: bool = True

    def __call__(self, x: torch.Tensor, seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(int(seed))
        x = random_crop_flip(x, gen, self.pad, self.flip)
        return rand_augment(x, gen, self.randaugment) if self.randaugment else x


# ------------------------------------------------------------------------------------------------ mixing

def _mixup(x, partner, lam, box):
    return lam * x + (1.0 - lam) * x[partner]


def _cutmix(x, partner, lam, box):
    y0, y1, x0, x1 = (int(v) for v in box)
    out = x.clone()
    out[:, :, y0:y1, x0:x1] = x[partner][:, :, y0:y1, x0:x1]
    return out


def mask_size(lam: float, h: int, w: int) -> tuple[np.ndarray, float]:
    """GradMix box (methods.md §3.3): lam' = 0.5 + 0.4 lam, sides floor(side * sqrt(1 - lam')), 10-50 % of the area.

    Returned unplaced as (0, bh, 0, bw) with lam_eff = 1 - bh*bw/(H*W) from the unclipped box.
    """
    r = np.sqrt(1.0 - (0.5 + 0.4 * lam))
    bh, bw = int(h * r), int(w * r)
    return np.array([0, bh, 0, bw], np.int64), 1.0 - bh * bw / (h * w)


def _unplaced_box(lam: float, h: int, w: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    return mask_size(lam, h, w)


def cutmix_box(lam: float, h: int, w: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Box of side sqrt(1-lam)*side at a uniform centre, clipped; returns the box and the area-corrected lam."""
    r = np.sqrt(1.0 - lam)
    ch, cw = int(h * r), int(w * r)
    cy, cx = rng.integers(h), rng.integers(w)
    y0, y1 = np.clip(cy - ch // 2, 0, h), np.clip(cy + ch // 2, 0, h)
    x0, x1 = np.clip(cx - cw // 2, 0, w), np.clip(cx + cw // 2, 0, w)
    return np.array([y0, y1, x0, x1], np.int64), 1.0 - float((y1 - y0) * (x1 - x0)) / (h * w)


@dataclass(frozen=True)
class Mixer:
    """An `augment.method` entry. A mixer's `mix` combines planned pairs, so relabel caches the teacher on its
    views; a masker's `placer` (osr/masking.py) puts a noise box on the image during training, because that view
    depends on the model being trained, and each image is its own partner. `box` draws a step's box and its
    area-corrected lam into the plan. An entry with neither `mix` nor `placer` never mixes."""
    mix: Callable[[torch.Tensor, torch.Tensor, float, np.ndarray], torch.Tensor] | None = None
    box: Callable[[float, int, int, np.random.Generator], tuple[np.ndarray, float]] | None = None
    placer: Placer | None = None

    @property
    def mixes(self) -> bool:
        return self.mix is not None or self.placer is not None

    def __call__(self, x: torch.Tensor, partner: torch.Tensor, lam: float, box: np.ndarray) -> torch.Tensor:
        """The mixed batch of float images [B, C, H, W], partner permutation [B], lam, box [y0, y1, x0, x1]."""
        return self.mix(x, partner, lam, box)


# name -> Mixer: the mixers, then every masker of osr/masking.py (a new masker is one PLACERS entry)
MIXERS: dict[str, Mixer] = {
    "none": Mixer(),
    "mixup": Mixer(_mixup),
    "cutmix": Mixer(_cutmix, box=cutmix_box),
    **{name: Mixer(box=_unplaced_box, placer=placer) for name, placer in PLACERS.items()},
}
METHODS = tuple(MIXERS)


TEACHER_STREAM, STUDENT_STREAM = 1, 2


def epoch_order(n: int, batch: int, seed: int, epoch: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample order [S, B] (last partial batch dropped) and per-step augmentation seeds [S] of one epoch."""
    if n < batch:
        raise OSRError(f"batch_size: {batch} is larger than the {n} training images")
    rng = np.random.default_rng([seed, stream, epoch])
    steps = n // batch
    return rng.permutation(n)[: steps * batch].reshape(steps, batch), rng.integers(0, 2**62, steps)


def make_plan(n: int, batch: int, epochs: int, seed: int, method: str, prob: float,
              image_hw: tuple[int, int]) -> dict[str, np.ndarray]:
    """The student's whole mixing schedule, so teacher outputs can be cached and runs replayed exactly.

    Arrays are indexed [epoch, step, ...]: ``order`` (sample indices), ``aug_seed``, ``mixed`` (bool),
    ``partner`` (in-batch permutation), ``lam`` (area-corrected for CutMix), ``box`` (y0, y1, x0, x1).
    For a masking method ``mixed`` marks masked steps, ``lam`` is lam_eff and ``box`` the unplaced box.
    """
    if method not in MIXERS:
        raise OSRError(f"augment.method: unknown method {method!r} (choose from {sorted(METHODS)})")
    mixer = MIXERS[method]
    h, w = image_hw
    orders, seeds, mixed, partner, lam, box = [], [], [], [], [], []
    for e in range(epochs):
        order, aug_seed = epoch_order(n, batch, seed, e, STUDENT_STREAM)
        rng = np.random.default_rng([seed, STUDENT_STREAM, e, 1])
        steps = len(order)
        u = rng.random(steps)
        mixed.append(((u > 1.0 - prob) | (prob >= 1.0)) & mixer.mixes)  # prob 1: every step, as GradMix's code
        perms = np.stack([rng.permutation(batch) for _ in range(steps)])
        partner.append(np.broadcast_to(np.arange(batch), perms.shape) if mixer.placer else perms)
        lam_e, box_e = rng.random(steps), np.zeros((steps, 4), np.int64)
        if mixer.box is not None:
            for s in range(steps):
                box_e[s], lam_e[s] = mixer.box(lam_e[s], h, w, rng)
        orders.append(order)
        seeds.append(aug_seed)
        lam.append(lam_e)
        box.append(box_e)
    return {"order": np.stack(orders), "aug_seed": np.stack(seeds), "mixed": np.stack(mixed),
            "partner": np.stack(partner), "lam": np.stack(lam).astype(np.float32), "box": np.stack(box),
            "method": np.asarray(method)}


@dataclass(frozen=True)
class PlannedStep:
    """One student step of the plan, materialised: raw view, mixed view (None on raw steps and for maskers)."""
    x_raw: torch.Tensor
    x_mixed: torch.Tensor | None
    y: torch.Tensor
    partner: torch.Tensor
    lam: float
    mixed: bool = False  # a mixed (or, for a masking method, masked) step
    box: np.ndarray | None = None
    seed: int = 0


def planned_steps(x: torch.Tensor, y: torch.Tensor, plan: dict[str, np.ndarray], epoch: int, aug: BaseAug):
    """Yield the PlannedSteps of one epoch; relabel (teacher) and distill (student) see identical images."""
    mixer = MIXERS[str(plan["method"])]
    dev = x.device
    # one host-to-device copy per epoch, not per step
    order, partners = (torch.from_numpy(np.ascontiguousarray(plan[k][epoch])).to(dev) for k in ("order", "partner"))
    for s in range(plan["order"].shape[1]):
        idx = order[s]
        seed = int(plan["aug_seed"][epoch, s])
        x_raw = to_float(aug(x[idx], seed))
        partner = partners[s]
        lam, box, mixed = float(plan["lam"][epoch, s]), plan["box"][epoch, s], bool(plan["mixed"][epoch, s])
        x_mixed = mixer(x_raw, partner, lam, box) if mixed and mixer.mix is not None else None
        yield PlannedStep(x_raw, x_mixed, y[idx], partner, lam, mixed, box, seed)
