"""The two training stages as the device check runs them: the stages' own library calls and outputs
(stages/train_teacher.py, stages/distill.py), with a deadline. After the epoch that ends past it the run stops
(`osr.train.Pruned` from the epoch callback) and its model is written as the stage's output, so the stages after
it still run and the projection uses the epochs done."""
from __future__ import annotations

import time

import torch

from osr.distill import needs_live_teacher, student_fingerprint, train_student
from osr.io import load_npz, save_torch
from osr.losses import STEP_LOSSES, MOvRConfig
from osr.models import load_model, model_meta
from osr.paths import CACHE, MANIFEST, PLAN, PLAN_KEYS, RAW, STUDENT, STUDENT_CKPT, TEACHER, TEACHER_CKPT
from osr.split import SplitTensors, load_split
from osr.teacher import train_teacher
from osr.train import Pruned, precision, set_determinism, val_accuracy
from stages.training import write_training_reports


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


def stopped_meta(section: dict, p: dict, data: SplitTensors, loss: str) -> dict:
    """The meta of a model whose run was stopped (the library returns it only from a finished run): built as
    `osr.models.new_model` builds it for `loss`."""
    head = STEP_LOSSES[loss].head(MOvRConfig.from_section(p["movr"]))
    return model_meta(section["arch"], data.num_classes, section["width"], data.x["train"].shape[1],
                      p["data"]["mean"], p["data"]["std"], **head)


def finish(stage: str, role: str, p: dict, dev: torch.device, result, stop: EpochDeadline, out_path) -> dict:
    """Write the stage's outputs from a finished (`result`) or stopped (None) run; its row of timings."""
    model, meta, history = result if result else (stop.model, stop.meta, stop.rows)
    save_torch(out_path, {"meta": meta, "state": model.state_dict()})
    write_training_reports(stage, role, history, precision(p[role]["amp"], dev))
    row = {"epoch_seconds": [h["seconds"] for h in history],
           "callback_seconds": [h["seconds_callback"] for h in history if "seconds_callback" in h]}
    if not result:
        row["stopped_after_epoch"] = len(history)
    return row


def teacher_stage(p: dict, dev: torch.device, deadline: float) -> dict:
    """stages/train_teacher.py with a deadline."""
    set_determinism(p["base"]["seed"], dev)
    data = load_split(dev, ("train", "val"))
    stop = EpochDeadline(val_accuracy(data), deadline, int(p["teacher"]["epochs"]))
    try:
        result = train_teacher(data, p, ckpt_path=TEACHER_CKPT, inputs=(RAW, MANIFEST), device=dev,
                               on_epoch_end=stop)
    except Pruned:
        result, stop.meta = None, stopped_meta(p["teacher"], p, data, p["teacher"]["loss"])
    return finish("train_teacher", "teacher", p, dev, result, stop, TEACHER)


def student_stage(p: dict, dev: torch.device, deadline: float) -> dict:
    """stages/distill.py with a deadline."""
    set_determinism(p["base"]["seed"], dev)
    data = load_split(dev, ("train", "val"))
    plan = load_npz(PLAN, PLAN_KEYS)
    cache = load_npz(CACHE, ("t_raw", "t_mixed", "hard", "target"))
    method = p["distill"]["method"]
    teacher = load_model(TEACHER, dev)[0] if needs_live_teacher(str(plan["method"]), method) else None
    stop = EpochDeadline(val_accuracy(data), deadline, int(plan["order"].shape[0]))
    try:
        result = train_student(data, plan, cache, p, ckpt_path=STUDENT_CKPT,
                               fingerprint=student_fingerprint(p, PLAN, CACHE), device=dev, on_epoch_end=stop,
                               teacher=teacher)
    except Pruned:
        result, stop.meta = None, stopped_meta(p["student"], p, data, method)
    return finish("distill", "student", p, dev, result, stop, STUDENT)
