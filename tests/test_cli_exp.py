"""cli.exp (`make exp`): `-S` overrides are composed and checked before `dvc exp run` sees them, so Hydra's
multi-line errors and values check_params would refuse end in one line, with params.yaml untouched."""
import pytest

from cli.exp import check_overrides, params_overrides
from conftest import ROOT, clone, sh
from osr import OSRError


@pytest.mark.parametrize("override,message", [
    ("distill.nokey=2", "-S distill.nokey=2: Could not override 'distill.nokey'. To append to your config use "
                        "+distill.nokey=2"),
    ("distill.tau=[1", "-S distill.tau=[1: not a Hydra override (no viable alternative at input '[1')"),
    ("profile=nope", "-S profile=nope: In 'config': Could not find 'profile/nope' (options: adpaper, claims, "
                     "paper, paper_b512, quick, tiny)"),
    ("distill=3", "-S overrides: distill must be a section of parameters, such as distill.method (got 3)"),
    ("+distill.tauu=2", "-S overrides: distill.tauu: unknown parameter; did you mean distill.tau?"),
    ("teacher.lr=10", "-S overrides: teacher.lr must be <= 1 (got 10)"),
    ("teacher.batch_size=100000", "-S overrides: teacher.batch_size must be <= 27000, the training images of "
                                  "cifar10 split 0"),
])
def test_a_bad_override_is_one_line_naming_it(override, message, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(OSRError) as e:
        check_overrides([override])
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_good_overrides_compose_what_dvc_writes(monkeypatch):
    monkeypatch.chdir(ROOT)
    params = check_overrides(["profile=tiny", "distill.tau=4"])
    assert params["base"]["profile"] == "tiny" and params["distill"]["tau"] == 4.0


def test_only_the_overrides_of_params_yaml_go_to_hydra():
    assert params_overrides(["a.b=1", "params.yaml:c=2", "other.yaml:d=3", "e='x:y'"]) == ["a.b=1", "c=2", "e='x:y'"]


@pytest.mark.slow
def test_the_command_refuses_in_one_line_and_hands_a_good_one_to_dvc(tiny_repro, tmp_path):
    proj = clone(tiny_repro, tmp_path / "proj")
    params = (proj / "params.yaml").read_bytes()
    res = sh(["python", "-m", "cli.exp", "-n", "bad", "-S", "profile=tiny", "-S", "distill.nokey=2"], proj,
             check=False)
    assert res.returncode == 1 and res.stderr == ("error: -S profile=tiny distill.nokey=2: Could not override "
                                                  "'distill.nokey'. To append to your config use +distill.nokey=2\n")
    assert res.stdout == "" and (proj / "params.yaml").read_bytes() == params
    # a good command reaches `dvc exp run` with every option: queued (not run), then listed by the queue
    sh(["python", "-m", "cli.exp", "--queue", "-n", "good", "-S", "profile=tiny", "-S", "distill.tau=4"], proj)
    assert "good" in sh(["dvc", "queue", "status"], proj).stdout
