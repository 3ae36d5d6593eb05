"""reports/suite.md: claims first, then per-benchmark means, the two sides, run time, every experiment
(`python -m study.report` writes it; reports/ablation.md is study/ablation_page.py)."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from osr.augment import METHODS
from study.aggregate import bench_order, recipe
from study.claims import diff_text
from study.experiments import nested
from study.partitions import alike

ANCHOR_NOTE = "published, VGG32, 5 splits"
# AUROC (%), published 5-split means of the MLS and ARPL+CS papers (methods.md §2)
ANCHORS = {
    "MLS (Vaze et al.)": {"mnist": 99.3, "svhn": 97.1, "cifar10": 93.6, "cifar_plus10": 97.9, "cifar_plus50": 96.5,
                          "tinyimagenet": 83.0},
    "ARPL+CS (Chen et al.)": {"mnist": 99.7, "svhn": 96.7, "cifar10": 91.0, "cifar_plus10": 97.1, "cifar_plus50": 95.1,
                              "tinyimagenet": 78.2},
}


def run_time_lines(times: list[dict]) -> list[str]:
    """The "Run time" section: one line per profile, benchmark and machine."""
    def role(name, t):
        spread = f"{t['min_min']:.1f}–{t['max_min']:.1f}, {t['n']} runs" if t["n"] > 1 else "1 run"
        return f"{name} {t['median_min']:.1f} min ({spread})"
    lines = []
    for e in times:
        machine = ", ".join([e["precision"], e["cpu"] or "CPU not recorded"]
                            + ([f"{e['threads']} thread{'s' * (e['threads'] > 1)}"] if e["threads"] else []))
        parts = [role(name, e[name]) for name in ("teacher", "student") if name in e]
        lines.append(f"- {e['profile']} / {e['benchmark']}, {machine}: " + "; ".join(parts) + ".")
    return lines or ["- No experiment records its run time."]


def pm(stat: dict | None) -> str:
    """`84.0 ± 4.0`, or only `84.0` for a single experiment (no fake ± 0.0)."""
    if not stat:
        return "–"
    return f"{stat['mean']:.1f} ± {stat['std']:.1f}" if stat["n"] > 1 else f"{stat['mean']:.1f}"


def _cell(g: dict) -> str:
    """`acc / AUROC / OSCR (n=7, claims)`; the partitions too where the ± is over fewer of them than runs."""
    parts = g.get("partitions", g["n"])
    n = f"n={g['n']} runs on {parts} partitions" if 1 < parts < g["n"] else f"n={g['n']}"
    return f"{pm(g.get('acc'))} / {pm(g.get('auroc_mls'))} / {pm(g.get('oscr_mls'))} ({n}, {g['profile']})"


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in body]


def _method_table(agg: dict) -> list[str]:
    entries = agg["groups"] + agg["teachers"]
    benches = sorted({g["benchmark"] for g in entries}, key=bench_order)
    cells = defaultdict(list)
    for g in entries:
        cells[(g["recipe"], g["benchmark"])].append(_cell(g))
    body = [[label] + ["<br>".join(cells[(label, b)]) or "–" for b in benches]
            for label in dict.fromkeys(g["recipe"] for g in entries)]
    body += [[f"{name} AUROC ({ANCHOR_NOTE})"] + [f"– / {a[b]:.1f} / –" if b in a else "–" for b in benches]
             for name, a in ANCHORS.items()]
    return _table(["method"] + benches, body)


def _other_scores(agg: dict) -> list[str]:
    keys = [k for k in ("auroc_ovr", "auroc_knn") if any(k in g for g in agg["groups"])]
    rows = [[g["recipe"], g["benchmark"], g["profile"]] + [pm(g.get(k)) for k in keys]
            for g in agg["groups"] if any(k in g for k in keys)]
    if not rows:
        return []
    return ["", "## AUROC of the other scores (%)", ""] + _table(
        ["recipe", "benchmark", "profile"] + [k.replace("auroc_", "AUROC ") for k in keys], rows)


def _experiment_table(rows: list[dict]) -> list[str]:
    def pct(r, path):
        v = nested(r["metrics"]["student"], path)
        return f"{100 * v:.1f}" if v is not None else "–"

    def raw(r, path):
        v = nested(r["metrics"]["student"], path)
        return f"{v:.3f}" if v is not None else "–"

    def ci(r):
        v = nested(r["metrics"]["student"], ("test", "mls", "auroc_ci95"))
        return f"[{100 * v[0]:.1f}, {100 * v[1]:.1f}]" if v else "–"

    body = [[r["name"], r["profile"], r["benchmark"], str(r["split"]), recipe(r), pct(r, ("test", "acc")),
             pct(r, ("test", "mls", "auroc")), pct(r, ("test", "mls", "oscr")), ci(r), raw(r, ("jacobian", "jnd")),
             raw(r, ("val", "class_separation"))]
            for r in sorted(rows, key=lambda r: (r["profile"], bench_order(r["benchmark"]), r["split"] or 0,
                                                 r["name"]))]
    return _table(["experiment", "profile", "benchmark", "split", "recipe", "acc", "AUROC (MLS)", "OSCR (MLS)",
                   "AUROC 95 % CI (bootstrap)", "Jacobian JND", "class separation"], body)


def _change(verb_up: str, verb_down: str, what: str, a: dict, b: dict, unit: str = "splits") -> str:
    """`lowered AUROC by 6.7 pt (78.7 → 72.0; paired over 3 splits: -6.7 ± 1.2, lower on 3/3)`.

    Splits differ in difficulty, so two groups are compared on the splits they share (paired differences, their
    sample std, and on how many splits the change points the same way); without a shared split, on all means.
    `by_split` holds one value per partition (study/aggregate.py): `unit` names them where some splits share one.
    """
    common = sorted(set(a.get("by_split", {})) & set(b.get("by_split", {})))
    if common:
        deltas = np.array([b["by_split"][k] - a["by_split"][k] for k in common])
        ma, mb = (float(np.mean([g["by_split"][k] for k in common])) for g in (a, b))
    else:
        ma, mb = a["mean"], b["mean"]
    d = mb - ma
    unchanged = abs(d) < 0.05
    text = f"left {what} unchanged" if unchanged else f"{verb_up if d > 0 else verb_down} {what} by {abs(d):.1f} pt"
    if not common:
        return f"{text} ({ma:.1f} → {mb:.1f}, no shared split)"
    if len(common) == 1:
        where = "the partition of split" if unit == "partitions" else "split"
        return f"{text} ({ma:.1f} → {mb:.1f} on {where} {common[0]} only)"
    n = len(common)
    if unchanged:  # no direction for the splits to agree with: how they split
        agree = f"higher on {int((deltas > 0).sum())}/{n}, lower on {int((deltas < 0).sum())}/{n}"
    else:
        agree = f"{'higher' if d > 0 else 'lower'} on {int((np.sign(deltas) == np.sign(d)).sum())}/{n}"
    return (f"{text} ({ma:.1f} → {mb:.1f}; paired over {n} {unit}: {deltas.mean():+.1f} ± "
            f"{deltas.std(ddof=1):.1f}, {agree})")


def _unit(*groups: dict) -> str:
    """What two groups' paired values are over: partitions where some of their splits hold the same classes."""
    return "partitions" if any(g.get("same_classes") for g in groups) else "splits"


def two_sides_reading(agg: dict) -> list[str]:
    """Mixing vs none for the plain student, and AD vs plain per mixer, from the aggregated numbers only.

    AD is compared with the plain student of the same mixer, or with `plain (ce) + none` when that one is
    missing (the default suites run only ce-none beside asym-cutmix on the tiny profile).
    """
    g = {(x["profile"], x["benchmark"], x["method"], x["mixing"]): x for x in agg["groups"]
         if x["teacher_loss"] == "ce" and not x["variant"] and {"acc", "auroc_mls"} <= x.keys()}
    lines = []
    for profile, bench in dict.fromkeys((k[0], k[1]) for k in g):
        plain = g.get((profile, bench, "ce", "none"))
        for mixer in METHODS:
            mixed, ad = g.get((profile, bench, "ce", mixer)), g.get((profile, bench, "asym", mixer))
            if plain and mixed and mixer != "none":
                unit = _unit(plain, mixed)
                lines.append(f"- {profile} / {bench}: {mixer} " + _change(
                    "raised", "lowered", "closed-set acc", plain["acc"], mixed["acc"], unit) + " and " + _change(
                    "raised", "lowered", "AUROC (MLS)", plain["auroc_mls"], mixed["auroc_mls"], unit)
                    + f" for the plain student (n={plain['n']} vs {mixed['n']}).")
            ref = mixed or plain
            if ad and ref:
                unit = _unit(ref, ad)
                lines.append(f"- {profile} / {bench}: {ad['recipe']} instead of {ref['recipe']} " + _change(
                    "raised", "lowered", "AUROC (MLS)", ref["auroc_mls"], ad["auroc_mls"], unit) + " and " + _change(
                    "raised", "lowered", "acc", ref["acc"], ad["acc"], unit) + f" (n={ref['n']} vs {ad['n']}).")
    return lines or ["- No comparable pair yet: the reading needs `plain (ce) + none` beside a mixed plain or an AD "
                     "student of the same profile and benchmark."]


def generated_line(source: str, rows: int) -> str:
    return (f"Generated by `python -m study.report` from {source}: {rows} finished experiments. "
            "Do not edit; rerun it.")


def suite_markdown(rows: list[dict], agg: dict, source: str, claims: list[str] | None = None) -> str:
    """The whole `reports/suite.md`; `source` says which command and filters produced it; `claims` are the
    lines of the Claims section (claims_markdown), which comes first; the Run time section reads
    `agg["run_time"]` where the caller put `run_time(rows)`."""
    lines = ["# Benchmark suite", "", generated_line(source, len(rows)), "", *(claims or []),
             "## Student and teacher per benchmark", "",
             "Cells: closed-set acc / AUROC (MLS) / OSCR (MLS) in %, mean ± sample std (ddof=1) over the "
             "partitions of the cell (each the mean over its seeds; splits that hold the same classes are one "
             "partition), or over the seeds of its one partition, then the number of runs (and of partitions where "
             "fewer) and the profile that produced them. "
             f"Anchor rows are {ANCHOR_NOTE} (methods.md §2), AUROC only; our backbones and profiles differ.", ""]
    lines += _method_table(agg) + _other_scores(agg)
    lines += ["", "## Two sides: mixing and asymmetric distillation", ""] + two_sides_reading(agg)
    if "run_time" in agg:
        lines += ["", "## Run time", "",
                  "Training minutes per run (sum of the epochs' wall-clock seconds in its run statistics), median "
                  "(min–max, distinct runs: a teacher shared through the run-cache counts once), as the cells ran "
                  "(the claims grid: two workers side by side).", ""] + run_time_lines(agg["run_time"])
    lines += ["", "## Experiments", "",
              "Student numbers. AUROC CI: 95 % percentile bootstrap over the test images (`evaluate.bootstrap` "
              "resamples). JND = mean ‖J‖ on unknown test images minus known validation images; "
              "class separation = mean cosine between class means (validation, lower = better separated).", ""]
    return "\n".join(lines + _experiment_table(rows)) + "\n"


CLAIMS_HEADER = ("| claim | profile / benchmark | a → b | claimed | n partitions (exps a/b) | b − a [95 % CI] | "
                 "interval | p / p Holm | verdict | Holm verdict | stated first |")


def _alike(c: dict) -> str:
    """`; splits 0 and 1 hold the same classes` for a row whose splits hold fewer partitions, else ''."""
    return f"; splits {alike(c['same_classes'])}" if c.get("same_classes") else ""


def _claim_line(c: dict) -> str:
    side = {"up": ">", "down": "<"}
    p = f"{c['p']:.3f} / {c['p_holm']:.3f}" if c["p"] is not None else "–"
    stated = "yes" if c["launched_after_registration"] else "no" if c["registered"] else "not committed"
    return (f"| {c['text']} (`{c['id']}`) | {c['profile']} / {c['benchmark']} | `{c['a']}` → `{c['b']}` | "
            f"{side[c['direction']]} {c['margin']:g} | {c['n']} ({c['n_a']}/{c['n_b']}{_alike(c)}) | {diff_text(c)} | "
            f"{c['interval']} | {p} | **{c['verdict']}** | **{c['verdict_holm']}** | {stated} |")


def claims_markdown(table: dict) -> list[str]:
    """The "Claims" section of reports/suite.md: the confirmatory family first, then each exploratory family."""
    lines = ["## Claims", "",
             "One row per claim and profile/benchmark with data: b − a in points (Jacobian: raw), its 95 % "
             "t-interval (over the partitions when two or more are shared, else against the seed noise of the one; "
             "splits that hold the same classes are one partition, counted once; see `study/claims.py`), the "
             "two-sided p against the margin, raw and Holm-adjusted. Verdict: "
             "holds / fails when the interval is wholly on the claimed / the other side of the margin, "
             "inconclusive otherwise; the Holm verdict reads the Holm-adjusted p over the row's family "
             "(`study/families.py`). A row is confirmatory only when every experiment behind it was launched from "
             "a commit descending from the one that added its claim's line (`stated first`, checked with git); "
             "all other rows are exploratory. Machine-readable: `reports/claims.json`.", ""]
    if "confirmatory" not in table["families"]:
        lines += ["### Confirmatory", "", "No experiment of the confirmatory study (`conf/study/confirmatory.yaml`) "
                  "has finished on its partitions yet.", ""]
    for family, size in table["families"].items():
        members = [c for c in table["claims"] if c["holm_family"] == family]
        kind = "Confirmatory" if family == "confirmatory" else "Exploratory"
        lines += [f"### {kind}: {family} (Holm over {size} rows)", "", CLAIMS_HEADER, "|---" * 11 + "|",
                  *map(_claim_line, members), ""]
    if table["missing"]:
        lines += ["Not measured yet: " + ", ".join(f"`{m}`" for m in table["missing"]) + ".", ""]
    return lines
