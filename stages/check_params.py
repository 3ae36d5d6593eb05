"""Stage check_params: validate all of params.yaml before any other stage touches its outputs.

DVC deletes a stage's outputs just before it runs the stage, so a parameter checked only by the stage that
reads it costs that stage's previous results. Every stage depends on this one's output, so DVC runs it first
and a bad value fails here, in one line, with every other output as it was. Its output is persistent (a failed
check leaves it in place) and constant (a change of parameters reruns only the stages that read them).

`dvc exp run -S key=value` writes the value into params.yaml before any stage runs and leaves it there when
this check refuses it, so the next `dvc repro` would fail the same way: the error says so.
"""
from stages import answer_help

answer_help(__name__, __spec__, __doc__)  # --help answers here, before the imports below load torch

from osr import OSRError
from osr.config import load_params
from osr.io import atomic_path
from osr.paths import PARAMS_OK
from osr.sizes import check_sizes
from stages.common import run


def main() -> None:
    try:
        check_sizes(load_params())
    except OSRError as e:
        raise OSRError(f"{e} [params.yaml keeps this value, also after a failed `dvc exp run -S`: correct it or "
                       "`git checkout params.yaml`]") from None
    with atomic_path(PARAMS_OK) as tmp:
        tmp.write_text("params.yaml passed osr.config.validate\n")
    print("check_params: params.yaml is valid")


if __name__ == "__main__":
    run(main)
