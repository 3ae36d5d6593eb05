"""Benchmark-suite report: finished experiments -> reports/suite.md (claims first), claims.json, ablation.md.

    python -m study.report [--profile quick] [--benchmark cifar10] [--match REGEX] [--out reports] [--archive-only]

Not a DVC stage: it reads the experiments of the repository in the current directory (`make suite` runs them)
and keeps each finished one in `reports/experiments/<name>.json` (study/experiments.py); with `--archive-only`
it reads that archive alone, without DVC. Outputs: suite.md/suite.json (per-recipe means), claims.json,
ablation.md/ablation.json and ablation/*.png (per profile/benchmark/split with ablation variants: the Δ bars and
the logit-scale figure), suite/*.png. By default only the suite's cells count (names
`<profile>-<benchmark>-s<split>-<recipe>`, study/grid.py), so ad-hoc experiments with other settings (another tau,
more epochs) never enter a recipe's mean; `--match .` takes all.
"""
import argparse
import re
from collections import Counter
from pathlib import Path

from cli import entry_point
from osr import OSRError
from osr.io import atomic_path, write_json
from study.ablation import places, study
from study.ablation_page import ablation_markdown
from study.aggregate import aggregate, run_time
from study.experiments import EXP_SHOW, archived, exp_show, record_of, rows_from_archive, rows_from_exp_show
from study.families import claims_table, confirmatory_study, held_out
from study.figures import jacobian_scatter, scale_figure, study_figure, two_sides_figure
from study.grid import NAME_PATTERN
from study.suite_page import claims_markdown, suite_markdown

PARSER = argparse.ArgumentParser(prog="python -m study.report", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
PARSER.add_argument("--profile", help="only experiments of this profile")
PARSER.add_argument("--benchmark", help="only experiments of this benchmark")
PARSER.add_argument("--match", default=NAME_PATTERN, help="regex on experiment names (default: suite cells)")
PARSER.add_argument("--out", type=Path, default=Path("reports"))
PARSER.add_argument("--archive-only", action="store_true",
                    help="read only the archive <out>/experiments/, not `dvc exp show`")


def read_rows(args: argparse.Namespace) -> tuple[list[dict], str]:
    """The finished experiments the report covers (after archiving the live ones) and where they came from."""
    folder = args.out / "experiments"
    if not args.archive_only:
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
    live = "" if args.archive_only else f"`dvc {' '.join(EXP_SHOW)}` and "
    return rows, f"{live}`{folder}/`" + (f" filtered by `{filters.strip()}`" if filters else "")


def write_ablation(rows: list[dict], out: Path, source: str) -> list[dict]:
    """reports/ablation.md, ablation.json and the figures of every ablation study in `rows` (the explored rows:
    none on the confirmatory partitions); the studies."""
    studies = [study(rows, *place) for place in places(rows)]
    if studies:
        with atomic_path(out / "ablation.md") as tmp:
            tmp.write_text(ablation_markdown(studies, source))
        for s in studies:
            stem = out / "ablation" / f"{s['profile']}-{s['benchmark']}-s{s['split']}"
            study_figure(s, stem.with_suffix(".png"))
            scale_figure(s, stem.with_name(stem.name + "-scale.png"))
        write_json(out / "ablation.json", {"studies": studies})
    return studies


def main() -> None:
    args = PARSER.parse_args()
    rows, source = read_rows(args)
    hidden = held_out(confirmatory_study())  # the confirmatory partitions: only their claims read them
    explored = [r for r in rows if (r["profile"], r["benchmark"], r["split"]) not in hidden]
    agg = {**aggregate(explored), "run_time": run_time(rows)}
    claims = claims_table(rows)
    with atomic_path(args.out / "suite.md") as tmp:
        tmp.write_text(suite_markdown(explored, agg, source, claims_markdown(claims)))
    write_json(args.out / "suite.json", agg)
    write_json(args.out / "claims.json", claims)
    studies = write_ablation(explored, args.out, source)
    two_sides_figure(agg, args.out / "suite" / "two_sides.png")
    jacobian_scatter(explored, args.out / "suite" / "jacobian_auroc.png")
    verdicts = Counter(c["verdict"] for c in claims["claims"])
    print(f"report: {len(rows)} experiments, {len(agg['groups'])} recipe groups, {len(claims['claims'])} claim rows "
          f"({', '.join(f'{n} {v}' for v, n in sorted(verdicts.items()))}), {len(studies)} ablation studies -> "
          f"{args.out}/{{suite.md,suite.json,claims.json{',ablation.md' if studies else ''}}}")


if __name__ == "__main__":
    entry_point(main, PARSER)
