"""Stage check_params: validate all of params.yaml before any other stage touches its outputs.

DVC deletes a stage's outputs just before it runs the stage, so a parameter checked only by the stage that
reads it costs that stage's previous results. Every stage depends on this one's output, so DVC runs it first
and a bad value fails here, in one line, with every other output as it was. Its output is persistent (a failed
check leaves it in place) and constant (a change of parameters reruns only the stages that read them).

`dvc exp run -S key=value` writes the value into params.yaml before any stage runs and leaves it there when
this check refuses it, so the next `dvc repro` would fail the same way: the error says so.
"""
from __future__ import annotations

from stages import PARAMS_KEPT, answer_help

answer_help(__name__, __spec__, __doc__)  # --help answers here, before the imports below load torch

from typing import TYPE_CHECKING

from osr import OSRError
from osr.io import atomic_path
from osr.paths import PARAMS_OK
from osr.sizes import check_sizes

if TYPE_CHECKING:  # main is handed the validated params by the runner
    from osr.config import Params


def main(p: Params) -> None:
    try:
        check_sizes(p)
    except OSRError as e:
        raise OSRError(f"{e} {PARAMS_KEPT}") from None
    with atomic_path(PARAMS_OK) as tmp:
        tmp.write_text("params.yaml passed osr.config.validate\n")
    print("check_params: params.yaml is valid")


if __name__ == "__main__":  # the runner is not among the stage's deps (stages/common.py)
    from stages.common import run

    run(main)
