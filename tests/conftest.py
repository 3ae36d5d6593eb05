"""Shared fixtures: a temporary copy of the project on the tiny profile, run with the real DVC."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from cli.compose import compose
from osr.config import Params, validate
from osr.paths import mirror_dir

ROOT = Path(__file__).resolve().parents[1]
MIRROR = mirror_dir(ROOT).resolve()
PROJECT_FILES = ["dvc.yaml", "conf", "osr", "stages", "flows", "cli", "study", "images", "pyproject.toml"]
ENV = {"DVC_NO_ANALYTICS": "1", "ITERATIVE_DO_NOT_TRACK": "1", "DO_NOT_TRACK": "1", "GX_ANALYTICS_ENABLED": "false",
       "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "OSR_PROGRESS": "0", "OSR_DATA_MIRROR": str(MIRROR)}
os.environ.update(ENV)
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two pytest-xdist workers on CI's two cores: one thread each (and in every pipeline they
    # start), since two 2-thread OpenMP processes on two cores spin against each other (an fp32 tiny-profile step
    # took 8x longer so, measured on AVX2), and a Prefect home each, so two ephemeral servers never share a database.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    home = Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect")) / os.environ["PYTEST_XDIST_WORKER"]
    home.mkdir(parents=True, exist_ok=True)
    os.environ["PREFECT_HOME"] = str(home)

needs_mirror = pytest.mark.skipif(not (MIRROR / "cifar10_jpeg.npz").exists(), reason=f"no dataset mirror at {MIRROR}")


def composed(overrides: list[str] | tuple[str, ...] = ()) -> Params:
    """The `Params` that conf/ composes with Hydra `overrides` (the real config, shrunk or changed by a test)."""
    return validate(compose(ROOT / "conf", overrides), "conf/")


def venv_env(**extra: str) -> dict[str, str]:
    """The environment with this interpreter's bin folder (dvc, python) first on PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **extra}


def sh(args: list[str], cwd: Path, check: bool = True, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    """Run a command with the project's venv first on PATH; on failure show its output."""
    res = subprocess.run(args, cwd=cwd, env=env or venv_env(), capture_output=True, text=True, **kw)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


def stage_report(proj: Path, stage: str, metrics_file: str | None = None) -> dict:
    """A stage's whole report: its DVC metrics file (if any) merged with its reports/diagnostics/<stage>.json."""
    from osr.io import diagnostics_tree, merged

    rows = json.loads((proj / "reports" / "diagnostics" / f"{stage}.json").read_text())
    metrics = json.loads((proj / "reports" / metrics_file).read_text()) if metrics_file else {}
    return merged(metrics, diagnostics_tree(rows))


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([a-z_]+)'", output))


def _link_or_copy(src: str, dst: str) -> None:
    """Large artifacts are hard-linked (stages and DVC replace them, never edit in place); the rest copied."""
    if "data" in Path(src).parts or "cache" in Path(src).parts:
        os.link(src, dst)
    else:
        shutil.copy2(src, dst)


def clone(src: Path, dest: Path) -> Path:
    """A copy of a project with its git history, DVC cache and outputs."""
    shutil.copytree(src, dest, copy_function=_link_or_copy, symlinks=True)
    return dest


def make_project(dest: Path, profile: str = "tiny", overrides: list[str] | None = None) -> Path:
    """A git + DVC repository holding the project's code, with `profile` as the default profile."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    cfg = dest / "conf" / "config.yaml"
    cfg.write_text(cfg.read_text().replace("  - profile: quick", f"  - profile: {profile}"))
    (dest / "params.yaml").write_text(yaml.safe_dump(compose(dest / "conf", overrides), sort_keys=False))
    (dest / ".gitignore").write_text("/data/\n__pycache__/\n")
    sh(["git", "init", "-q"], dest)
    sh(["git", "config", "user.email", "t@example.com"], dest)
    sh(["git", "config", "user.name", "test"], dest)
    sh(["dvc", "init", "-q"], dest)
    shutil.copytree(ROOT / ".dvc" / "plots", dest / ".dvc" / "plots")  # the custom plot templates dvc.yaml names
    sh(["dvc", "config", "hydra.enabled", "true"], dest)
    sh(["git", "add", "-A"], dest)
    sh(["git", "commit", "-qm", "tiny project"], dest)
    return dest


@pytest.fixture(scope="session")
def tiny_repro(tmp_path_factory) -> Path:
    """One real `dvc repro` of the tiny profile, shared by the tests that only read its outputs."""
    proj = make_project(tmp_path_factory.mktemp("tiny") / "proj")
    sh(["dvc", "repro"], proj)
    sh(["git", "add", "-A"], proj)
    sh(["git", "commit", "-qm", "tiny baseline"], proj)
    return proj


def write_image_folder(root: Path, classes: int = 4, per_class: int = 30, layout: str = "tree") -> Path:
    """`root`/<digit name>/<i>.png (layout tree) or root/{train,test}/<digit name>/… (layout parts):
    the first `per_class` MNIST training images of each of the first `classes` digits (the folder benchmark's tests)."""
    with np.load(MIRROR / "mnist.npz") as z:
        x, y = z["x_train"], z["y_train"]
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    for c in range(classes):
        idx = np.flatnonzero(y == c)[:per_class]
        for i, j in enumerate(idx):
            part = ("train" if i < 0.8 * per_class else "test") if layout == "parts" else ""
            folder = root / part / names[c]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[j]).save(folder / f"{i:03d}.png")
    return root


def tiny_images(n: int, seed: int, size: int = 16, high: int = 256) -> torch.Tensor:
    """`n` seeded uint8 images [n, 3, size, size] with pixel values below `high`."""
    return torch.from_numpy(np.random.default_rng(seed).integers(0, high, (n, 3, size, size), dtype=np.uint8))


def tiny_artifact(folder: Path, score: str = "mls", settings: dict | None = None, threshold: float = 0.0,
                  calibration: bool = True, bank_limit: int = 24) -> Path:
    """An artifact as the export stage writes it (model.pt, model.onnx, card.json) of a width-8 ResNet-18 with
    seeded random weights: 2 classes (cat, dog), 16 x 16 RGB. Its calibration scores are its own scores of
    seeded images: 40 "validation knowns" (`tiny_images(40, 1)`), 40 "test knowns" (seed 2) and 40 darker "test
    unknowns" (seed 3, pixels below 64). A score that needs a bank gets one of at most `bank_limit` of 40 "training
    images" (seed 4, labels alternating)."""
    from osr.calibration import Calibration
    from osr.deploy import write_artifact
    from osr.graph import Deployed, bounded_bank, outputs
    from osr.models import build, model_meta
    from osr.scores import SCORES, bank_of
    from osr.train import predict

    torch.manual_seed(0)
    meta = model_meta("resnet18", 2, 8, 3, [0.5] * 3, [0.25] * 3)
    model = build(**meta).eval()
    bank = None
    if SCORES[score].needs_bank:
        features = predict(model, tiny_images(40, 4), features=True)[1]
        bank = bounded_bank(bank_of(features, torch.arange(40) % 2), bank_limit, settings.get("k", 3), seed=0)
    deployed = Deployed(model, score, settings or {}, threshold, bank)
    card = {"classes": ["cat", "dog"], "image_size": 16, "channels": 3, "score": score,
            "score_settings": settings or {}, "threshold": threshold, "known_tpr": 0.95}
    scores = [outputs(deployed, tiny_images(40, seed, high=high))["score"] for seed, high in ((1, 256), (2, 256),
                                                                                              (3, 64))]
    cal = Calibration(*scores, np.arange(40) % 2 == 0)
    if bank is not None:
        card["bank"] = {"images": len(bank.labels), "of": 40, "limit": bank_limit}
    card["expected_unknown_share"] = cal.expected_unknown_share(threshold)
    write_artifact(folder, deployed, meta, card, cal.as_lists() if calibration else None)
    return folder
