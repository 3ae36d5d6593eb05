"""Images as the networks take them: the stages keep uint8 [B, C, H, W] tensors and convert per batch, here."""
from __future__ import annotations

import torch


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 [B, C, H, W] -> float32 in [0, 1], channels_last."""
    return x.float().div_(255.0).contiguous(memory_format=torch.channels_last)
