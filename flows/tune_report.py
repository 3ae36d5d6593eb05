"""Rewrite a study's report (`reports/tuning/<study>.json` and its figures) from its storage alone:
`python -m flows.tune_report --study tune-asym`. The storage records the params.yaml the trials ran on and the
proxy they were measured against, so neither the pipeline's outputs nor a Prefect server are needed: the journal
committed beside a report regenerates it."""
import argparse
from pathlib import Path

import optuna

from cli import entry_point
from flows.tune_asym import default_journal, make_storage, study_report
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
        storage = args.storage or str(default_journal(args.study))
        if "://" not in storage and not (project / storage).is_file():  # opening it would create an empty one
            raise OSRError(f"{storage}: no such journal (name the storage with --storage)")
        try:
            study = optuna.load_study(study_name=args.study, storage=make_storage(storage, args.study, project))
        except KeyError:
            raise OSRError(f"study {args.study!r}: not in {storage}") from None
        report = study_report(study, project)
        print(f"reports/tuning/{args.study}.json: {report['n_trials']} trials, best {report['best']['number']}"
              if report["best"] else f"reports/tuning/{args.study}.json: no complete trial")

    entry_point(work, PARSER, argv)


if __name__ == "__main__":
    main()
