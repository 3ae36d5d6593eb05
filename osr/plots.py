"""PNG figures (matplotlib Agg) and the data behind them.

DVC's HTML plots need a CDN, so PNGs give the quick offline look; the same curves are also written as data
(`roc_points`, `histogram_rows`: lists of flat JSON objects), which dvc.yaml declares as plots so that
`dvc plots diff exp-a exp-b` overlays experiments in one chart.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from osr.io import atomic_path  # noqa: E402


def save_figure(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def image_grid(images: np.ndarray, titles: list[str], path: Path, cols: int = 8, suptitle: str = "") -> None:
    """images: uint8 [N, H, W, C]."""
    rows = int(np.ceil(len(images) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, t in zip(axes.ravel(), images, titles):
        ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None)
        ax.set_title(t, fontsize=7)
    fig.suptitle(suptitle, fontsize=9)
    save_figure(fig, path)


ROC_POINTS = 200
HIST_BINS = 40


def _roc(sk: np.ndarray, su: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fpr, tpr, _ = roc_curve(np.r_[np.ones(len(sk)), np.zeros(len(su))], np.r_[sk, su], drop_intermediate=True)
    return fpr, tpr


def roc_points(sk: np.ndarray, su: np.ndarray, max_points: int = ROC_POINTS) -> list[dict]:
    """The ROC of known (positive) vs unknown scores as rows {fpr, tpr}, from (0, 0) to (1, 1), non-decreasing in
    both; at most `max_points` rows (evenly spaced corners of sklearn's curve, both ends kept)."""
    fpr, tpr = _roc(sk, su)
    if len(fpr) > max_points:
        keep = np.unique(np.linspace(0, len(fpr) - 1, max_points).round().astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return [{"fpr": float(f), "tpr": float(t)} for f, t in zip(fpr, tpr)]


def _edges(sk: np.ndarray, su: np.ndarray, bins: int = HIST_BINS) -> np.ndarray:
    lo, hi = float(min(sk.min(), su.min())), float(max(sk.max(), su.max()))
    return np.linspace(lo, hi if hi > lo else lo + 1.0, bins)


def histogram_rows(sk: np.ndarray, su: np.ndarray, bins: int = HIST_BINS) -> list[dict]:
    """The score histogram of `score_histograms` as rows {score (bin centre), known, unknown} (densities)."""
    edges = _edges(sk, su, bins)
    known, _ = np.histogram(sk, edges, density=True)
    unknown, _ = np.histogram(su, edges, density=True)
    return [{"score": float(c), "known": float(k), "unknown": float(u)}
            for c, k, u in zip((edges[:-1] + edges[1:]) / 2, known, unknown)]


def roc_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> None:
    """curves: label -> (known scores, unknown scores)."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for label, (sk, su) in curves.items():
        fpr, tpr = _roc(sk, su)
        ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="FPR (unknown accepted)", ylabel="TPR (known accepted)", title=title)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def score_histograms(panels: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> None:
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, (label, (sk, su)) in zip(axes[0], panels.items()):
        bins = _edges(sk, su)
        ax.hist(sk, bins, alpha=0.6, density=True, label="known")
        ax.hist(su, bins, alpha=0.6, density=True, label="unknown")
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def training_curves(histories: dict[str, list[dict]], keys: list[str], path: Path) -> None:
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for label, hist in histories.items():
            pts = [(h["epoch"], h[key]) for h in hist if h.get(key) is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=label)
        ax.set(xlabel="epoch", title=key)
        ax.legend(fontsize=7)
    save_figure(fig, path)


def calibration_plot(panels: dict[str, np.ndarray], threshold: float, path: Path, title: str) -> None:
    """Score densities (label -> scores: validation knowns, test knowns, test unknowns) on shared bins, with the
    threshold drawn."""
    values = np.concatenate([v for v in panels.values() if len(v)])
    lo, hi = float(values.min()), float(values.max())
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, HIST_BINS)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, scores in panels.items():
        ax.hist(scores, bins, alpha=0.45, density=True, label=f"{label} ({len(scores)})")
    ax.axvline(threshold, color="k", ls="--", lw=1.2, label=f"threshold {threshold:.4g}")
    ax.set(xlabel="score (accept when >= threshold)", ylabel="density", title=title)
    ax.legend(fontsize=7)
    save_figure(fig, path)
