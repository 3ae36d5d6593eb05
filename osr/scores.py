"""Score registry: name -> `Score` entry, each a higher-is-more-known score of (logits, features, bank).

As in OpenOOD's postprocessors, an entry declares what it needs besides the logits (`needs_bank`: the
training-feature bank that ``bank_of`` builds from the un-augmented training images) and its own settings (the
keys of params.yaml's ``evaluate`` section it reads, by keyword), so a new score is one function and one entry.
Features are the pooled penultimate features (the representation feeding the head).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from osr import OSRError
from osr.knn import knn_class_scores

if TYPE_CHECKING:  # annotations only: osr.config is not among the DVC deps of this code
    from osr.config import Evaluate


class Bank(NamedTuple):
    features: torch.Tensor  # unit-normalised training features [M, D], grouped by class (ascending label)
    labels: torch.Tensor    # their labels [M]
    groups: tuple[tuple[int, int, int], ...]  # (label, first row, end row) of each class's block of rows


def bank_of(features: torch.Tensor, labels: torch.Tensor) -> Bank:
    """The bank of training `features` (unit-normalised) and their `labels`, its rows sorted by label (stable) so
    each class is a block of rows; `groups` holds the blocks as plain ints, which a traced graph (model.onnx) keeps
    as constants."""
    order = torch.argsort(labels, stable=True)
    labels = labels[order]
    classes, starts, counts = np.unique(labels.cpu().numpy(), return_index=True, return_counts=True)
    groups = tuple((int(c), int(a), int(a + n)) for c, a, n in zip(classes, starts, counts, strict=True))
    return Bank(F.normalize(features[order].float(), dim=1), labels, groups)


def msp(z: torch.Tensor, f: torch.Tensor | None = None, bank: Bank | None = None) -> torch.Tensor:
    return torch.softmax(z, 1).max(1).values


def mls(z: torch.Tensor, f: torch.Tensor | None = None, bank: Bank | None = None) -> torch.Tensor:
    return z.max(1).values


def energy(z: torch.Tensor, f: torch.Tensor | None = None, bank: Bank | None = None, *,
           temperature: float) -> torch.Tensor:
    """Negative free energy T * logsumexp(z / T) (arXiv 2010.03759)."""
    t = float(temperature)
    return t * torch.logsumexp(z / t, 1)


def ovr(z: torch.Tensor, f: torch.Tensor | None = None, bank: Bank | None = None) -> torch.Tensor:
    """Minus the sample-wise one-vs-rest loss at the predicted class (m-OvR test score, margin off).

    u = -log sigmoid(z_yhat) - sum_{k != yhat} log(1 - sigmoid(z_k)), with z = T cos(theta) for a cosine head.
    """
    pred = F.one_hot(z.argmax(1), z.shape[1]).bool()
    u = torch.where(pred, F.softplus(-z), F.softplus(z)).sum(1)
    return -u


def knn(z: torch.Tensor, f: torch.Tensor | None = None, bank: Bank | None = None, *, k: int,
        chunk: int = 1024) -> torch.Tensor:
    """GradMix's kNN score: s_c = sum of the top-K cosines to class c's training features, normalised over
    classes; the score is max_c s_c (`osr.knn`). On a contrastive model the features are its projection."""
    if f is None or bank is None:
        raise ValueError("knn needs features and a training-feature bank")
    label, first, end = min(bank.groups, key=lambda g: g[2] - g[1])
    if k > end - first:
        raise OSRError(f"evaluate.knn_k: {k} is more than the {end - first} training images of known class {label}")
    classes = [g[0] for g in bank.groups]  # plain ints: a traced graph (model.onnx) keeps them as constants
    if len(f) <= chunk:  # one block: also the whole of a traced graph, whatever its batch size
        return knn_class_scores(f, bank.features, bank.labels, classes, k).max(1).values
    return torch.cat([knn_class_scores(f[i:i + chunk], bank.features, bank.labels, classes, k).max(1).values
                      for i in range(0, len(f), chunk)])


@dataclass(frozen=True)
class Score:
    """A registry entry: `fn(logits, features, bank, **settings)`, what it needs, and its settings."""
    fn: Callable[..., torch.Tensor]
    needs_bank: bool = False  # the training-feature bank (so the evaluation also passes the train role)
    settings: Mapping[str, str] = field(default_factory=dict)  # keyword of fn -> key of the `evaluate` section

    def __call__(self, z: torch.Tensor, f: torch.Tensor | None = None, bank: Bank | None = None,
                 **settings) -> torch.Tensor:
        return self.fn(z, f, bank, **settings)

    def settings_from(self, section: Evaluate) -> dict:
        """This score's keyword arguments, read from params.yaml's `evaluate` section."""
        return {kw: getattr(section, key) for kw, key in self.settings.items()}


SCORES: dict[str, Score] = {
    "msp": Score(msp),
    "mls": Score(mls),
    "energy": Score(energy, settings={"temperature": "energy_temperature"}),
    "ovr": Score(ovr),
    "knn": Score(knn, needs_bank=True, settings={"k": "knn_k"}),
}


def needs_bank(names: list[str]) -> bool:
    """Whether any of these scores reads the training-feature bank."""
    return any(SCORES[n].needs_bank for n in names)
