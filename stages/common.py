"""The runner of every stage, called from its `__main__` block: the command line, params.yaml loaded and validated,
the error wrapper, the outputs published together and the peak memory (a stage's reports: stages/reports.py; the
training stages' own: stages/training.py).

A stage imports it only when run as a program, so it is not among a stage's DVC deps: what it hands `main` is
the validated params, whose values DVC tracks through each stage's `params:`, and its edits rerun check_params,
which runs through it too."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import stages
from cli import entry_point
from osr import OSRError
from osr.config import Params, load_params, read_yaml
from osr.io import publication
from osr.machine import peak_rss_mib
from stages import PARAMS_KEPT

DVC_FILE = Path(__file__).resolve().parents[1] / "dvc.yaml"  # beside the stages' code, whatever the working folder
OUTPUT_KINDS = ("outs", "metrics", "plots")


def module_name(main: Callable[..., None]) -> str:
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


def checked_params() -> Params:
    """params.yaml validated, or a one-line error that says the file keeps the refused value."""
    try:
        return load_params()
    except OSRError as e:
        raise OSRError(f"{e} {PARAMS_KEPT}") from None


def run(main: Callable[[Params], None], parser: argparse.ArgumentParser | None = None,
        argv: list[str] | None = None) -> None:
    """Run a stage as `cli.entry_point` does (`--help` first, one-line errors): `main` is handed the validated
    params; a DVC stage's (`main` of a module of this package) declared output folders are checked writable
    before any work, and its outputs renamed into place together when it succeeds (a failure leaves the previous
    outputs, or none: never a mix); then its peak memory is reported."""
    package, _, stage = module_name(main).rpartition(".")
    parser = parser or stages.stage_parser(module_name(main), sys.modules[main.__module__].__doc__)

    def work() -> None:
        p = checked_params()
        if package != __package__:
            return main(p)
        with publication(declared_outputs(stage)):
            main(p)

    entry_point(work, parser, argv)
    print(f"peak RSS {peak_rss_mib():.0f} MiB", file=sys.stderr)
