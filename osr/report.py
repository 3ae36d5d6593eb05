"""Benchmark-suite report: finished DVC experiments -> per-recipe means over splits, markdown and figures.

Pure library: the `dvc exp show --json --all-commits` output comes in as parsed JSON (cli/report.py runs DVC).
Aggregates are in percent (accuracy, AUROC, OSCR) with the **sample** standard deviation over experiments
(ddof=1; 0 when n=1). Jacobian norms and class separation stay raw.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from osr.augment import METHODS
from osr.grid import TEACHER_VARIANTS, parse_name
from osr.plots import plt, save_figure

METRICS_FILE = "reports/metrics.json"
BENCHMARKS = ("mnist", "svhn", "cifar10", "cifar_plus10", "cifar_plus50", "tinyimagenet")  # methods.md §2 order
METHOD_LABELS = {"ce": "plain (ce)", "asym": "AD (asym)", "kd": "KD", "movr": "m-OvR"}
ANCHOR_NOTE = "published, VGG32, 5 splits"
# AUROC (%), 5-split means, from ../shared/docs/methods.md (beside the repository), section 2.
ANCHORS = {
    "MLS (Vaze et al.)": {"mnist": 99.3, "svhn": 97.1, "cifar10": 93.6, "cifar_plus10": 97.9, "cifar_plus50": 96.5,
                          "tinyimagenet": 83.0},
    "ARPL+CS (Chen et al.)": {"mnist": 99.7, "svhn": 96.7, "cifar10": 91.0, "cifar_plus10": 97.1, "cifar_plus50": 95.1,
                              "tinyimagenet": 78.2},
}
# summary key -> path inside one role's metrics (fractions, reported in %)
PERCENT_KEYS = {"acc": ("test", "acc"), "auroc_mls": ("test", "mls", "auroc"), "oscr_mls": ("test", "mls", "oscr"),
                "auroc_msp": ("test", "msp", "auroc"),
                "auroc_ovr": ("test", "ovr", "auroc"), "auroc_knn": ("test", "knn", "auroc")}


def nested(d: dict, path: tuple[str, ...]):
    """d[path[0]][path[1]]..., or None where a key is missing."""
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _row(name: str, metrics: dict, params: dict, baseline: str | None) -> dict:
    """One experiment as the report reads it. A suite cell's recipe (with its ablation variants) and seed come
    from its name (osr/grid.py); an ad-hoc experiment gets its recipe from the metrics' info and its seed from
    the params."""
    info = metrics["info"]
    teacher_loss = info.get("teacher_loss") or nested(params, ("teacher", "loss")) or "ce"
    cell = parse_name(name)
    base = f"{info.get('method', '?')}-{info.get('mixing', 'none')}" + (f"@{teacher_loss}" if teacher_loss != "ce"
                                                                          else "")
    recipe_id = cell.recipe if cell else base
    return {"name": name, "profile": info.get("profile", "?"), "benchmark": info.get("benchmark", "?"),
            "split": info.get("split"), "method": info.get("method", "?"), "mixing": info.get("mixing", "none"),
            "teacher_loss": teacher_loss, "recipe_id": recipe_id,
            "variant": recipe_id[recipe_id.find("+"):] if "+" in recipe_id else "",
            "seed": cell.seed if cell else nested(params, ("base", "seed")), "baseline": baseline,
            "metrics": metrics}


def rows_from_exp_show(shown: list) -> list[dict]:
    """One row per finished, named experiment (first occurrence of a name wins: newest baseline first).

    Baseline and workspace entries are commits, not experiments, so they never count. Queued, running and
    failed experiments are skipped: a running one can show the metrics its baseline committed.
    """
    rows, seen = [], set()
    for commit in shown:
        for exp in commit.get("experiments") or []:
            revs = exp.get("revs") or [{}]
            name = exp.get("name") or revs[0].get("name")
            if not name or name in seen or (exp.get("executor") or {}).get("state", "success") != "success":
                continue
            data = revs[0].get("data") or {}
            metrics = nested(data, ("metrics", METRICS_FILE, "data")) or {}
            if not isinstance(metrics.get("info"), dict) or not isinstance(metrics.get("student"), dict):
                continue
            seen.add(name)
            params = nested(data, ("params", "params.yaml", "data")) or {}
            row = _row(name, metrics, params, commit.get("rev"))
            rows.append({**row, "rev": revs[0].get("rev")})
    return rows


MACHINE_KEYS = ("precision", "cpu", "threads")  # what run statistics record of how a training ran, where they do


def _timing(train: dict) -> dict:
    """Run time of one training: epochs, seconds, median images/s, from the per-epoch rows of its run statistics
    (`reports/run/<stage>.json`, or `reports/<role>_train.json` in experiments older than that file: both keep
    them as `history` rows with `seconds` and `images_per_s`), and the precision, CPU and thread count where the
    file records them (experiments before the precision field trained in bf16)."""
    history = [h for h in train.get("history") or [] if "seconds" in h]
    return {"epochs": len(history), "seconds": float(sum(h["seconds"] for h in history)),
            "median_images_per_s": float(np.median([h["images_per_s"] for h in history])) if history else None,
            **{k: train[k] for k in MACHINE_KEYS if k in train}}


def archive_record(row: dict, relabel: dict | None = None, train: dict[str, dict] | None = None) -> dict:
    """What `reports/experiments/<name>.json` keeps of a finished experiment, so that its numbers outlive the
    local experiment refs: the cell, the `dvc exp run` that reproduces it, the baseline commit, the metrics, the
    relabel statistics (scalars of `reports/relabel.json`) and the training time per role."""
    cell = parse_name(row["name"])
    rerun = ("dvc exp run -n " + row["name"] + "".join(f" -S '{o}'" for o in cell.overrides)) if cell else None
    extra = {"source": row["source"]} if row.get("source") else {}
    if relabel:
        extra["relabel"] = {k: v for k, v in relabel.items() if not isinstance(v, list)}
    if train:
        extra["timing"] = {role: _timing(t) for role, t in train.items()}
    return {"name": row["name"], "baseline": row.get("baseline"), "reproduce": rerun, "metrics": row["metrics"],
            **extra}


def rows_from_archive(records: list[dict]) -> list[dict]:
    return [{**_row(r["name"], r["metrics"], {}, r.get("baseline")),
             **{k: r[k] for k in ("source", "timing") if r.get(k)}} for r in records]


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
        return (profile, _bench_order(bench), prec, cpu or "", threads or 0)

    out = []
    for (profile, bench, prec, cpu, threads), roles in sorted(runs.items(), key=lambda kv: order(kv[0])):
        entry = {"profile": profile, "benchmark": bench, "precision": prec, "cpu": cpu, "threads": threads}
        for role in sorted(roles):
            minutes = np.array(sorted(roles[role])) / 60
            entry[role] = {"n": len(minutes), "median_min": float(np.median(minutes)),
                           "min_min": float(minutes[0]), "max_min": float(minutes[-1])}
        out.append(entry)
    return out


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


def recipe(row: dict) -> str:
    """`AD (asym) + cutmix`; a teacher trained with a loss other than CE is named too, and ablation variants."""
    label = f"{METHOD_LABELS.get(row['method'], row['method'])} + {row['mixing']}"
    label += f" [{row['variant'].lstrip('+')}]" if row.get("variant") else ""
    return label if row["teacher_loss"] == "ce" else f"{label} (teacher {row['teacher_loss']})"


def _stats(values: list[float]) -> dict:
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": len(v)}


def _summary(members: list[dict], role: str) -> dict:
    out = {"n": len(members), "splits": sorted({m["split"] for m in members}),
           "seeds": sorted({m["seed"] for m in members if m.get("seed") is not None}),
           "experiments": [m["name"] for m in members]}
    for key, path in PERCENT_KEYS.items():
        pairs = [(m["split"], 100 * v) for m in members if (v := nested(m["metrics"][role], path)) is not None]
        if pairs:
            by_split = defaultdict(list)
            for split, v in pairs:
                by_split[str(split)].append(v)
            out[key] = {**_stats([v for _, v in pairs]),
                        "by_split": {k: float(np.mean(v)) for k, v in sorted(by_split.items())}}
    return out


def _bench_order(b: str) -> tuple:
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
        return (key[0], _bench_order(key[1]), key[4], method, key[2], mix, key[3], key[5])

    groups = [{"profile": k[0], "benchmark": k[1], "method": k[2], "mixing": k[3], "teacher_loss": k[4],
               "variant": k[5], "recipe": recipe(students[k][0]), "recipe_id": students[k][0]["recipe_id"],
               **_summary(students[k], "student")}
              for k in sorted(students, key=order)]
    teacher_groups = [{"profile": k[0], "benchmark": k[1], "teacher_loss": k[2], "recipe": f"teacher ({k[2]})",
                       **_summary(list(teachers[k].values()), "teacher")}
                      for k in sorted(teachers, key=lambda k: (k[0], _bench_order(k[1]), k[2]))]
    return {"std": "sample standard deviation over experiments (ddof=1), 0 when n=1 (shown without ±)", "units": "%",
            "groups": groups, "teachers": teacher_groups}


def pm(stat: dict | None) -> str:
    """`84.0 ± 4.0`, or only `84.0` for a single experiment (no fake ± 0.0)."""
    if not stat:
        return "–"
    return f"{stat['mean']:.1f} ± {stat['std']:.1f}" if stat["n"] > 1 else f"{stat['mean']:.1f}"


def _cell(g: dict) -> str:
    return f"{pm(g.get('acc'))} / {pm(g.get('auroc_mls'))} / {pm(g.get('oscr_mls'))} (n={g['n']}, {g['profile']})"


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in body]


def _method_table(agg: dict) -> list[str]:
    entries = agg["groups"] + agg["teachers"]
    benches = sorted({g["benchmark"] for g in entries}, key=_bench_order)
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
            for r in sorted(rows, key=lambda r: (r["profile"], _bench_order(r["benchmark"]), r["split"] or 0,
                                                 r["name"]))]
    return _table(["experiment", "profile", "benchmark", "split", "recipe", "acc", "AUROC (MLS)", "OSCR (MLS)",
                   "AUROC 95 % CI (bootstrap)", "Jacobian JND", "class separation"], body)


def _change(verb_up: str, verb_down: str, what: str, a: dict, b: dict) -> str:
    """`lowered AUROC by 6.7 pt (78.7 → 72.0; paired over 3 splits: -6.7 ± 1.2, lower on 3/3)`.

    Splits differ in difficulty, so two groups are compared on the splits they share (paired differences, their
    sample std, and on how many splits the change points the same way); without a shared split, on all means.
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
        return f"{text} ({ma:.1f} → {mb:.1f} on split {common[0]} only)"
    n = len(common)
    if unchanged:  # no direction for the splits to agree with: how they split
        agree = f"higher on {int((deltas > 0).sum())}/{n}, lower on {int((deltas < 0).sum())}/{n}"
    else:
        agree = f"{'higher' if d > 0 else 'lower'} on {int((np.sign(deltas) == np.sign(d)).sum())}/{n}"
    return (f"{text} ({ma:.1f} → {mb:.1f}; paired over {n} splits: {deltas.mean():+.1f} ± "
            f"{deltas.std(ddof=1):.1f}, {agree})")


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
                lines.append(f"- {profile} / {bench}: {mixer} " + _change(
                    "raised", "lowered", "closed-set acc", plain["acc"], mixed["acc"]) + " and " + _change(
                    "raised", "lowered", "AUROC (MLS)", plain["auroc_mls"], mixed["auroc_mls"])
                    + f" for the plain student (n={plain['n']} vs {mixed['n']}).")
            ref = mixed or plain
            if ad and ref:
                lines.append(f"- {profile} / {bench}: {ad['recipe']} instead of {ref['recipe']} " + _change(
                    "raised", "lowered", "AUROC (MLS)", ref["auroc_mls"], ad["auroc_mls"]) + " and " + _change(
                    "raised", "lowered", "acc", ref["acc"], ad["acc"]) + f" (n={ref['n']} vs {ad['n']}).")
    return lines or ["- No comparable pair yet: the reading needs `plain (ce) + none` beside a mixed plain or an AD "
                     "student of the same profile and benchmark."]


def generated_line(source: str, rows: int) -> str:
    return (f"Generated by `python -m cli.report` from {source}: {rows} finished experiments. "
            "Do not edit; rerun it.")


def suite_markdown(rows: list[dict], agg: dict, source: str, claims: list[str] | None = None) -> str:
    """The whole `reports/suite.md`; `source` says which command and filters produced it; `claims` are the
    lines of the Claims section (osr.claims.claims_markdown), which comes first; the Run time section reads
    `agg["run_time"]` where the caller put `run_time(rows)`."""
    lines = ["# Benchmark suite", "", generated_line(source, len(rows)), "", *(claims or []),
             "## Student and teacher per benchmark", "",
             "Cells: closed-set acc / AUROC (MLS) / OSCR (MLS) in %, mean ± sample std (ddof=1) over the "
             "experiments (splits) of the cell, then their number and the profile that produced them. "
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
