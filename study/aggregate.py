"""Per-recipe aggregates of finished experiments: student groups per (profile, benchmark, recipe), teacher groups,
and the training run time per machine.

Aggregates are in percent (accuracy, AUROC, OSCR): the mean and **sample** standard deviation (ddof=1; 0 when n=1)
over a group's partitions, each the mean over its seeds, or over the seeds of its one partition (splits that hold
the same classes are one partition and a seed's runs on them one value, study/partitions.py). Jacobian norms and
class separation stay raw.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from osr.augment import METHODS
from study.experiments import nested
from study.grid import TEACHER_VARIANTS
from study.partitions import partition, per_partition, same_classes

BENCHMARKS = ("mnist", "svhn", "cifar10", "cifar_plus10", "cifar_plus50", "tinyimagenet")  # methods.md §2 order
METHOD_LABELS = {"ce": "plain (ce)", "asym": "AD (asym)", "kd": "KD", "movr": "m-OvR"}
# summary key -> path inside one role's metrics (fractions, reported in %)
PERCENT_KEYS = {"acc": ("test", "acc"), "auroc_mls": ("test", "mls", "auroc"), "oscr_mls": ("test", "mls", "oscr"),
                "auroc_msp": ("test", "msp", "auroc"),
                "auroc_ovr": ("test", "ovr", "auroc"), "auroc_knn": ("test", "knn", "auroc")}


def run_time(rows: list[dict]) -> list[dict]:
    """Median training minutes per profile, benchmark and machine (precision, CPU, threads as recorded), per role.

    Each training counts once: cells that share a teacher through DVC's run-cache carry the same run statistics,
    so runs are told apart by their summed seconds. A precision that is not recorded is bf16 (`_timing`)."""
    runs = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        for role, t in (r.get("timing") or {}).items():
            if t.get("epochs"):
                machine = (t.get("precision", "bf16"), t.get("cpu"), t.get("threads"))
                runs[(r["profile"], r["benchmark"], *machine)][role][t["seconds"]] = t

    def order(key):  # benchmarks in methods.md order; an unrecorded CPU and thread count first
        profile, bench, prec, cpu, threads = key
        return (profile, bench_order(bench), prec, cpu or "", threads or 0)

    out = []
    for (profile, bench, prec, cpu, threads), roles in sorted(runs.items(), key=lambda kv: order(kv[0])):
        entry = {"profile": profile, "benchmark": bench, "precision": prec, "cpu": cpu, "threads": threads}
        for role in sorted(roles):
            minutes = np.array(sorted(roles[role])) / 60
            entry[role] = {"n": len(minutes), "median_min": float(np.median(minutes)),
                           "min_min": float(minutes[0]), "max_min": float(minutes[-1])}
        out.append(entry)
    return out




def recipe(row: dict) -> str:
    """`AD (asym) + cutmix`; a teacher trained with a loss other than CE is named too, and ablation variants."""
    label = f"{METHOD_LABELS.get(row['method'], row['method'])} + {row['mixing']}"
    label += f" [{row['variant'].lstrip('+')}]" if row.get("variant") else ""
    return label if row["teacher_loss"] == "ce" else f"{label} (teacher {row['teacher_loss']})"


def _stats(by_partition: dict) -> dict:
    """Mean and sample std over the partitions' means where there are two or more, else over the seeds of the one;
    `n` counts what they are over."""
    units = list(by_partition.values())
    v = np.array([np.mean(u) for u in units]) if len(units) > 1 else np.asarray(units[0], dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": len(v)}


def _summary(members: list[dict], role: str) -> dict:
    """A group's runs, splits and seeds, and per metric its mean ± std over partitions (splits that hold the same
    classes are one, study/partitions.py) with each partition's mean (`by_split`, keyed by its first split)."""
    splits = sorted({m["split"] for m in members})
    bench = members[0]["benchmark"]
    out = {"n": len(members), "splits": splits, "partitions": len({partition(bench, s) for s in splits}),
           "same_classes": same_classes(bench, splits),
           "seeds": sorted({m["seed"] for m in members if m.get("seed") is not None}),
           "experiments": [m["name"] for m in members]}
    for key, path in PERCENT_KEYS.items():
        runs = [(m["split"], m.get("seed"), 100 * v) for m in members
                if (v := nested(m["metrics"][role], path)) is not None]
        if runs:
            units = per_partition(bench, runs)
            out[key] = {**_stats(units), "by_split": {str(k): float(np.mean(v)) for k, v in units.items()}}
    return out


def bench_order(b: str) -> tuple:
    return (BENCHMARKS.index(b) if b in BENCHMARKS else len(BENCHMARKS), b)


def aggregate(rows: list[dict]) -> dict:
    """Student groups per (profile, benchmark, recipe) and teacher groups per (profile, benchmark, teacher loss).

    Experiments of one split and seed share their teacher, so a teacher group keeps one experiment per (split,
    seed); variants that change the teacher have their own and stay out of the teacher groups.
    """
    students, teachers = defaultdict(list), defaultdict(dict)
    for r in rows:
        students[(r["profile"], r["benchmark"], r["method"], r["mixing"], r["teacher_loss"], r["variant"])].append(r)
        if "teacher" in r["metrics"] and not any(v in r["variant"] for v in TEACHER_VARIANTS):
            teachers[(r["profile"], r["benchmark"], r["teacher_loss"])].setdefault((r["split"], r["seed"]), r)

    def order(key):
        method = list(METHOD_LABELS).index(key[2]) if key[2] in METHOD_LABELS else len(METHOD_LABELS)
        mix = METHODS.index(key[3]) if key[3] in METHODS else len(METHODS)
        return (key[0], bench_order(key[1]), key[4], method, key[2], mix, key[3], key[5])

    groups = [{"profile": k[0], "benchmark": k[1], "method": k[2], "mixing": k[3], "teacher_loss": k[4],
               "variant": k[5], "recipe": recipe(students[k][0]), "recipe_id": students[k][0]["recipe_id"],
               **_summary(students[k], "student")}
              for k in sorted(students, key=order)]
    teacher_groups = [{"profile": k[0], "benchmark": k[1], "teacher_loss": k[2], "recipe": f"teacher ({k[2]})",
                       **_summary(list(teachers[k].values()), "teacher")}
                      for k in sorted(teachers, key=lambda k: (k[0], bench_order(k[1]), k[2]))]
    return {"std": "sample standard deviation over partitions (each the mean over its seeds), or over the seeds of "
                   "one partition (ddof=1), 0 when n=1 (shown without ±)", "units": "%",
            "groups": groups, "teachers": teacher_groups}

