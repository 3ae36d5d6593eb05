"""Benchmark-suite report: finished DVC experiments -> reports/suite.md, suite.json and two PNG figures.

    python -m stages.report [--profile quick] [--benchmark cifar10] [--match REGEX] [--out reports]

Not a DVC stage: it reads the experiments of the repository in the current directory (`make suite` runs them).
By default only the suite's cells count (names `<profile>-<benchmark>-s<split>-<recipe>`, see flows/suite.py), so
ad-hoc experiments with other settings (another tau, more epochs) never enter a recipe's mean; `--match .` takes all.
"""
import argparse
import json
import re
import subprocess
from pathlib import Path

from osr import OSRError
from osr.grid import NAME_PATTERN
from osr.io import atomic_path, write_json
from osr.report import aggregate, jacobian_scatter, rows_from_exp_show, suite_markdown, two_sides_figure
from stages.common import run

COMMAND = ["dvc", "exp", "show", "--json", "--all-commits"]
SUITE_NAMES = NAME_PATTERN


def exp_show() -> list:
    try:
        res = subprocess.run(COMMAND, capture_output=True, text=True)
    except FileNotFoundError:
        raise OSRError("dvc not found on PATH; put the project's .venv/bin first") from None
    if res.returncode:
        last = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
        raise OSRError(f"`{' '.join(COMMAND)}` failed: {last[0]}")
    try:
        return json.loads(res.stdout)
    except json.JSONDecodeError as e:
        raise OSRError(f"`{' '.join(COMMAND)}` did not print JSON ({e.msg})") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", help="only experiments of this profile")
    ap.add_argument("--benchmark", help="only experiments of this benchmark")
    ap.add_argument("--match", default=SUITE_NAMES, help="regex on experiment names (default: suite cells)")
    ap.add_argument("--out", type=Path, default=Path("reports"))
    args = ap.parse_args()
    rows = [r for r in rows_from_exp_show(exp_show()) if re.search(args.match, r["name"])]
    if not rows:
        raise OSRError("no finished experiments found by `dvc exp show`; run `make suite` first")
    filters = "".join(f" --{k} {v}" for k, v in (("profile", args.profile), ("benchmark", args.benchmark)) if v)
    rows = [r for r in rows if args.profile in (None, r["profile"]) and args.benchmark in (None, r["benchmark"])]
    if not rows:
        raise OSRError(f"no finished experiment matches{filters}")
    agg = aggregate(rows)
    source = f"`{' '.join(COMMAND)}`" + (f" filtered by `{filters.strip()}`" if filters else "")
    with atomic_path(args.out / "suite.md") as tmp:
        tmp.write_text(suite_markdown(rows, agg, source))
    write_json(args.out / "suite.json", agg)
    two_sides_figure(agg, args.out / "suite" / "two_sides.png")
    jacobian_scatter(rows, args.out / "suite" / "jacobian_auroc.png")
    print(f"report: {len(rows)} experiments, {len(agg['groups'])} recipe groups -> {args.out / 'suite.md'}, "
          f"{args.out / 'suite.json'}, {args.out / 'suite'}/{{two_sides,jacobian_auroc}}.png")


if __name__ == "__main__":
    run(main)
