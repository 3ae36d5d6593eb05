"""PNG figures (matplotlib Agg): DVC's HTML plots need a CDN, PNGs render offline and in PRs."""
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


def roc_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> None:
    """curves: label -> (known scores, unknown scores)."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for label, (sk, su) in curves.items():
        fpr, tpr, _ = roc_curve(np.r_[np.ones(len(sk)), np.zeros(len(su))], np.r_[sk, su])
        ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="FPR (unknown accepted)", ylabel="TPR (known accepted)", title=title)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def score_histograms(panels: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> None:
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, (label, (sk, su)) in zip(axes[0], panels.items()):
        bins = np.linspace(min(sk.min(), su.min()), max(sk.max(), su.max()), 40)
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
            pts = [(h["epoch"], h[key]) for h in hist if key in h]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=label)
        ax.set(xlabel="epoch", title=key)
        ax.legend(fontsize=7)
    save_figure(fig, path)
