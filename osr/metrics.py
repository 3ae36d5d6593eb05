"""Open-set metrics. AUROC/ROC/F1 from scikit-learn; OSCR by hand (no maintained library has it)."""
from __future__ import annotations

import numpy as np
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


def open_set_metrics(s_known: np.ndarray, correct_known: np.ndarray, s_unknown: np.ndarray) -> dict[str, float]:
    """AUROC, OSCR, FPR@95TPR and AUPR-in/out, known = positive."""
    is_known = np.r_[np.ones(len(s_known)), np.zeros(len(s_unknown))]
    s = np.r_[s_known, s_unknown]
    return {"auroc": float(roc_auc_score(is_known, s)),
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
