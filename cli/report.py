"""Benchmark-suite report: finished DVC experiments -> reports/suite.md (claims first), claims.json, ablation.md.

    python -m cli.report [--profile quick] [--benchmark cifar10] [--match REGEX] [--out reports]

Not a DVC stage: it reads the experiments of the repository in the current directory (`make suite` runs them)
and keeps each finished one in `reports/experiments/<name>.json` (metrics, baseline commit, the `dvc exp run`
that reproduces it): experiment refs stay local, so the committed archive is what later reports and other
clones build on. Outputs: suite.md/suite.json (per-recipe means), claims.json, ablation.md/ablation.json and
ablation/*.png (per profile/benchmark/split with ablation variants: the Δ bars and the logit-scale figure), suite/*.png.
By default only the suite's cells count (names `<profile>-<benchmark>-s<split>-<recipe>`, see cli/suite.py), so
ad-hoc experiments with other settings (another tau, more epochs) never enter a recipe's mean; `--match .` takes all.
"""
import argparse
import json
import re
import subprocess
from collections import Counter
from pathlib import Path

from cli import dvc_json
from osr import OSRError
from osr.ablation import ablation_markdown, places, scale_figure, study, study_figure
from osr.claims import claims_markdown, claims_table
from osr.grid import NAME_PATTERN
from osr.io import atomic_path, read_json, write_json
from osr.report import (
    METRICS_FILE,
    aggregate,
    archive_record,
    jacobian_scatter,
    rows_from_archive,
    rows_from_exp_show,
    run_time,
    suite_markdown,
    two_sides_figure,
)
from stages.common import run

COMMAND = ["exp", "show", "--json", "--all-commits"]
SUITE_NAMES = NAME_PATTERN


def exp_show() -> list:
    return dvc_json(COMMAND)


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


def record_of(row: dict) -> dict:
    """The archive record of a live experiment, read from its commit."""
    rev = row.get("rev")
    train = run_stats_of(rev)
    return archive_record({**row, "metrics": from_commit(rev, METRICS_FILE) or row["metrics"]},
                          from_commit(rev, "reports/relabel.json"), train)


def archived(folder: Path) -> list[dict]:
    return [read_json(f) for f in sorted(folder.glob("*.json"))]


PARSER = argparse.ArgumentParser(prog="python -m cli.report", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
PARSER.add_argument("--profile", help="only experiments of this profile")
PARSER.add_argument("--benchmark", help="only experiments of this benchmark")
PARSER.add_argument("--match", default=SUITE_NAMES, help="regex on experiment names (default: suite cells)")
PARSER.add_argument("--out", type=Path, default=Path("reports"))


def main() -> None:
    args = PARSER.parse_args()
    folder = args.out / "experiments"
    for row in rows_from_exp_show(exp_show()):
        if re.search(args.match, row["name"]):
            write_json(folder / f"{row['name']}.json", record_of(row))
    rows = [r for r in rows_from_archive(archived(folder)) if re.search(args.match, r["name"])]
    if not rows:
        raise OSRError(f"no finished experiments found by `dvc exp show` or in {folder}; run `make suite` first")
    filters = "".join(f" --{k} {v}" for k, v in (("profile", args.profile), ("benchmark", args.benchmark)) if v)
    rows = [r for r in rows if args.profile in (None, r["profile"]) and args.benchmark in (None, r["benchmark"])]
    if not rows:
        raise OSRError(f"no finished experiment matches{filters}")
    agg = {**aggregate(rows), "run_time": run_time(rows)}
    claims = claims_table(rows)
    source = f"`dvc {' '.join(COMMAND)}` and `{folder}/`" + (f" filtered by `{filters.strip()}`" if filters else "")
    with atomic_path(args.out / "suite.md") as tmp:
        tmp.write_text(suite_markdown(rows, agg, source, claims_markdown(claims)))
    write_json(args.out / "suite.json", agg)
    write_json(args.out / "claims.json", claims)
    studies = [study(rows, *place) for place in places(rows)]
    if studies:
        with atomic_path(args.out / "ablation.md") as tmp:
            tmp.write_text(ablation_markdown(studies, source))
        for s in studies:
            stem = args.out / "ablation" / f"{s['profile']}-{s['benchmark']}-s{s['split']}"
            study_figure(s, stem.with_suffix(".png"))
            scale_figure(s, stem.with_name(stem.name + "-scale.png"))
        write_json(args.out / "ablation.json", {"studies": studies})
    two_sides_figure(agg, args.out / "suite" / "two_sides.png")
    jacobian_scatter(rows, args.out / "suite" / "jacobian_auroc.png")
    verdicts = Counter(c["verdict"] for c in claims["claims"])
    print(f"report: {len(rows)} experiments, {len(agg['groups'])} recipe groups, {len(claims['claims'])} claim rows "
          f"({', '.join(f'{n} {v}' for v, n in sorted(verdicts.items()))}), {len(studies)} ablation studies -> "
          f"{args.out}/{{suite.md,suite.json,claims.json{',ablation.md' if studies else ''}}}")


if __name__ == "__main__":
    run(main, PARSER)
