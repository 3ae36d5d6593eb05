"""The ablation study: every recipe and variant on one split against the plain CutMix student, with seed noise.

A study exists for each (profile, benchmark, split) where an ablation variant ran (osr/grid.py VARIANTS). Each
recipe there is compared with ``REFERENCE`` by ``osr.claims.compare`` (mean over seeds, 95 % t-interval from the
split's pooled seed noise). The best AD variant is the AD recipe with mixing (AD without mixing, `asym-none`, is
no answer to what mixing costs, nor is a measurement variant such as `+fp32` or a student schedule such as
`+s_e160`, which the reference did not get) with the highest AUROC (MLS) among
those whose accuracy is at most 1 point below the reference; if none qualifies, or the reference has not run (no Δ
is shown then), the one with the highest AUROC.
"""
from __future__ import annotations

import numpy as np
from matplotlib.ticker import ScalarFormatter

from osr.claims import compare, diff_text, values_by_split
from osr.grid import MEASUREMENT, OURS, SCHEDULE, VARIANTS, recipe_variants
from osr.plots import plt, save_figure
from osr.report import generated_line, pm

REFERENCE = "ce-cutmix"
DELTAS = ("acc", "auroc_mls")  # compared with the reference
# read per recipe as well: OSCR, and the diagnostics of what MLS reads (the logit scale) against a score that does
# not read it (kNN on the features)
DIAGNOSTICS = ("oscr_mls", "auroc_knn", "max_logit_known", "max_logit_unknown")
ACC_TOLERANCE = 1.0  # points of accuracy the best AD variant may give up against the reference


def places(rows: list[dict]) -> list[tuple[str, str, int]]:
    return sorted({(r["profile"], r["benchmark"], r["split"]) for r in rows if r["variant"]})


def study(rows: list[dict], profile: str, benchmark: str, split: int) -> dict:
    """Entries per recipe on one split (means over seeds, deltas vs the reference) and the best AD variant."""
    here = [r for r in rows if (r["profile"], r["benchmark"], r["split"]) == (profile, benchmark, split)]
    order = sorted(here, key=lambda r: (r["recipe_id"] != REFERENCE, r["variant"], r["recipe_id"]))
    recipes = list(dict.fromkeys(r["recipe_id"] for r in order))
    values = {metric: values_by_split(here, metric) for metric in DELTAS + DIAGNOSTICS}
    entries = []
    for rec in recipes:
        first = next(r for r in here if r["recipe_id"] == rec)
        e = {"recipe": rec, "method": first["method"], "mixing": first["mixing"]}
        for metric, by_recipe in values.items():
            vals = by_recipe.get((profile, benchmark, rec), {}).get(split, [])
            e[metric] = {"mean": float(np.mean(vals)), "n": len(vals),
                         "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else None} if vals else None
            if metric in DELTAS:
                e[f"d_{metric}"] = compare(here, profile, benchmark, REFERENCE, rec, metric) if rec != REFERENCE \
                    else None
        entries.append(e)
    ad = [e for e in entries if e["method"] == "asym" and e["mixing"] != "none" and e["auroc_mls"] and e["acc"]
          and not recipe_variants(e["recipe"]) & (MEASUREMENT | SCHEDULE)]
    ref = next((e for e in entries if e["recipe"] == REFERENCE and e["acc"]), None)
    ok = [e for e in ad if ref and e["acc"]["mean"] >= ref["acc"]["mean"] - ACC_TOLERANCE]
    best = max(ok or ad, key=lambda e: e["auroc_mls"]["mean"], default=None)
    return {"profile": profile, "benchmark": benchmark, "split": split, "reference": REFERENCE, "entries": entries,
            "reference_ran": ref is not None, "best_ad": best["recipe"] if best else None,
            "best_ad_within_tolerance": bool(ok)}


def _colour(e: dict) -> str:
    """Red for AD recipes, blue for the rest, in both figures."""
    return "C3" if e["method"] == "asym" else "C0"


def _delta(e: dict, key: str, reference: str) -> str:
    """The difference, "reference" on the reference's own row, a dash where there is nothing to compare with."""
    if e[key]:
        return diff_text(e[key])
    return "reference" if e["recipe"] == reference else "–"


def _scale(e: dict) -> str:
    """Mean max logit on known / unknown test images (means over seeds), the scale that MLS reads."""
    k, u = e["max_logit_known"], e["max_logit_unknown"]
    return f"{k['mean']:.1f} / {u['mean']:.1f}" if k and u else "–"


def _best_rule(s: dict) -> str:
    """How the best AD variant of a study was chosen, in words."""
    ref = f"`{s['reference']}`"
    if not s["reference_ran"]:
        return f"{ref} has not run here, so no Δ and no accuracy tolerance; highest AUROC"
    if s["best_ad_within_tolerance"]:
        return f"highest AUROC among AD recipes within {ACC_TOLERANCE:g} pt of {ref}'s accuracy"
    return f"no AD recipe is within {ACC_TOLERANCE:g} pt of {ref}'s accuracy; highest AUROC"


def study_markdown(s: dict) -> list[str]:
    lines = [f"## {s['profile']} / {s['benchmark']} / split {s['split']}", "",
             f"Means over seeds (± sample std where n > 1); Δ = recipe − `{s['reference']}` in points with its "
             "95 % t-interval against the split's pooled seed noise (`osr/claims.py`).", "",
             "| recipe | n seeds | acc | AUROC (MLS) | OSCR (MLS) | Δ acc | Δ AUROC | AUROC (kNN) | max logit K / U |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in s["entries"]:
        n = (e["acc"] or {}).get("n", 0)
        cells = [pm(e["acc"]), pm(e["auroc_mls"]), pm(e["oscr_mls"]), _delta(e, "d_acc", s["reference"]),
                 _delta(e, "d_auroc_mls", s["reference"]), pm(e["auroc_knn"]), _scale(e)]
        lines.append(f"| `{e['recipe']}` | {n} | " + " | ".join(cells) + " |")
    if s["best_ad"]:
        rule = _best_rule(s)
        ours = " [ours]" if recipe_variants(s["best_ad"]) & OURS else ""
        lines += ["", f"Best AD variant: **`{s['best_ad']}`**{ours} ({rule})."]
    return lines + [""]


def ablation_markdown(studies: list[dict], source: str) -> str:
    """`reports/ablation.md`: one section per study."""
    n = sum(e["acc"]["n"] for s in studies for e in s["entries"] if e["acc"])
    lines = ["# Ablation study", "", generated_line(source, n), ""]
    used = sorted({v for s in studies for e in s["entries"] for v in recipe_variants(e["recipe"])})
    legend = ["## Variants", "", "A recipe `<distill.method>-<augment.method>+<variant>` adds the variant's overrides "
              "(`osr/grid.py`); [ours] = not in the reference code or the paper.", ""]
    legend += [f"- `{v}`{' [ours]' if v in OURS else ''}: " + ", ".join(f"`{o}`" for o in VARIANTS[v])
               for v in used if v in VARIANTS]
    return "\n".join(lines + [line for s in studies for line in study_markdown(s)] + legend) + "\n"


def study_figure(s: dict, path) -> None:
    """Δ AUROC and Δ acc vs the reference per recipe, error bars = the 95 % half-width (seed noise)."""
    entries = [e for e in s["entries"] if e["recipe"] != s["reference"] and e["d_auroc_mls"]]
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.4 * len(entries) + 1.6), sharey=True, squeeze=False)
    y = np.arange(len(entries))
    for ax, key, label in ((axes[0, 0], "d_auroc_mls", "Δ AUROC, MLS (pt)"), (axes[0, 1], "d_acc", "Δ acc (pt)")):
        d = [e[key] for e in entries]
        mean = [x["mean_diff"] for x in d]
        err = [(x["ci95"][1] - x["ci95"][0]) / 2 if x["ci95"] else 0.0 for x in d]
        colours = [_colour(e) for e in entries]
        ax.barh(y, mean, xerr=err, color=colours, capsize=3)
        ax.axvline(0, color="k", lw=0.8)
        ax.set(xlabel=label)
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(y, [e["recipe"] for e in entries], fontsize=8)
    axes[0, 0].invert_yaxis()
    fig.suptitle(f"Ablation vs {s['reference']}: {s['profile']} / {s['benchmark']} / split {s['split']} "
                 "(red = AD; bars: 95 % interval from seed noise)", fontsize=9)
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
