"""Every entry point answers `--help` (exit 0, its own usage) without reading or writing anything."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import ROOT, venv_env

pytestmark = pytest.mark.slow  # a Python start-up per entry point

STAGES = ("check_params", "download", "split", "augment", "train_teacher", "relabel", "distill", "evaluate", "export")
ENTRY_POINTS = [f"stages.{s}" for s in STAGES] + \
    ["study.suite", "study.report", "flows.serve", "flows.submit", "flows.tune_asym", "flows.deploy",
     "flows.suite_pool", "bench.throughput", "bench.device_check", "osr.predict"]


def python_m(module: str, *args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          env=venv_env(PYTHONPATH=str(ROOT)), timeout=300)


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_help_answers_and_touches_nothing(module, tmp_path):
    res = python_m(module, "--help", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"usage: python -m {module}")
    assert list(tmp_path.iterdir()) == []  # no params.yaml read, no report written, nothing served


def test_stage_refuses_unknown_option(tmp_path):
    res = python_m("stages.evaluate", "--scores", "mls", cwd=tmp_path)
    assert res.returncode == 2 and "unrecognized arguments: --scores mls" in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_make_exp_always_passes_profile_and_benchmark():
    """`dvc exp run -S` recomposes params.yaml from the conf/ defaults, so `make exp` passes both every time."""
    res = subprocess.run(["make", "-n", "exp", "PROFILE=tiny", "SET=distill.tau=4 split.index=1", "NAME=t4"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    cmd = " ".join(res.stdout.replace("\\\n", " ").split())
    assert res.returncode == 0 and ("python -m cli.exp -n t4 -S 'profile=tiny' -S 'benchmark=cifar10' "
                                    "-S 'distill.tau=4' -S 'split.index=1'") in cmd
    res = subprocess.run(["make", "-n", "exps"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "dvc exp show --no-pager --only-changed --drop" in res.stdout and "mls\\.auroc" in res.stdout


def test_the_tuning_flow_help_lists_its_parameters():
    res = subprocess.run([sys.executable, "-m", "flows.tune_asym", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0
    for name in ("study_name", "n_trials", "storage", "mode", "proxy_size", "seed", "run_best"):
        assert re.search(rf"^  {name} +\S", res.stdout, re.M), name
