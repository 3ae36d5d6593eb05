"""The two training stages as the device check runs them: the stages' own runs and outputs (`train` of
stages/train_teacher.py and stages/distill.py, `stages.training.write_model`), with a deadline. After the epoch
that ends past it the run stops (`osr.train.Pruned` from the epoch callback) and its model is written as the
stage's output, so the stages after it still run and the projection uses the epochs done."""
from __future__ import annotations

import time

import torch

from osr.config import Network, Params
from osr.io import load_npz
from osr.losses import STEP_LOSSES
from osr.models import model_meta
from osr.paths import PLAN, STUDENT, TEACHER
from osr.roles import SplitTensors
from osr.train import Pruned, val_accuracy
from stages.distill import train as distill_stage
from stages.train_teacher import train as train_teacher_stage
from stages.training import seeded_start, write_model


class EpochDeadline:
    """fit's epoch callback: the stage's own (validation), timed, then a stop after the epoch that ends past
    `deadline` (time.perf_counter()) unless it was the last. Its rows are the history of a stopped run; an epoch's
    seconds there run from the end of the previous callback (so they include that epoch's checkpoint write, and
    the first one the model's construction)."""

    def __init__(self, inner, deadline: float, epochs: int):
        self.inner, self.deadline, self.epochs = inner, deadline, epochs
        self.rows: list[dict] = []
        self.model: torch.nn.Module | None = None
        self.meta: dict | None = None  # set by the caller when the run stopped
        self.mark = time.perf_counter()

    def __call__(self, model: torch.nn.Module, epoch: int) -> dict:
        t_callback = time.perf_counter()
        result = self.inner(model, epoch)
        now = time.perf_counter()
        self.rows.append({"epoch": epoch + 1, "seconds": t_callback - self.mark, "seconds_callback": now - t_callback,
                          "loss": None, "lr": None, **result})
        self.mark, self.model = now, model
        if now > self.deadline and epoch + 1 < self.epochs:
            raise Pruned(f"time budget: stopped after epoch {epoch + 1} of {self.epochs}")
        return result


def stopped_meta(section: Network, p: Params, data: SplitTensors, loss: str) -> dict:
    """The meta of a model whose run was stopped (the library returns it only from a finished run): built as
    `osr.models.new_model` builds it for `loss`."""
    head = STEP_LOSSES[loss].head(p.movr)
    return model_meta(section.arch, data.num_classes, section.width, data.x["train"].shape[1], p.data.mean,
                      p.data.std, **head)


def finish(stage: str, role: str, path, p: Params, dev: torch.device, result, stop: EpochDeadline) -> dict:
    """Write the stage's outputs from a finished (`result`) or stopped (None) run; its row of timings."""
    model, meta, history = result or (stop.model, stop.meta, stop.rows)
    write_model(stage, role, path, p, dev, model, meta, history)
    row = {"epoch_seconds": [h["seconds"] for h in history],
           "callback_seconds": [h["seconds_callback"] for h in history if "seconds_callback" in h]}
    if not result:
        row["stopped_after_epoch"] = len(history)
    return row


def teacher_stage(p: Params, dev: torch.device, deadline: float) -> dict:
    """stages/train_teacher.py with a deadline."""
    _, data = seeded_start(p)
    stop = EpochDeadline(val_accuracy(data), deadline, p.teacher.epochs)
    try:
        result = train_teacher_stage(p, dev, data, stop)
    except Pruned:
        result, stop.meta = None, stopped_meta(p.teacher, p, data, p.teacher.loss)
    return finish("train_teacher", "teacher", TEACHER, p, dev, result, stop)


def student_stage(p: Params, dev: torch.device, deadline: float) -> dict:
    """stages/distill.py with a deadline."""
    _, data = seeded_start(p)
    stop = EpochDeadline(val_accuracy(data), deadline, int(load_npz(PLAN, ("order",))["order"].shape[0]))
    try:
        result = distill_stage(p, dev, data, stop)
    except Pruned:
        result, stop.meta = None, stopped_meta(p.student, p, data, p.distill.method)
    return finish("distill", "student", STUDENT, p, dev, result, stop)
