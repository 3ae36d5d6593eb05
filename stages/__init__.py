"""Thin DVC stages: `main(p)` is handed the validated params.yaml, calls the osr library and writes its outputs,
published together by the runner (stages/common.py, imported in each stage's `__main__` block only, so that the
runner is not among a stage's DVC deps).

Every stage module starts with `answer_help(__name__, __spec__, __doc__)`, before its other imports: its
command line is parsed there, so `python -m stages.<name> --help` answers before torch is imported. This module
imports nothing heavy for that reason, and every stage imports it.
"""
from __future__ import annotations

import argparse
from importlib.machinery import ModuleSpec

PARAMS_KEPT = ("[params.yaml keeps this value, also after a failed `dvc exp run -S`: correct it or "
               "`git checkout params.yaml`]")
SHARED = frozenset({"__init__", "common", "reports", "training"})  # the modules that are not stages: what stages share


def stage_parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """The command line of the DVC stage `name` (module name): no options, `--help` prints its docstring."""
    return argparse.ArgumentParser(prog=f"python -m {name}", description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="Reads its section of params.yaml; `dvc repro` runs it (dvc.yaml).")


def answer_help(name: str, spec: ModuleSpec | None, doc: str | None) -> None:
    """Parse the command line when the stage runs as a program (`name` is "__main__"); imported, it does nothing."""
    if name == "__main__":
        stage_parser(spec.name if spec else name, doc).parse_args()
