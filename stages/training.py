"""What the two training stages (train_teacher, distill) share: their seeded start and their outputs (the model
and three reports)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from osr.io import save_torch, write_json
from osr.machine import cpu_name, peak_rss_mib
from osr.paths import REPORTS
from osr.roles import SplitTensors, load_split
from osr.train import precision, resolve_device, set_determinism

if TYPE_CHECKING:  # annotations only: osr.config is not among the DVC deps of this code
    from osr.config import Params


def seeded_start(p: Params) -> tuple[torch.device, SplitTensors]:
    """The device `p` names, with determinism seeded, and the split's training and validation images."""
    device = resolve_device(p.base.device)
    set_determinism(p.base.seed, device)
    return device, load_split(device, ("train", "val"))


def write_model(stage: str, role: str, path: Path, p: Params, device: torch.device, model: torch.nn.Module,
                meta: dict, history: list[dict]) -> None:
    """A training stage's outputs: the model file at `path` and its three reports (`write_training_reports`)."""
    save_torch(path, {"meta": meta, "state": model.state_dict()})
    write_training_reports(stage, role, history, precision(getattr(p, role).amp, device))


QUALITY_KEYS = ("epoch", "loss", "val_acc")  # per-epoch model quality; the rest of a history row is run statistics
RUN_KEYS = ("epoch", "seconds", "images_per_s", "seconds_callback")


def write_training_reports(stage: str, role: str, history: list[dict], precision: str) -> None:
    """What a training stage reports, in three files (all DVC outputs with cache: false):

    - `reports/<role>_train.json` (a DVC metric): the last epoch's loss and validation accuracy, model quality only;
    - `reports/plots/history/<role>.json` (a DVC plot): one row per epoch {epoch, loss, lr, val_acc}, val_acc null
      on epochs without a validation, so `dvc plots diff` overlays training curves;
    - `reports/run/<stage>.json` (not a metric): seconds, images/s per epoch, the peak RSS, the precision
      trained at (`osr.train.precision`: bf16 or fp32), the CPU and torch's thread count, so run statistics
      stay out of `dvc metrics diff` and `dvc exp show`.
    """
    last = history[-1]
    write_json(REPORTS / f"{role}_train.json", {"final": {k: last[k] for k in QUALITY_KEYS if k in last}})
    write_json(REPORTS / "plots" / "history" / f"{role}.json",
               [{"epoch": h["epoch"], "loss": h["loss"], "lr": h["lr"], "val_acc": h.get("val_acc")} for h in history])
    rows = [{k: h[k] for k in RUN_KEYS if k in h} for h in history]
    write_json(REPORTS / "run" / f"{stage}.json",
               {"history": rows, "epochs": len(rows), "seconds": float(sum(r["seconds"] for r in rows)),
                "peak_rss_mib": peak_rss_mib(), "precision": precision, "cpu": cpu_name(),
                "threads": torch.get_num_threads()})
