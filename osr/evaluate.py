"""Closed-set and open-set metrics of one model on the validation and test roles of a split."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from osr import check_finite
from osr.jacobian import class_separation, jacobian_norm
from osr.metrics import accuracy, open_set_macro_f1, open_set_metrics
from osr.roles import SplitTensors
from osr.scores import SCORES, Bank, bank_of, needs_bank
from osr.train import predict

if TYPE_CHECKING:  # annotations only: osr.config is not among the DVC deps of this code
    from osr.config import Evaluate


def evaluate_model(model: torch.nn.Module, data: SplitTensors, section: Evaluate, seed: int,
                   name: str) -> tuple[dict, dict[str, np.ndarray]]:
    """Metrics dict and per-sample test scores. Known = label >= 0 (positive), unknown = label -1.

    `section` is params.yaml's `evaluate` section: `scores`, `batch_size`, `jacobian_samples`, `bootstrap` and each
    score's own settings (`Score.settings`). Scores that need the feature bank use the un-augmented training
    images (role ``train``); the macro-F1 threshold comes from the validation knowns' scores; `bootstrap` > 0
    resamples give each AUROC a 95 % interval. A non-finite logit or score stops it with one line naming `name`.
    """
    scores, batch_size = section.scores, section.batch_size
    metrics: dict = {}
    zv, fv = predict(model, data.x["val"], batch_size, features=True)
    metrics["val"] = {"acc": accuracy(data.y["val"].cpu().numpy(), zv.argmax(1).cpu().numpy()),
                      "class_separation": class_separation(fv, data.y["val"])}
    z, f = predict(model, data.x["test"], batch_size, features=True)
    for role, logits in (("val", zv), ("test", z)):
        check_finite(logits.float().cpu().numpy(), f"{name}: logits on the {role} images")
    bank = feature_bank(model, data, batch_size) if needs_bank(scores) else None
    y = data.y["test"]
    known = y >= 0
    pred = z.argmax(1)
    correct = (pred[known] == y[known]).cpu().numpy()
    test = {"acc": float(correct.mean()), "n_known": int(known.sum()), "n_unknown": int((~known).sum()),
            "mean_max_logit_known": float(z[known].max(1).values.mean()),
            "mean_max_logit_unknown": float(z[~known].max(1).values.mean())}
    raw = {"label": y.cpu().numpy(), "pred": pred.cpu().numpy()}
    for score_name in scores:
        score = SCORES[score_name]
        kw = score.settings_from(section)
        s = score(z, f, bank, **kw).cpu().numpy()
        check_finite(s, f"{name}: {score_name} scores on the test images")
        raw[score_name] = s
        test[score_name] = open_set_metrics(s[known.cpu().numpy()], correct, s[~known.cpu().numpy()],
                                            section.bootstrap, seed)
        test[score_name]["macro_f1"] = open_set_macro_f1(score(zv, fv, bank, **kw).cpu().numpy(), s, raw["pred"],
                                                   raw["label"], data.num_classes)
    metrics["test"] = test
    if section.jacobian_samples:
        metrics["jacobian"] = jacobian_summary(model, data, section.jacobian_samples, seed)
    return metrics, raw


def feature_bank(model: torch.nn.Module, data: SplitTensors, batch_size: int) -> Bank:
    """The features of the un-augmented training images (role ``train``), for the scores that need a bank."""
    return bank_of(predict(model, data.x["train"], batch_size, features=True)[1], data.y["train"])


def jacobian_summary(model: torch.nn.Module, data: SplitTensors, n: int, seed: int) -> dict:
    """‖J‖_F on n seeded validation (known) and n unknown test images; JND and AUROC of -‖J‖ as a score."""
    rng = np.random.default_rng(seed)
    unknown = torch.nonzero(data.y["test"] < 0).squeeze(1).cpu().numpy()
    pick_k = np.sort(rng.choice(len(data.x["val"]), min(n, len(data.x["val"])), replace=False))
    pick_u = np.sort(rng.choice(unknown, min(n, len(unknown)), replace=False))
    jk = jacobian_norm(model, data.x["val"][pick_k], seed=seed)
    ju = jacobian_norm(model, data.x["test"][pick_u], seed=seed)
    yk = data.y["val"][pick_k].cpu().numpy()
    return {"known_mean": float(jk.mean()), "unknown_mean": float(ju.mean()),
            "known_median": float(np.median(jk)), "unknown_median": float(np.median(ju)),
            "jnd": float(ju.mean() - jk.mean()),
            "auroc_neg_norm": open_set_metrics(-jk, np.ones(len(jk)), -ju)["auroc"],
            "per_class_known": {str(int(c)): float(jk[yk == c].mean()) for c in np.unique(yk)}}
