"""What every stage shares: output paths, the error wrapper, loading the split, building models."""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from osr import OSRError
from osr.io import load_npz, load_torch
from osr.models import build, load_state, model_meta
from osr.split import SplitTensors
from osr.train import OptimConfig

RAW = Path("data/raw/dataset.npz")
SOURCE = Path("data/raw/source.json")
MANIFEST = Path("data/split/manifest.csv")
PLAN = Path("data/plan/plan.npz")
TEACHER = Path("data/teacher/model.pt")
TEACHER_CKPT = Path("data/teacher/ckpt.pt")
CACHE = Path("data/teacher_cache/cache.npz")
STUDENT = Path("data/student/model.pt")
STUDENT_CKPT = Path("data/student/ckpt.pt")
SCORES_OUT = Path("data/eval/scores.npz")
REPORTS = Path("reports")


def run(main: Callable[[], None]) -> None:
    """Run a stage; a user-facing error becomes one line on stderr and exit status 1."""
    try:
        main()
    except OSRError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


def load_manifest(path: Path = MANIFEST) -> pd.DataFrame:
    if not path.is_file():
        raise OSRError(f"{path}: file not found (run the split stage first)")
    return pd.read_csv(path)


def load_split(device: torch.device, roles: tuple[str, ...]) -> SplitTensors:
    return SplitTensors.from_arrays(load_npz(RAW, ("x_train", "y_train", "x_test", "y_test")),
                                    load_manifest(), device, roles)


def new_model(section: dict, data: dict, num_classes: int, in_channels: int, device: torch.device):
    meta = model_meta(section["arch"], num_classes, section["width"], in_channels, data["mean"], data["std"])
    if len(meta["mean"]) != in_channels:
        raise OSRError(f"data.mean: {len(meta['mean'])} values for {in_channels}-channel images")
    return build(**meta).to(device, memory_format=torch.channels_last), meta


def load_model(path: Path, device: torch.device):
    ck = load_torch(path, map_location=device)
    if not isinstance(ck, dict) or "meta" not in ck or "state" not in ck:
        raise OSRError(f"{path}: not a model file of this project (no meta/state)")
    model = build(**ck["meta"])
    load_state(model, ck["state"], str(path))
    return model.to(device, memory_format=torch.channels_last).eval(), ck["meta"]


def optim_config(section: dict) -> OptimConfig:
    return OptimConfig(lr=float(section["lr"]), momentum=float(section["momentum"]),
                       weight_decay=float(section["weight_decay"]), schedule=section["schedule"],
                       milestones=tuple(float(m) for m in section["milestones"]), gamma=float(section["gamma"]),
                       warmup_epochs=float(section["warmup_epochs"]))


def fingerprint(params: dict, *files: Path) -> str:
    """Hash of the parameters and input files that determine a training run (guards checkpoint resume)."""
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for f in files:
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()
