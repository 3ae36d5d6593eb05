"""Score registry: (logits, features, context) -> higher-is-more-known score. A new score is one function and one line.

Features are the pooled penultimate features (the representation feeding the head); ``knn`` also needs the
training-feature bank in the context (built by ``bank_of`` from the un-augmented training images).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class ScoreContext:
    temperature: float = 1.0                 # energy
    bank: torch.Tensor | None = None         # unit-normalised training features [M, D] (knn)
    bank_labels: torch.Tensor | None = None  # their labels [M]
    k: int = 3                               # neighbours per class (knn)


def msp(z: torch.Tensor, f: torch.Tensor | None = None, ctx: ScoreContext = ScoreContext()) -> torch.Tensor:
    return torch.softmax(z, 1).max(1).values


def mls(z: torch.Tensor, f: torch.Tensor | None = None, ctx: ScoreContext = ScoreContext()) -> torch.Tensor:
    return z.max(1).values


def energy(z: torch.Tensor, f: torch.Tensor | None = None, ctx: ScoreContext = ScoreContext()) -> torch.Tensor:
    """Negative free energy T * logsumexp(z / T) (arXiv 2010.03759)."""
    return ctx.temperature * torch.logsumexp(z / ctx.temperature, 1)


def ovr(z: torch.Tensor, f: torch.Tensor | None = None, ctx: ScoreContext = ScoreContext()) -> torch.Tensor:
    """Minus the sample-wise one-vs-rest loss at the predicted class (m-OvR test score, margin off).

    u = -log sigmoid(z_yhat) - sum_{k != yhat} log(1 - sigmoid(z_k)), with z = T cos(theta) for a cosine head.
    """
    pred = F.one_hot(z.argmax(1), z.shape[1]).bool()
    u = torch.where(pred, F.softplus(-z), F.softplus(z)).sum(1)
    return -u


def knn(z: torch.Tensor, f: torch.Tensor | None = None, ctx: ScoreContext = ScoreContext(),
        chunk: int = 1024) -> torch.Tensor:
    """GradMix's kNN score: s_c = sum of the top-K cosines to class c's training features, normalised over
    classes; the score is max_c s_c."""
    if f is None or ctx.bank is None or ctx.bank_labels is None:
        raise ValueError("knn needs features and a training-feature bank")
    classes = ctx.bank_labels.unique()
    out = []
    for i in range(0, len(f), chunk):
        sim = F.normalize(f[i:i + chunk].float(), dim=1) @ ctx.bank.T
        s = torch.stack([sim[:, ctx.bank_labels == c].topk(min(ctx.k, int((ctx.bank_labels == c).sum())), 1)
                         .values.sum(1) for c in classes], 1)
        out.append((s / s.sum(1, keepdim=True).clamp_min(1e-12)).max(1).values)
    return torch.cat(out) if out else torch.zeros(0)


SCORES: dict[str, Callable[..., torch.Tensor]] = {"msp": msp, "mls": mls, "energy": energy, "ovr": ovr, "knn": knn}
NEEDS_BANK = {"knn"}


def bank_of(features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return F.normalize(features.float(), dim=1), labels
