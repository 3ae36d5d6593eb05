"""cli: the one-line error wrapper and the dvc subprocess every entry point shares."""
import pytest

from cli import entry_point, fail, guarded
from cli.tools import dvc, dvc_json
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


def test_entry_point_answers_help_before_running_and_exits_1_on_a_project_error(capsys):
    import argparse

    ran = []
    parser = argparse.ArgumentParser(prog="python -m x", description="does x")
    with pytest.raises(SystemExit) as e:
        entry_point(lambda: ran.append(1), parser, ["--help"])
    assert e.value.code == 0 and not ran and "usage: python -m x" in capsys.readouterr().out

    def work():
        raise OSRError("params.yaml: distill.tau must be > 0")
    with pytest.raises(SystemExit) as e:
        entry_point(work, parser, [])
    assert e.value.code == 1 and capsys.readouterr().err == "error: params.yaml: distill.tau must be > 0\n"
    entry_point(lambda: ran.append(1), parser, [])  # success: returns, no exit
    assert ran == [1]
