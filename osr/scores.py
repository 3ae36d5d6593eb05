"""Score registry: logits -> higher-is-more-known score. A new score is one function and one line."""
from __future__ import annotations

from typing import Callable

import torch


def msp(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    return torch.softmax(logits, 1).max(1).values


def mls(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    return logits.max(1).values


def energy(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Negative free energy T * logsumexp(z / T) (arXiv 2010.03759)."""
    return temperature * torch.logsumexp(logits / temperature, 1)


SCORES: dict[str, Callable[..., torch.Tensor]] = {"msp": msp, "mls": mls, "energy": energy}
