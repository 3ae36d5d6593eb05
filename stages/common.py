"""What every stage shares: its command line, the error wrapper and its outputs published together (a stage's
reports: stages/reports.py; the training stages' own: stages/training.py)."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import stages
from cli import entry_point
from osr import OSRError
from osr.config import read_yaml
from osr.io import publication
from osr.machine import peak_rss_mib

DVC_FILE = Path(__file__).resolve().parents[1] / "dvc.yaml"  # beside the stages' code, whatever the working folder
OUTPUT_KINDS = ("outs", "metrics", "plots")


def module_name(main: Callable[[], None]) -> str:
    """The dotted name of the module defining `main`, also when it runs as `python -m <module>` (`__main__`)."""
    module = sys.modules[main.__module__]
    return module.__spec__.name if getattr(module, "__spec__", None) else main.__module__


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
