"""What `make run` prints at the end: both models' quality, where the outputs are, and what to try next.

    python -m cli.summary [--metrics reports/metrics.json] [--params params.yaml]

Reads only the files the pipeline wrote (no torch), so it answers in well under a second.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cli import fail
from osr import OSRError
from osr.config import ParamsLoader, read_yaml

OUTPUTS = [("student model", "data/student/model.pt"), ("teacher model", "data/teacher/model.pt"),
           ("metrics", "reports/metrics.json"), ("ROC / score histograms / training curves", "reports/plots/*.png"),
           ("deployable classifier", "data/export/")]
NEXT = [("change one setting, rerun only what it feeds", "dvc exp run -S distill.tau=2"),
        ("AD exactly as published, fresh student", "dvc exp run -S profile=adpaper"),
        ("compare with main", "dvc metrics diff main --md"),
        ("your own images: docs/own-data.md", "dvc exp run -S benchmark=folder -S data.root=<dir>")]


def quality_rows(metrics: dict, score: str = "mls") -> list[str]:
    """One line per model: test accuracy, AUROC and OSCR of `score`, in percent."""
    rows = [f"{'model':<8} {'arch':<14} {'acc':>6} {'AUROC':>6} {'OSCR':>6}   (test set, {score} score, %)"]
    for role in ("teacher", "student"):
        m = metrics.get(role)
        if not m:
            continue
        t = m["test"]
        rows.append(f"{role:<8} {m.get('model', '?'):<14} {100 * t['acc']:6.1f} {100 * t[score]['auroc']:6.1f} "
                    f"{100 * t[score]['oscr']:6.1f}")
    return rows


def shipped(export: dict) -> list[str]:
    """What the export shipped and why, and its test figures at its threshold (reports/export.json)."""
    if not export:
        return []
    t = export["test"]
    return [f"shipped: the {export['role']} ({export['chosen_because']})",
            f"  at {export['known_tpr']:.0%} of validation knowns accepted: known accuracy among accepted "
            f"{100 * t['known_accuracy_accepted']:.1f} %, unknowns rejected {100 * t['unknown_rejected']:.1f} %, "
            f"noise images accepted {100 * export['noise_accepted']:.1f} %"]


def architectures(rows: list[dict]) -> dict[str, str]:
    """role -> architecture ("resnet18-w16"), from the rows of reports/diagnostics/evaluate.json."""
    return {r["name"].split(".")[0]: r["value"] for r in rows if r["name"].endswith(".model")}


def epochs_run(root: Path) -> list[str]:
    """The epochs each network trained (`min_steps` may raise a profile's), from reports/run/<stage>.json."""
    runs = {role: root / "reports" / "run" / f"{stage}.json" for role, stage in (("teacher", "train_teacher"),
                                                                                ("student", "distill"))}
    done = {role: json.loads(path.read_text())["epochs"] for role, path in runs.items() if path.exists()}
    return ["trained: " + ", ".join(f"{role} {n} epochs" for role, n in done.items())] if done else []


def summary(metrics: dict, params: dict, root: Path = Path(), export: dict | None = None) -> str:
    info = metrics.get("info", {})
    head = (f"osr: {params['base'].get('profile', '?')} profile, {info.get('benchmark', params['data']['benchmark'])} "
            f"split {params['split']['index']}, student {params['distill']['method']} + {params['augment']['method']}")
    score = "mls" if "mls" in metrics.get("student", {}).get("test", {}) else params["evaluate"]["scores"][0]
    lines = [head, "", *quality_rows(metrics, score), *epochs_run(root), *shipped(export or {}), "", "outputs:"]
    lines += [f"  {what:<42} {path}" for what, path in OUTPUTS if any(root.glob(path.rstrip("/")))]
    lines += ["", "next:"] + [f"  {cmd:<58} # {why}" for why, cmd in NEXT]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cli.summary", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--metrics", type=Path, default=Path("reports/metrics.json"))
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)
    try:
        metrics = json.loads(args.metrics.read_text())
        params = read_yaml(args.params, ParamsLoader, " (run `dvc repro` first)")
        diagnostics = args.metrics.parent / "diagnostics" / "evaluate.json"
        for role, arch in architectures(json.loads(diagnostics.read_text()) if diagnostics.exists() else []).items():
            metrics.get(role, {}).setdefault("model", arch)
        export = args.metrics.parent / "export.json"
        print(summary(metrics, params, export=json.loads(export.read_text()) if export.exists() else None))
    except FileNotFoundError as e:
        return fail(f"{e.filename}: not found (run `dvc repro` first)")
    except OSRError as e:
        return fail(e)
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        return fail(f"{args.metrics} / {args.params}: not the pipeline's metrics and params ({type(e).__name__}: {e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
