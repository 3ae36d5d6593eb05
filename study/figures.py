"""The report's figures: the two sides of mixing (reports/suite/two_sides.png), Jacobian against AUROC
(jacobian_auroc.png) and per ablation study the Δ bars and the logit-scale figure (reports/ablation/*.png)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import ScalarFormatter

from osr.augment import METHODS
from osr.plots import plt, save_figure
from study.aggregate import recipe
from study.experiments import nested


def two_sides_figure(agg: dict, path: Path) -> None:
    """Per (profile, benchmark): acc (top) and AUROC (bottom) per mixer, plain vs AD student, error bars = std."""
    g = {(x["profile"], x["benchmark"], x["method"], x["mixing"]): x for x in agg["groups"]
         if x["teacher_loss"] == "ce" and not x["variant"] and x["method"] in ("ce", "asym")}
    panels = list(dict.fromkeys((k[0], k[1]) for k in g)) or [("", "no plain or AD students")]
    fig, axes = plt.subplots(2, len(panels), figsize=(4.2 * len(panels), 6), squeeze=False)
    for col, (profile, bench) in enumerate(panels):
        mixers = [m for m in METHODS if (profile, bench, "ce", m) in g or (profile, bench, "asym", m) in g]
        for row, (key, label) in enumerate((("acc", "closed-set acc (%)"), ("auroc_mls", "AUROC, MLS (%)"))):
            ax = axes[row, col]
            lows, highs = [], []
            for i, (method, name) in enumerate((("ce", "plain"), ("asym", "AD"))):
                stats = [g.get((profile, bench, method, m), {}).get(key) for m in mixers]
                x = [j + (i - 0.5) * 0.38 for j, s in enumerate(stats) if s]
                means = [s["mean"] for s in stats if s]
                bars = ax.bar(x, means, 0.36, yerr=[s["std"] for s in stats if s], capsize=3, label=name)
                ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
                lows += [s["mean"] - s["std"] for s in stats if s]
                highs += [s["mean"] + s["std"] for s in stats if s]
            ax.set_xticks(range(len(mixers)), mixers)
            lo = max(0.0, 5 * (min(lows, default=0.0) // 5) - 10)  # zoomed: the differences are a few points
            ax.set(ylabel=label, ylim=(lo, min(100.0, max(highs, default=100.0) + 6)))
            ax.set_title(f"{bench} ({profile})" if row == 0 else "", fontsize=9)
            ax.legend(fontsize=7)
    fig.suptitle("Two sides: closed-set accuracy vs open-set AUROC per mixer", fontsize=10)
    save_figure(fig, path)


def jacobian_scatter(rows: list[dict], path: Path) -> None:
    """Student Jacobian diagnostics vs AUROC (MLS), one point per experiment, coloured by recipe."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), squeeze=False)
    colours = {label: f"C{i}" for i, label in enumerate(dict.fromkeys(recipe(r) for r in rows))}
    for ax, (key, xlabel) in zip(axes[0], (("jnd", "JND: mean ‖J‖ unknown − known"),
                                           ("known_mean", "mean ‖J‖ on known (validation) images"))):
        for label, colour in colours.items():
            pts = [(nested(r["metrics"]["student"], ("jacobian", key)), nested(r["metrics"]["student"],
                    ("test", "mls", "auroc"))) for r in rows if recipe(r) == label]
            pts = [(x, 100 * y) for x, y in pts if x is not None and y is not None]
            if pts:
                ax.scatter(*zip(*pts), color=colour, label=label, s=24)
        ax.set(xlabel=xlabel, ylabel="AUROC, MLS (%)")
        ax.legend(fontsize=7)
    fig.suptitle("Student Jacobian norm vs open-set AUROC (one point per experiment)", fontsize=10)
    save_figure(fig, path)


def _colour(e: dict) -> str:
    """Red for AD recipes, blue for the rest, in both figures."""
    return "C3" if e["method"] == "asym" else "C0"



def study_figure(s: dict, path) -> None:
    """Δ AUROC and Δ acc vs the reference per recipe, error bars = the 95 % half-width (seed noise); a Δ without
    an interval is drawn hatched."""
    entries = [e for e in s["entries"] if e["recipe"] != s["reference"] and e["d_auroc_mls"]]
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.4 * len(entries) + 1.6), sharey=True, squeeze=False)
    y = np.arange(len(entries))
    for ax, key, label in ((axes[0, 0], "d_auroc_mls", "Δ AUROC, MLS (pt)"), (axes[0, 1], "d_acc", "Δ acc (pt)")):
        d = [e[key] for e in entries]
        mean = [x["mean_diff"] for x in d]
        err = [(x["ci95"][1] - x["ci95"][0]) / 2 if x["ci95"] else np.nan for x in d]
        colours = [_colour(e) for e in entries]
        bars = ax.barh(y, mean, xerr=err, color=colours, capsize=3)
        for bar, x in zip(bars, d):
            if not x["ci95"]:  # no interval: hatched and pale, not a bar without error
                bar.set(hatch="//", alpha=0.45)
        ax.axvline(0, color="k", lw=0.8)
        ax.set(xlabel=label)
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(y, [e["recipe"] for e in entries], fontsize=8)
    axes[0, 0].invert_yaxis()
    fig.suptitle(f"Ablation vs {s['reference']}: {s['profile']} / {s['benchmark']} / split {s['split']} "
                 "(red = AD; bars: 95 % interval from seed noise; hatched: noise not measured)", fontsize=9)
    save_figure(fig, path)


def spread_labels(points: list[tuple[float, float]], gap: float, reach: float) -> list[float]:
    """Label heights for points (x, y), in input order: walking up from the lowest, each label is raised to at
    least `gap` above any already placed label whose x lies within `reach`, so neighbouring labels do not overlap
    (x in the axis' units; the scale figure passes log10 of the logit scale)."""
    placed: list[tuple[float, float]] = []
    heights = [0.0] * len(points)
    for i in sorted(range(len(points)), key=lambda k: points[k][1]):
        x, y = points[i]
        for px, py in sorted(placed, key=lambda p: p[1]):
            if abs(px - x) < reach and py - gap < y < py + gap:
                y = py + gap
        placed.append((x, y))
        heights[i] = y
    return heights


def scale_figure(s: dict, path) -> None:
    """AUROC against the mean max logit on known test images, per recipe: MLS (filled) reads the logit scale,
    kNN on the features (hollow, joined to it) does not; the gap between the two shows what the scale costs."""
    entries = [e for e in s["entries"] if e["auroc_mls"] and e["auroc_knn"] and e["max_logit_known"]]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    points = [(e["max_logit_known"]["mean"], e["auroc_mls"]["mean"]) for e in entries]
    span = np.ptp([v for e in entries for v in (e["auroc_mls"]["mean"], e["auroc_knn"]["mean"])]) or 1.0
    heights = spread_labels([(np.log10(x), y) for x, y in points], gap=0.03 * span, reach=0.25)
    for e, (x, mls), label_y in zip(entries, points, heights):
        colour, knn = _colour(e), e["auroc_knn"]["mean"]
        ax.plot([x, x], [mls, knn], color=colour, lw=0.8, alpha=0.5)
        ax.scatter([x], [mls], color=colour, s=28, zorder=3)
        ax.scatter([x], [knn], facecolors="none", edgecolors=colour, s=28, zorder=3)
        ax.annotate(e["recipe"], (x, mls), xytext=(x * 1.03, label_y), fontsize=6, va="center",
                    arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.6"} if label_y != mls else None)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(ScalarFormatter())
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set(xlabel="mean max logit, known test images (log)", ylabel="AUROC (%)")
    ax.grid(alpha=0.3)
    ax.scatter([], [], color="k", s=28, label="MLS (reads the logit scale)")
    ax.scatter([], [], facecolors="none", edgecolors="k", s=28, label="kNN on features (does not)")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"What mixing costs: logit scale vs features, {s['profile']} / {s['benchmark']} / split {s['split']} "
                 "(red = AD)", fontsize=9)
    save_figure(fig, path)
