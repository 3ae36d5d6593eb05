"""The deployed classifier as one torch module: images in [0, 1] -> class decision, class index, score, logits.

`Deployed` wraps a model of this project with its open-set score (a `osr.scores.SCORES` entry and its settings)
and its threshold. The same module answers `osr predict --engine torch` and is the graph traced into model.onnx
(osr/onnx_graph.py), so both engines compute one formula. Its outputs, in order (`OUTPUTS`):

- ``decision``: the class index, or -1 (unknown) when the score is below the built-in threshold;
- ``class_index``: the class of highest logit, whatever the score;
- ``score``: the open-set score, higher is more known;
- ``logits``: the network's logits.

A score that needs training features (`Score.needs_bank`: kNN) carries its bank as buffers of the module, so the
bank is inside both model files; `bounded_bank` keeps it to a bounded, seeded subsample of the known training
images.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from osr import OSRError
from osr.io import load_torch
from osr.models import build, load_state
from osr.pixels import to_float
from osr.scores import SCORES, Bank

OUTPUTS = ("decision", "class_index", "score", "logits")


class Deployed(nn.Module):
    """A model, its score and threshold; `forward` maps float images [N, C, H, W] in [0, 1] to `OUTPUTS`."""

    def __init__(self, model: nn.Module, score: str, settings: dict, threshold: float, bank: Bank | None = None):
        super().__init__()
        if score not in SCORES:
            raise OSRError(f"score: unknown score {score!r} (choose from {sorted(SCORES)})")
        if SCORES[score].needs_bank and bank is None:
            raise OSRError(f"score: {score} needs the training-feature bank")
        self.model, self.score_name, self.settings = model.eval(), score, dict(settings)
        self.register_buffer("threshold", torch.tensor(float(threshold)))
        self.bank_groups = bank.groups if bank is not None else ()
        self.register_buffer("bank_features", bank.features if bank is not None else None)
        self.register_buffer("bank_labels", bank.labels if bank is not None else None)

    @property
    def bank(self) -> Bank | None:
        return Bank(self.bank_features, self.bank_labels, self.bank_groups) if self.bank_groups else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        f = self.model.features(x)
        z = self.model.fc(f)
        s = SCORES[self.score_name](z, f, self.bank, **self.settings)
        c = z.argmax(1)
        return torch.where(s >= self.threshold, c, torch.full_like(c, -1)), c, s, z

    def with_threshold(self, threshold: float) -> Deployed:
        """This classifier (the same module) with another built-in threshold."""
        self.threshold.fill_(float(threshold))
        return self

    def checkpoint(self, meta: dict, calibration: dict | None = None) -> dict:
        """The model file of an artifact: this project's `{"meta", "state"}` (so `osr.models.load_model` and a
        network's `init` read it as any model file) and the deployment's own entries under "deploy", with the
        calibration scores (name -> list of floats) when given."""
        deploy = {"score": self.score_name, "settings": self.settings, "threshold": float(self.threshold)}
        if self.bank is not None:
            deploy["bank"] = {"features": self.bank_features.cpu(), "labels": self.bank_labels.cpu(),
                              "groups": [list(g) for g in self.bank_groups]}
        return {"meta": meta, "state": self.model.state_dict(),
                "deploy": deploy | ({"calibration": calibration} if calibration else {})}


def load_deployed(path: str | Path, device: torch.device) -> tuple[Deployed, dict]:
    """The `Deployed` an artifact's model file holds (`Deployed.checkpoint`), eval mode, on `device`, and the
    file's "deploy" entries."""
    ck = load_torch(path, map_location=device)
    if not isinstance(ck, dict) or not {"meta", "state", "deploy"} <= set(ck):
        raise OSRError(f"{path}: not a deployed model of this project (no meta/state/deploy)")
    model = build(**ck["meta"])
    load_state(model, ck["state"], str(path))
    d = ck["deploy"]
    b = d.get("bank")
    bank = Bank(b["features"], b["labels"], tuple(tuple(g) for g in b["groups"])) if b else None
    return Deployed(model, d["score"], d["settings"], d["threshold"], bank).to(device).eval(), d


def bounded_bank(bank: Bank, limit: int, k: int, seed: int) -> Bank:
    """At most about `limit` rows of `bank`: every class keeps its share of the limit (at least `k` rows, or all it
    has), drawn with `seed`; a bank of `limit` rows or fewer is kept whole. Each class keeping its share keeps the
    kNN score's per-class top-k sums comparable across classes."""
    total = len(bank.features)
    if total <= limit:
        return bank
    rng = np.random.default_rng(seed)
    rows, groups = [], []
    for label, a, b in bank.groups:
        n = min(b - a, max(k, limit * (b - a) // total))
        groups.append((label, len(rows), len(rows) + n))
        rows += (a + np.sort(rng.choice(b - a, n, replace=False))).tolist()
    keep = torch.as_tensor(rows, device=bank.features.device)
    return Bank(bank.features[keep], bank.labels[keep], tuple(groups))


@torch.inference_mode()
def outputs(module: nn.Module, x: torch.Tensor, batch_size: int = 256) -> dict[str, np.ndarray]:
    """`OUTPUTS` of a `Deployed` for uint8 images [N, C, H, W], in batches, as numpy arrays."""
    device = next(module.parameters()).device
    parts: dict[str, list[np.ndarray]] = {k: [] for k in OUTPUTS}
    for i in range(0, len(x), batch_size):
        for k, v in zip(OUTPUTS, module(to_float(x[i:i + batch_size].to(device))), strict=True):
            parts[k].append(v.float().cpu().numpy() if v.is_floating_point() else v.cpu().numpy())
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
