"""Open-set metrics. AUROC/ROC/F1 from scikit-learn; OSCR by hand (no maintained library has it)."""
from __future__ import annotations

import numpy as np
from scipy.stats import bootstrap
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score, roc_curve


def oscr(s_known: np.ndarray, correct_known: np.ndarray, s_unknown: np.ndarray) -> float:
    """Open-set classification rate (Dhamija et al. 2018): area under CCR vs FPR, tie-aware, <= accuracy."""
    s = np.r_[s_known, s_unknown]
    o = np.argsort(-s, kind="stable")
    s = s[o]
    corr = np.r_[correct_known.astype(float), np.zeros(len(s_unknown))][o]
    unk = np.r_[np.zeros(len(s_known)), np.ones(len(s_unknown))][o]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # one point per distinct threshold
    ccr = np.r_[0.0, np.cumsum(corr)[last] / len(s_known)]
    fpr = np.r_[0.0, np.cumsum(unk)[last] / len(s_unknown)]
    return float(np.trapezoid(ccr, fpr))


def fpr_at_tpr(s_known: np.ndarray, s_unknown: np.ndarray, tpr_level: float = 0.95) -> float:
    """Classic FPR@95TPR: fraction of unknowns accepted at the threshold accepting 95% of knowns."""
    is_known = np.r_[np.ones(len(s_known)), np.zeros(len(s_unknown))]
    fpr, tpr, _ = roc_curve(is_known, np.r_[s_known, s_unknown])
    return float(fpr[np.searchsorted(tpr, tpr_level)])


def _auroc(s_known: np.ndarray, s_unknown: np.ndarray) -> float:
    return float(roc_auc_score(np.r_[np.ones(len(s_known)), np.zeros(len(s_unknown))], np.r_[s_known, s_unknown]))


def auroc_ci95(s_known: np.ndarray, s_unknown: np.ndarray, resamples: int, seed: int) -> list[float]:
    """95 % percentile-bootstrap interval of the AUROC over the test images (knowns and unknowns resampled
    separately, so each resample keeps the test set's known/unknown ratio)."""
    res = bootstrap((s_known, s_unknown), _auroc, n_resamples=resamples, vectorized=False, paired=False,
                    method="percentile", confidence_level=0.95, rng=np.random.default_rng(seed))
    return [float(res.confidence_interval.low), float(res.confidence_interval.high)]


def open_set_metrics(s_known: np.ndarray, correct_known: np.ndarray, s_unknown: np.ndarray,
                     bootstrap_resamples: int = 0, seed: int = 0) -> dict:
    """AUROC, OSCR, FPR@95TPR and AUPR-in/out, known = positive; with `bootstrap_resamples` also the AUROC's
    95 % bootstrap interval (`auroc_ci95`)."""
    is_known = np.r_[np.ones(len(s_known)), np.zeros(len(s_unknown))]
    s = np.r_[s_known, s_unknown]
    ci = {"auroc_ci95": auroc_ci95(s_known, s_unknown, bootstrap_resamples, seed)} if bootstrap_resamples else {}
    return {"auroc": _auroc(s_known, s_unknown), **ci,
            "oscr": oscr(s_known, correct_known, s_unknown),
            "fpr95": fpr_at_tpr(s_known, s_unknown),
            "aupr_in": float(average_precision_score(is_known, s)),
            "aupr_out": float(average_precision_score(1 - is_known, -s))}


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(accuracy_score(y_true, y_pred))


def open_set_macro_f1(s_val_known: np.ndarray, s_test: np.ndarray, pred_test: np.ndarray, y_test: np.ndarray,
                      num_classes: int, reject: float = 0.1) -> float:
    """Protocol B macro-F1 (Jacobian paper): predict the class if s >= tau, else "unknown" (label K), with tau
    rejecting `reject` of the known *validation* samples; macro F1 over the K + 1 labels. y_test: -1 = unknown."""
    tau = np.quantile(s_val_known, reject)
    y_true = np.where(y_test < 0, num_classes, y_test)
    y_pred = np.where(s_test >= tau, pred_test, num_classes)
    return float(f1_score(y_true, y_pred, labels=np.arange(num_classes + 1), average="macro", zero_division=0))
