"""Claims and the comparison behind each claim row: b - a on one metric with a 95 % Student-t interval.

A claim compares recipe ``b`` with recipe ``a`` (names as conf/study/grid.yaml spells them) on one metric: it says that
``b - a`` lies above ``margin`` (``up``) or below it (``down``); ``margin`` is 0 except for "keeps" claims, which
allow 1 point. The difference is taken on the partitions both recipes ran (splits that hold the same classes are
one partition, study/partitions.py; a partition's value is the mean over its seeds) and the interval is a
Student-t interval:

* two or more shared partitions: paired over them (``t over splits, paired``; ``t over partitions, paired``
  where some of the splits hold one partition), df = partitions - 1;
* one shared partition: the two means against the **seed noise** there: the pooled within-recipe variance of
  the two recipes when both have ``MIN_SEEDS`` seeds or more; otherwise, for a recipe with fewer, of every recipe
  of its regime (schedule, precision and teacher variants, ``REGIME``) with two or more seeds there. A regime
  whose noise no recipe measured (a 160-epoch student, fp32, another teacher, with one seed) gives no interval:
  ``none (noise not measured)``. When ``a`` and ``b`` are one recipe (two metrics of one model), paired over its
  seeds.

Same-seed cells share a teacher and an image subset, so their errors are correlated: the seed-noise interval is
a yardstick for one split, not a replication. Verdicts and families: study/families.py.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from osr import OSRError
from study.experiments import nested
from study.grid import REGIME, recipe_variants
from study.partitions import partition, per_partition, same_classes
from study.spec import CLAIMS_FILE, load
from study.stats import t_interval

MIN_SEEDS = 3  # seeds of a recipe whose own noise a single-split comparison uses
NOISE_NOT_MEASURED = "none (noise not measured)"

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
    entries = load(path, ("claims",))["claims"] or []
    try:
        return [Claim(**{**e, "margin": float(e.get("margin", 0.0))}) for e in entries]
    except TypeError as e:
        raise OSRError(f"{path}: a claim needs id, text, metric, a, b ({e})") from None


def _value(row: dict, metric: str) -> float | None:
    path, scale = METRICS[metric]
    v = nested(row["metrics"], ("student", *path))
    return None if v is None else scale * float(v)


def values_by_split(rows: list[dict], metric: str) -> dict:
    """(profile, benchmark, recipe) -> partition -> [value per seed]: a partition is keyed by its first split and
    holds one value per seed, the mean of that seed's runs on the splits that hold its classes (study/partitions.py)."""
    runs = defaultdict(list)
    for r in rows:
        v = _value(r, metric)
        if v is not None:
            runs[(r["profile"], r["benchmark"], r["recipe_id"])].append((r["split"], r["seed"], v))
    return {key: per_partition(key[1], values) for key, values in runs.items()}


def runs_behind(rows: list[dict], profile: str, benchmark: str, recipe: str, metric: str, partitions) -> list[dict]:
    """The runs of `recipe` with a value of `metric` on `partitions`."""
    return [r for r in rows if (r["profile"], r["benchmark"], r["recipe_id"]) == (profile, benchmark, recipe)
            and partition(benchmark, r["split"]) in partitions and _value(r, metric) is not None]


def noise_groups(by_recipe: dict, profile: str, benchmark: str, split: int, recipe: str) -> dict | None:
    """The seed noise a single-split comparison uses for `recipe`: its own seeds when it has MIN_SEEDS or more,
    else every recipe of its regime (the same schedule, precision and teacher variants) with two or more seeds
    there; None when that regime's noise was never measured."""
    own = by_recipe.get((profile, benchmark, recipe), {}).get(split, [])
    if len(own) >= MIN_SEEDS:
        return {recipe: own}
    regime = recipe_variants(recipe) & REGIME
    groups = {r: v[split] for (p, b, r), v in by_recipe.items() if (p, b) == (profile, benchmark)
              and len(v.get(split, [])) >= 2 and recipe_variants(r) & REGIME == regime}
    return groups or None


def pooled_variance(groups: list[list[float]]) -> tuple[float, int]:
    """Pooled within-group variance and its degrees of freedom."""
    arrays = [np.asarray(g) for g in groups]
    df = sum(len(g) - 1 for g in arrays)
    return float(sum(((g - g.mean()) ** 2).sum() for g in arrays) / df), df


def _interval(mean: float, se: float, df: int, how: str) -> dict:
    return {"mean_diff": mean, "interval": how, "ci95": t_interval(mean, se, df), "se": se, "df": df}


def _single_split(xa: list[float], xb: list[float], vb: dict, place: tuple, split: int, a: str, b: str,
                  where: str) -> dict:
    """b - a on one partition (`split` keys it, `where` names its splits): paired over the seeds for one recipe's
    two metrics, else against the seed noise."""
    mean = float(np.mean(xb) - np.mean(xa))
    if a == b:  # two metrics of the same experiments: paired over the seeds
        d = np.array(xb) - np.array(xa)
        if len(d) < 2:
            return {"mean_diff": mean, "interval": "none (one experiment)", "ci95": None}
        return _interval(mean, float(d.std(ddof=1) / np.sqrt(len(d))), len(d) - 1, "t over seeds, paired")
    ga, gb = (noise_groups(vb, *place, split, r) for r in (a, b))
    if ga is None or gb is None:
        return {"mean_diff": mean, "interval": NOISE_NOT_MEASURED, "ci95": None}
    groups = {**ga, **gb}
    var, df = pooled_variance(list(groups.values()))
    se = float(np.sqrt(var * (1 / len(xa) + 1 / len(xb))))
    whose = "of both recipes" if set(groups) == {a, b} else f"pooled over {len(groups)} recipes"
    return _interval(mean, se, df, f"t, seed noise {whose} on {where} (df={df})")


def compare(rows: list[dict], profile: str, benchmark: str, a: str, b: str, metric: str,
            metric_a: str | None = None) -> dict | None:
    """b - a on the shared partitions with a 95 % t-interval (see the module docstring); None without shared data.
    `n` counts the partitions, `splits` the splits behind them, `same_classes` the groups of those splits that
    hold one partition."""
    vb = values_by_split(rows, metric)
    va = values_by_split(rows, metric_a or metric) if metric_a else vb
    xa, xb = va.get((profile, benchmark, a), {}), vb.get((profile, benchmark, b), {})
    units = sorted(set(xa) & set(xb))
    if not units:
        return None
    ra, rb = (runs_behind(rows, profile, benchmark, r, m, units) for r, m in ((a, metric_a or metric), (b, metric)))
    splits = sorted({r["split"] for r in ra + rb})
    out = {"n": len(units), "splits": splits, "same_classes": same_classes(benchmark, splits), "n_a": len(ra),
           "n_b": len(rb)}
    if len(units) >= 2:
        d = np.array([np.mean(xb[s]) - np.mean(xa[s]) for s in units])
        over = "partitions" if out["same_classes"] else "splits"
        return {**out, **_interval(float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))), len(d) - 1,
                                   f"t over {over}, paired")}
    s, where = units[0], ("split " if len(splits) == 1 else "splits ") + ", ".join(map(str, splits))
    return {**out, **_single_split(xa[s], xb[s], vb, (profile, benchmark), s, a, b, where)}


def diff_text(c: dict) -> str:
    """`+2.5 [-0.3, +5.4]` for a comparison (its interval only when there is one)."""
    ci = f" [{c['ci95'][0]:+.1f}, {c['ci95'][1]:+.1f}]" if c["ci95"] else ""
    return f"{c['mean_diff']:+.1f}{ci}"
