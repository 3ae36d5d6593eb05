"""Rewrite a study's report (`reports/tuning/<study>.json` and its figures) from its storage alone:
`python -m flows.tune_report --study tune-asym`. The storage records the params.yaml the trials ran on and the
proxy they were measured against, so neither the pipeline's outputs nor a Prefect server are needed: the journal
committed beside a report regenerates it."""
import argparse
from pathlib import Path

import optuna

from cli import entry_point
from flows.tune_asym import make_storage, study_report
from osr import OSRError

PARSER = argparse.ArgumentParser(prog="python -m flows.tune_report", description=__doc__)
PARSER.add_argument("--study", default="tune-asym", help="the study's name (default tune-asym)")
PARSER.add_argument("--storage", default=None,
                    help="a journal path or an SQLAlchemy URL (default reports/tuning/<study>.journal)")
PARSER.add_argument("--project", default=".", help="the project directory the report is written under")


def main(argv: list[str] | None = None) -> None:
    args = PARSER.parse_args(argv)
    project = Path(args.project).resolve()

    def work() -> None:
        journal = project / "reports" / "tuning" / f"{args.study}.journal" if args.storage is None else None
        if journal is not None and not journal.is_file():
            raise OSRError(f"{journal.relative_to(project)}: no such journal (name the storage with --storage)")
        store = make_storage(args.storage, args.study, project)
        try:
            study = optuna.load_study(study_name=args.study, storage=store)
        except KeyError:
            raise OSRError(f"study {args.study!r}: not in {args.storage or f'reports/tuning/{args.study}.journal'}")
        report = study_report(study, project)
        print(f"reports/tuning/{args.study}.json: {report['n_trials']} trials, best {report['best']['number']}"
              if report["best"] else f"reports/tuning/{args.study}.json: no complete trial")

    entry_point(work, PARSER, argv)


if __name__ == "__main__":
    main()
