"""Images as the networks take them (the stages keep uint8 [B, C, H, W] tensors and convert per batch, here), and
the noise images a model learns to reject."""
from __future__ import annotations

import torch


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 [B, C, H, W] -> float32 in [0, 1], channels_last."""
    return x.float().div_(255.0).contiguous(memory_format=torch.channels_last)


def noise_images(n: int, channels: int, size: int, seed: int) -> torch.Tensor:
    """`n` uint8 images of uniform noise [n, C, size, size], seeded: what no known class looks like."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randint(0, 256, (n, channels, size, size), generator=gen, dtype=torch.uint8)
