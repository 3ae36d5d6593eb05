"""`python -m stages.<name> --help` answers from the stage's docstring before torch (or numpy) is imported."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from conftest import ROOT

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
HEAVY = ("torch", "numpy", "pandas", "great_expectations")


@pytest.mark.parametrize("name", sorted(STAGES))
def test_help_answers_before_heavy_imports(name):
    module = STAGES[name]["cmd"].split()[-1]
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", module, "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith(f"usage: python -m {module}") and f"Stage {name}" in res.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines() if line.startswith("import time:")}
    assert not imported & set(HEAVY), f"{module} --help imported {sorted(imported & set(HEAVY))}"

