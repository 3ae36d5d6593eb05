"""The claims table: each claim of methods.md §4 that the suite's data can speak to, with a 95 % interval.

A claim compares recipe ``b`` with recipe ``a`` (names as conf/study/grid.yaml spells them) on one metric: it says that
``b - a`` lies above ``margin`` (``up``) or below it (``down``); ``margin`` is 0 except for "keeps" claims, which
allow 1 point. The difference is taken on the splits both recipes ran (each split's value is the mean over its
seeds) and the interval is a Student-t interval:

* two or more shared splits: paired over the splits (``t over splits, paired``), df = splits - 1;
* one shared split: the two means against the **seed noise** of that split, i.e. the pooled within-recipe
  variance of every recipe there with two or more seeds (``t, pooled seed noise``); when ``a`` and ``b`` are one
  recipe (two metrics of one model), paired over its seeds.

Verdict: ``holds`` when the whole interval is on the claimed side of the margin, ``fails`` when it is wholly on
the other side, ``inconclusive`` when it spans the margin or no interval can be formed (one experiment each and
no seed noise measured).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from osr import OSRError
from study.experiments import nested
from study.spec import CLAIMS_FILE, load

# metric -> (path inside the student's metrics, scale): percent metrics are reported in points
METRICS = {"acc": (("test", "acc"), 100.0), "auroc_mls": (("test", "mls", "auroc"), 100.0),
           "auroc_msp": (("test", "msp", "auroc"), 100.0), "auroc_knn": (("test", "knn", "auroc"), 100.0),
           "oscr_mls": (("test", "mls", "oscr"), 100.0), "jacobian_known": (("jacobian", "known_mean"), 1.0),
           "jacobian_unknown": (("jacobian", "unknown_mean"), 1.0), "auroc_ovr": (("test", "ovr", "auroc"), 100.0),
           "jnd": (("jacobian", "jnd"), 1.0), "max_logit_known": (("test", "mean_max_logit_known"), 1.0),
           "max_logit_unknown": (("test", "mean_max_logit_unknown"), 1.0),
           "auroc_neg_norm": (("jacobian", "auroc_neg_norm"), 100.0)}


@dataclass(frozen=True)
class Claim:
    id: str
    text: str
    metric: str            # of b (and of a unless metric_a is given)
    a: str
    b: str
    direction: str = "up"  # up: b - a > margin; down: b - a < margin
    margin: float = 0.0
    metric_a: str | None = None


def load_claims(path: Path = CLAIMS_FILE) -> list[Claim]:
    """The claims of a study file (conf/study/claims.yaml or confirmatory.yaml), in file order."""
    entries = load(path, ("claims",))["claims"]
    try:
        return [Claim(**{**e, "margin": float(e.get("margin", 0.0))}) for e in entries]
    except TypeError as e:
        raise OSRError(f"{path}: a claim needs id, text, metric, a, b ({e})") from None


def _value(row: dict, metric: str) -> float | None:
    path, scale = METRICS[metric]
    v = nested(row["metrics"], ("student", *path))
    return None if v is None else scale * float(v)


def values_by_split(rows: list[dict], metric: str) -> dict:
    """(profile, benchmark, recipe) -> split -> [value per seed]."""
    out: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        v = _value(r, metric)
        if v is not None:
            out[(r["profile"], r["benchmark"], r["recipe_id"])][r["split"]].append(v)
    return out


def seed_noise(by_recipe: dict, profile: str, benchmark: str, split: int) -> tuple[float, int] | None:
    """Pooled within-recipe variance over the recipes with >= 2 seeds on one split, and its degrees of freedom."""
    groups = [np.asarray(v[split]) for (p, b, _), v in by_recipe.items()
              if p == profile and b == benchmark and len(v.get(split, [])) >= 2]
    df = sum(len(g) - 1 for g in groups)
    if not df:
        return None
    return float(sum(((g - g.mean()) ** 2).sum() for g in groups) / df), df


def _t_interval(mean: float, se: float, df: int) -> list[float]:
    h = float(stats.t.ppf(0.975, df)) * se
    return [mean - h, mean + h]


def compare(rows: list[dict], profile: str, benchmark: str, a: str, b: str, metric: str,
            metric_a: str | None = None) -> dict | None:
    """b - a on the shared splits with a 95 % t-interval (see the module docstring); None without shared data."""
    vb = values_by_split(rows, metric)
    va = values_by_split(rows, metric_a or metric) if metric_a else vb
    xa, xb = va.get((profile, benchmark, a), {}), vb.get((profile, benchmark, b), {})
    splits = sorted(set(xa) & set(xb))
    if not splits:
        return None
    out = {"n": len(splits), "splits": splits, "n_a": sum(len(xa[s]) for s in splits),
           "n_b": sum(len(xb[s]) for s in splits)}
    if len(splits) >= 2:
        d = np.array([np.mean(xb[s]) - np.mean(xa[s]) for s in splits])
        return {**out, "mean_diff": float(d.mean()), "interval": "t over splits, paired",
                "ci95": _t_interval(float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))), len(d) - 1)}
    s = splits[0]
    mean = float(np.mean(xb[s]) - np.mean(xa[s]))
    if a == b:  # two metrics of the same experiments: paired over the seeds
        d = np.array(xb[s]) - np.array(xa[s])
        if len(d) < 2:
            return {**out, "mean_diff": mean, "interval": "none (one experiment)", "ci95": None}
        return {**out, "mean_diff": mean, "interval": "t over seeds, paired",
                "ci95": _t_interval(mean, float(d.std(ddof=1) / np.sqrt(len(d))), len(d) - 1)}
    noise = seed_noise(vb, profile, benchmark, s)
    if noise is None:
        return {**out, "mean_diff": mean, "interval": "none (no seed noise measured)", "ci95": None}
    var, df = noise
    se = float(np.sqrt(var * (1 / len(xa[s]) + 1 / len(xb[s]))))
    return {**out, "mean_diff": mean, "interval": f"t, pooled seed noise of split {s} (df={df})",
            "ci95": _t_interval(mean, se, df)}


def verdict(ci95: list[float] | None, direction: str, margin: float) -> str:
    if ci95 is None:
        return "inconclusive"
    lo, hi = ci95
    above, below = lo > margin, hi < margin
    if direction == "up":
        return "holds" if above else "fails" if below else "inconclusive"
    return "holds" if below else "fails" if above else "inconclusive"


def claims_table(rows: list[dict]) -> dict:
    """{"claims": [...]} for every claim and (profile, benchmark) whose two recipes both have data, and
    "missing": the claims no (profile, benchmark) can speak to yet."""
    places = sorted({(r["profile"], r["benchmark"]) for r in rows})
    out, spoken = [], set()
    claims = load_claims()
    for c in claims:
        for profile, bench in places:
            res = compare(rows, profile, bench, c.a, c.b, c.metric, c.metric_a)
            if res is None:
                continue
            spoken.add(c.id)
            metric = c.metric if not c.metric_a else f"{c.metric} - {c.metric_a}"
            out.append({"id": c.id, "text": c.text, "profile": profile, "benchmark": bench, "metric": metric,
                        "a": c.a, "b": c.b, "direction": c.direction, "margin": c.margin, **res,
                        "verdict": verdict(res["ci95"], c.direction, c.margin)})
    return {"interval": "95 % Student-t (see study/claims.py)", "units": "percentage points (Jacobian: raw)",
            "claims": out, "missing": [c.id for c in claims if c.id not in spoken]}


def diff_text(c: dict) -> str:
    """`+2.5 [-0.3, +5.4]` for a comparison (its interval only when there is one)."""
    ci = f" [{c['ci95'][0]:+.1f}, {c['ci95'][1]:+.1f}]" if c["ci95"] else ""
    return f"{c['mean_diff']:+.1f}{ci}"
