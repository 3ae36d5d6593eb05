"""The ablation study: every recipe and variant on one split against the plain CutMix student, with seed noise.

A study exists for each (profile, benchmark, split) where an ablation variant ran (conf/study/grid.yaml). Each
recipe there is compared with ``REFERENCE`` by ``study.claims.compare`` (mean over seeds, 95 % t-interval from the
split's seed noise; none where the recipe's regime has no measured noise), each Δ with its Holm-adjusted p over
the study. The best AD variant is the AD recipe with mixing (AD without mixing, `asym-none`, is
no answer to what mixing costs, nor is a measurement variant such as `+fp32` or a student schedule such as
`+s_e160`, which the reference did not get) with the highest AUROC (MLS) among
those whose accuracy is at most 1 point below the reference; if none qualifies, or the reference has not run (no Δ
is shown then), the one with the highest AUROC.
"""
from __future__ import annotations

import numpy as np

from study.claims import compare, values_by_split
from study.grid import MEASUREMENT, SCHEDULE, recipe_variants
from study.partitions import partition
from study.stats import holm, p_value

REFERENCE = "ce-cutmix"
DELTAS = ("acc", "auroc_mls")  # compared with the reference
# read per recipe as well: OSCR, and the diagnostics of what MLS reads (the logit scale) against a score that does
# not read it (kNN on the features)
DIAGNOSTICS = ("oscr_mls", "auroc_knn", "max_logit_known", "max_logit_unknown")
ACC_TOLERANCE = 1.0  # points of accuracy the best AD variant may give up against the reference


def places(rows: list[dict]) -> list[tuple[str, str, int]]:
    return sorted({(r["profile"], r["benchmark"], r["split"]) for r in rows if r["variant"]})


def holm_deltas(entries: list[dict]) -> None:
    """Add to every Δ with an interval its two-sided p against 0 and the Holm-adjusted p over the study's Δs (both
    metrics: one family per study)."""
    deltas = [e[f"d_{m}"] for e in entries for m in DELTAS if e[f"d_{m}"] and e[f"d_{m}"]["ci95"]]
    ps = [p_value(d["mean_diff"], d["se"], d["df"], 0.0) for d in deltas]
    for d, p, adjusted in zip(deltas, ps, holm(ps)):
        d.update(p=p, p_holm=adjusted)


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
            vals = by_recipe.get((profile, benchmark, rec), {}).get(partition(benchmark, split), [])
            e[metric] = {"mean": float(np.mean(vals)), "n": len(vals),
                         "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else None} if vals else None
            if metric in DELTAS:
                e[f"d_{metric}"] = compare(here, profile, benchmark, REFERENCE, rec, metric) if rec != REFERENCE \
                    else None
        entries.append(e)
    holm_deltas(entries)
    ad = [e for e in entries if e["method"] == "asym" and e["mixing"] != "none" and e["auroc_mls"] and e["acc"]
          and not recipe_variants(e["recipe"]) & (MEASUREMENT | SCHEDULE)]
    ref = next((e for e in entries if e["recipe"] == REFERENCE and e["acc"]), None)
    ok = [e for e in ad if ref and e["acc"]["mean"] >= ref["acc"]["mean"] - ACC_TOLERANCE]
    best = max(ok or ad, key=lambda e: e["auroc_mls"]["mean"], default=None)
    return {"profile": profile, "benchmark": benchmark, "split": split, "reference": REFERENCE, "entries": entries,
            "reference_ran": ref is not None, "best_ad": best["recipe"] if best else None,
            "best_ad_within_tolerance": bool(ok)}
