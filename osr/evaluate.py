"""Closed-set and open-set metrics of one model on the validation and test roles of a split."""
from __future__ import annotations

import numpy as np
import torch

from osr.metrics import accuracy, open_set_metrics
from osr.scores import SCORES
from osr.split import SplitTensors
from osr.train import predict


def evaluate_model(model: torch.nn.Module, data: SplitTensors, scores: list[str], temperature: float = 1.0,
                   batch_size: int = 512) -> tuple[dict, dict[str, np.ndarray]]:
    """Metrics dict and per-sample test scores. Known = label >= 0 (positive), unknown = label -1."""
    metrics: dict = {}
    zv = predict(model, data.x["val"], batch_size)
    metrics["val"] = {"acc": accuracy(data.y["val"].cpu().numpy(), zv.argmax(1).cpu().numpy())}
    z = predict(model, data.x["test"], batch_size)
    y = data.y["test"]
    known = y >= 0
    pred = z.argmax(1)
    correct = (pred[known] == y[known]).cpu().numpy()
    test = {"acc": float(correct.mean()), "n_known": int(known.sum()), "n_unknown": int((~known).sum()),
            "mean_max_logit_known": float(z[known].max(1).values.mean()),
            "mean_max_logit_unknown": float(z[~known].max(1).values.mean())}
    raw = {"label": y.cpu().numpy(), "pred": pred.cpu().numpy()}
    for name in scores:
        s = SCORES[name](z, temperature).cpu().numpy()
        raw[name] = s
        test[name] = open_set_metrics(s[known.cpu().numpy()], correct, s[~known.cpu().numpy()])
    metrics["test"] = test
    return metrics, raw
