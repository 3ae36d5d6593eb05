"""What every stage shares: its command line, the error wrapper, its outputs published together and the split of a
report into DVC metrics and diagnostics (the training stages' own: stages/training.py)."""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

import stages
from cli import entry_point
from osr import OSRError
from osr.config import read_yaml
from osr.io import diagnostic_rows, diagnostics_tree, publication, write_json
from osr.machine import peak_rss_mib
from osr.paths import REPORTS

DVC_FILE = Path(__file__).resolve().parents[1] / "dvc.yaml"  # beside the stages' code, whatever the working folder
OUTPUT_KINDS = ("outs", "metrics", "plots")


def module_name(main: Callable[[], None]) -> str:
    """The dotted name of the module defining `main`, also when it runs as `python -m <module>` (`__main__`)."""
    module = sys.modules[main.__module__]
    return module.__spec__.name if getattr(module, "__spec__", None) else main.__module__


def write_diagnostics(stage: str, rows: list[dict]) -> None:
    """`reports/diagnostics/<stage>.json`: rows of what a stage reports beside its quality metrics. It is a DVC plot
    (a bar chart per revision in `dvc plots diff`), committed like the metrics but out of `dvc metrics diff` and
    `dvc exp show`, which list only what a reviewer compares."""
    write_json(REPORTS / "diagnostics" / f"{stage}.json", rows)


def write_report(stage: str, metrics_file: str, report: dict, quality: str) -> None:
    """Write `report` in two: the leaves whose dotted name fully matches the regex `quality` to
    `reports/<metrics_file>` (a DVC metric), the others to the stage's diagnostics file."""
    rows, keep = diagnostic_rows(report), re.compile(quality)
    write_json(REPORTS / metrics_file, diagnostics_tree([r for r in rows if keep.fullmatch(r["name"])]))
    write_diagnostics(stage, [r for r in rows if not keep.fullmatch(r["name"])])


def declared_outputs(stage: str, dvc_file: Path = DVC_FILE) -> list[Path]:
    """Every path dvc.yaml declares as an output of `stage` (its outs, metrics and plots)."""
    stages = read_yaml(dvc_file, missing=" (the stages' outputs are declared there)")["stages"]
    if stage not in stages:
        raise OSRError(f"{dvc_file}: no stage {stage}")
    entries = [e for kind in OUTPUT_KINDS for e in stages[stage].get(kind) or []]
    return [Path(next(iter(e)) if isinstance(e, dict) else e) for e in entries]


def published(main: Callable[[], None], stage: str) -> Callable[[], None]:
    """`main` run as a whole: the stage's declared output folders are checked writable before any work, and its
    outputs are renamed into place together when it succeeds (a failure leaves the previous outputs, or none: never
    a mix)."""
    def work() -> None:
        with publication(declared_outputs(stage)):
            main()
    return work


def run(main: Callable[[], None], parser: argparse.ArgumentParser | None = None,
        argv: list[str] | None = None) -> None:
    """Run a stage as `cli.entry_point` does (`--help` first, one-line errors), a DVC stage's (`main` of a module of
    this package) outputs published together (`published`), then report its peak memory."""
    package, _, stage = module_name(main).rpartition(".")
    parser = parser or stages.stage_parser(module_name(main), sys.modules[main.__module__].__doc__)
    entry_point(published(main, stage) if package == __package__ else main, parser, argv)
    print(f"peak RSS {peak_rss_mib():.0f} MiB", file=sys.stderr)
