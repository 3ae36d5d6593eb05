"""Finished experiments as the report reads them: rows from `dvc exp show --json --all-commits` (live experiments)
or from the archive `reports/experiments/<name>.json`, and the archive record of a live experiment.

Experiment refs stay local, so the committed archive is what later reports and other clones build on: a record
keeps the cell's name, the `dvc exp run` that reproduces it, the baseline commit it was launched from (the
registration check of study/registration.py reads it), the metrics, the relabel statistics and the run time.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from cli.tools import dvc_json
from osr.io import diagnostics_tree, merged, read_json
from study.grid import parse_name

METRICS_FILE = "reports/metrics.json"
EXP_SHOW = ["exp", "show", "--json", "--all-commits"]


def nested(d: dict, path: tuple[str, ...]):
    """d[path[0]][path[1]]..., or None where a key is missing."""
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _row(name: str, metrics: dict, params: dict, baseline: str | None) -> dict:
    """One experiment as the report reads it. A suite cell's recipe (with its ablation variants) and seed come
    from its name (study/grid.py); an ad-hoc experiment gets its recipe from the metrics' info and its seed from
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



def exp_show() -> list:
    """`dvc exp show --json --all-commits`, parsed."""
    return dvc_json(EXP_SHOW)


def from_commit(rev: str | None, path: str) -> dict | None:
    """A JSON report as the experiment's commit holds it (None if it has none): `dvc exp show` leaves out list
    values (the AUROC intervals, the training history), so the archive reads the files themselves."""
    res = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return json.loads(res.stdout) if res.returncode == 0 else None


RUN_STATS = {"teacher": "train_teacher", "student": "distill"}  # role -> the stage whose reports/run/<stage>.json


def run_stats_of(rev: str | None) -> dict[str, dict]:
    """Per role, the file holding the training's per-epoch seconds and images/s: `reports/run/<stage>.json`, or in
    experiments committed before that file existed, `reports/<role>_train.json` (its history rows held them)."""
    out = {}
    for role, stage in RUN_STATS.items():
        t = from_commit(rev, f"reports/run/{stage}.json") or from_commit(rev, f"reports/{role}_train.json")
        if t and t.get("history"):
            out[role] = t
    return out


def with_diagnostics(rev: str | None, report: dict, stage: str) -> dict:
    """A stage's report whole again: its DVC metrics merged with `reports/diagnostics/<stage>.json` (the Jacobian
    diagnostics, logit statistics, ... that the claims read); a commit from before that file existed has them all
    in the metrics file."""
    return merged(report, diagnostics_tree(from_commit(rev, f"reports/diagnostics/{stage}.json") or []))


def record_of(row: dict) -> dict:
    """The archive record of a live experiment, read from its commit."""
    rev = row.get("rev")
    train = run_stats_of(rev)
    metrics = with_diagnostics(rev, from_commit(rev, METRICS_FILE) or row["metrics"], "evaluate")
    relabel = with_diagnostics(rev, from_commit(rev, "reports/relabel.json") or {}, "relabel")
    return archive_record({**row, "metrics": metrics}, relabel or None, train)


def archived(folder: Path) -> list[dict]:
    return [read_json(f) for f in sorted(folder.glob("*.json"))]
