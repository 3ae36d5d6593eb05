"""cli: the one-line error wrapper and the dvc subprocess every entry point shares."""
import pytest

from cli import dvc, dvc_json, fail, guarded
from osr import OSRError


def test_guarded_turns_an_osr_error_into_one_line_and_status_1(capsys):
    def work():
        raise OSRError("distill.tau: must be positive")
    assert guarded(work) == 1 and guarded(lambda: None) == 0 and guarded(lambda: 3) == 3
    assert capsys.readouterr().err == "error: distill.tau: must be positive\n"
    assert fail("x") == 1 and capsys.readouterr().err == "error: x\n"


def test_a_non_project_error_is_not_swallowed():
    with pytest.raises(ZeroDivisionError):
        guarded(lambda: 1 / 0)


@pytest.mark.slow
def test_a_failing_dvc_command_is_one_line_naming_it(tmp_path):
    with pytest.raises(OSRError, match=r"^`dvc status --json` failed in .*: ") as e:
        dvc_json(["status", "--json"], tmp_path)  # not a DVC repository
    assert "\n" not in str(e.value)
    assert isinstance(dvc(["status"], tmp_path, check=False), str)  # check=False: no error, the output
