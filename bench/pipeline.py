"""The pipeline as a user runs it, in a temporary git + DVC repository: the project's code, a params.yaml composed
from conf/ with `-S`-style overrides (what `dvc exp run -S …` writes), `dvc repro`, and what it reported."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import yaml

from cli.compose import compose
from osr.paths import mirror_dir

ROOT = Path(__file__).resolve().parents[1]
CODE = ["dvc.yaml", "conf", "osr", "stages", "cli", "images", "pyproject.toml", ".dvc/plots"]


def project(dest: Path, overrides: list[str]) -> Path:
    """A git + DVC repository with the project's code and the params.yaml that `overrides` compose."""
    for name in CODE:
        src, to = ROOT / name, dest / name
        to.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, to, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, to)
    compose_params(dest, overrides)
    (dest / ".gitignore").write_text("/data/\n__pycache__/\n")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q", "--force"], ["git", "add", "-A"],
                ["git", "-c", "user.email=bench@example.com", "-c", "user.name=bench", "commit", "-qm", "bench"]):
        subprocess.run(cmd, cwd=dest, check=True)
    return dest


def compose_params(dest: Path, overrides: list[str]) -> None:
    """params.yaml of the project at `dest`: its own conf/ composed with `overrides`."""
    (dest / "params.yaml").write_text(yaml.safe_dump(compose(dest / "conf", overrides), sort_keys=False))


def repro(proj: Path) -> dict:
    """`dvc repro` in `proj`; its minutes, the export's report, both models' test metrics and training epochs."""
    env = {**os.environ, "OSR_DATA_MIRROR": str(mirror_dir(ROOT).resolve())}
    t0 = time.perf_counter()
    subprocess.run(["dvc", "repro"], cwd=proj, check=True, env=env)
    minutes = (time.perf_counter() - t0) / 60
    read = lambda name: json.loads((proj / "reports" / name).read_text())  # noqa: E731
    metrics = read("metrics.json")
    return {"minutes": minutes, "export": read("export.json"),
            "models": {r: metrics[r]["test"] for r in ("teacher", "student")},
            "epochs": {r: read(f"run/{s}.json")["epochs"] for r, s in (("teacher", "train_teacher"),
                                                                          ("student", "distill"))}}
