"""What every stage shares: output paths, the error wrapper, loading the split, building models."""
from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from osr import OSRError
from osr.io import load_npz, load_torch
from osr.metrics import accuracy
from osr.models import build, load_state
from osr.paths import (  # noqa: F401  (re-exported for the stages: `from stages.common import CACHE, ...`)
    CACHE,
    MANIFEST,
    PLAN,
    PLAN_KEYS,
    RAW,
    REPORTS,
    SCORES_OUT,
    STUDENT,
    STUDENT_CKPT,
    TEACHER,
    TEACHER_CKPT,
)
from osr.split import SplitTensors, read_manifest
from osr.train import predict


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage_parser(main: Callable[[], None]) -> argparse.ArgumentParser:
    """The command line of a DVC stage: no options, `--help` prints the module's docstring."""
    module = sys.modules[main.__module__]
    name = module.__spec__.name if module.__spec__ else main.__module__
    return argparse.ArgumentParser(prog=f"python -m {name}", description=module.__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="Reads its section of params.yaml; `dvc repro` runs it (dvc.yaml).")


def run(main: Callable[[], None], parser: argparse.ArgumentParser | None = None) -> None:
    """Run a stage. The command line is parsed first, so `--help` answers (exit 0) before anything is read or
    written; a user-facing error becomes one line on stderr and exit status 1."""
    (parser or stage_parser(main)).parse_args()
    try:
        main()
    except OSRError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"peak RSS {peak_rss_mib():.0f} MiB", file=sys.stderr)


def load_split(device: torch.device, roles: tuple[str, ...]) -> SplitTensors:
    return SplitTensors.from_arrays(load_npz(RAW, ("x_train", "y_train", "x_test", "y_test")),
                                    read_manifest(MANIFEST), device, roles)


def load_model(path: Path, device: torch.device):
    ck = load_torch(path, map_location=device)
    if not isinstance(ck, dict) or "meta" not in ck or "state" not in ck:
        raise OSRError(f"{path}: not a model file of this project (no meta/state)")
    model = build(**ck["meta"])
    load_state(model, ck["state"], str(path))
    return model.to(device, memory_format=torch.channels_last).eval(), ck["meta"]


def fingerprint(params: dict, *files: Path) -> str:
    """Hash of the parameters and input files that determine a training run (guards checkpoint resume)."""
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for f in files:
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def val_accuracy(data: SplitTensors) -> Callable[[torch.nn.Module, int], dict]:
    """Epoch callback for `fit`: closed-set accuracy on the validation role."""
    def callback(model: torch.nn.Module, epoch: int) -> dict:
        pred = predict(model, data.x["val"]).argmax(1).cpu().numpy()
        return {"val_acc": accuracy(data.y["val"].cpu().numpy(), pred)}
    return callback
