"""params.yaml: load and validate every knob before any work, with one-line errors naming the parameter.

Every number must be finite (NaN and inf are refused: `relabel.threshold: .nan` would pass any range check and
silently switch relabelling off). Bounds beyond the obvious ones mark where a value stops meaning anything:
``distill.tau`` (0, 100] (a temperature past 100 flattens every softmax while the tau^2 factor scales the loss
by 1e4), learning rates (0, 10], loss weights [0, 100], ``movr.scale`` and ``evaluate.energy_temperature``
(0, 1000], ``data.mean`` in [0, 1] and ``data.std`` in (0, 1] per channel (images are scaled to [0, 1]),
milestones in (0, 1] (fractions of the run), seeds below 2^32 (NumPy's limit).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from osr import OSRError
from osr.augment import METHODS
from osr.data import BENCHMARKS
from osr.losses import DIVERGENCES, HARD_REDUCTIONS, MARGIN_MODES, RELABEL_RULES, STEP_LOSSES, TEACHER_LOSSES
from osr.models import ARCHS
from osr.scores import SCORES
from osr.train import COMPILE

PARAMS_FILE = "params.yaml"


def _num(lo: float | None = None, hi: float | None = None, lo_open: bool = False, integer: bool = False):
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
            return f"must be {'an integer' if integer else 'a number'}"
        if not math.isfinite(v):
            return "must be a finite number"
        if lo is not None and (v <= lo if lo_open else v < lo):
            return f"must be {'>' if lo_open else '>='} {lo}"
        if hi is not None and v > hi:
            return f"must be <= {hi}"
        return None
    return check


def _choice(options) -> Callable[[Any], str | None]:
    return lambda v: None if v in options else f"must be one of {sorted(options)}"


def _each(options) -> Callable[[Any], str | None]:
    return lambda v: None if isinstance(v, list) and v and all(x in options for x in v) else \
        f"must be a non-empty list drawn from {sorted(options)}"


def _auto_or(check: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    return lambda v: None if v == "auto" or check(v) is None else \
        f"must be auto or {check(v).removeprefix('must be ')}"


def _numbers(item: Callable[[Any], str | None], lengths: tuple[int, ...] = ()) -> Callable[[Any], str | None]:
    """A non-empty list (of one of `lengths`, when given) whose every item passes `item`."""
    def check(v: Any) -> str | None:
        if not isinstance(v, list) or not v or (lengths and len(v) not in lengths):
            return f"must be a list of {' or '.join(map(str, lengths)) or 'one or more'} numbers"
        return next((f"item {i} {problem}" for i, x in enumerate(v) if (problem := item(x))), None)
    return check


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


_TRAIN = {"arch": _choice(ARCHS), "width": _num(1, 1024, integer=True), "epochs": _num(1, 10_000, integer=True),
          "batch_size": _num(2, integer=True), "lr": _num(0, 10, lo_open=True), "momentum": _num(0, 1),
          "weight_decay": _num(0, 1), "schedule": _choice({"multistep", "cosine"}),
          "milestones": _numbers(_num(0, 1, lo_open=True)), "gamma": _num(0, 1, lo_open=True),
          "warmup_epochs": _num(0, 100), "randaugment": _num(0, 30, integer=True), "amp": _bool,
          "compile": _choice(COMPILE), "checkpoint_every": _auto_or(_num(1, integer=True))}
_WEIGHT = _num(0, 100)

SCHEMA: dict[str, Callable[[Any], str | None]] = {
    "base.seed": _num(0, 2**32 - 1, integer=True),
    "base.device": _choice({"auto", "cpu", "cuda"}),
    "data.benchmark": _choice(BENCHMARKS),
    "data.mean": _numbers(_num(0, 1), (1, 3)),
    "data.std": _numbers(_num(0, 1, lo_open=True), (1, 3)),
    "split.index": _num(0, 4, integer=True),
    "split.val_fraction": _num(0, 0.5, lo_open=True),
    "split.train_per_class": _num(0, integer=True),
    "split.test_per_class": _num(0, integer=True),
    "augment.method": _choice(METHODS),
    "augment.prob": _num(0, 1),
    "augment.preview": _num(1, 256, integer=True),
    "augment.layers": _each({"layer1", "layer2", "layer3", "layer4"}),
    **{f"teacher.{k}": v for k, v in _TRAIN.items()},
    "teacher.loss": _choice(TEACHER_LOSSES),
    **{f"student.{k}": v for k, v in _TRAIN.items()},
    "relabel.rule": _choice(RELABEL_RULES),
    "relabel.threshold": _num(0, 1),
    "relabel.smoothing": _num(0, 1),
    "distill.method": _choice(STEP_LOSSES),
    "distill.tau": _num(0, 100, lo_open=True),
    "distill.alpha": _WEIGHT,
    "distill.beta": _WEIGHT,
    "distill.gamma": _WEIGHT,
    "distill.easy": _WEIGHT,
    "distill.jmi": _WEIGHT,
    "distill.hard_reduction": _choice(HARD_REDUCTIONS),
    "distill.mixed_ce": _WEIGHT,
    "distill.divergence": _choice(DIVERGENCES),
    "movr.scale": _num(0, 1000, lo_open=True),
    "movr.margin": _num(0, 1.5),
    "movr.margin_mode": _choice(MARGIN_MODES),
    "movr.rotation": _num(0, 1),
    "evaluate.scores": _each(SCORES),
    "evaluate.energy_temperature": _num(0, 1000, lo_open=True),
    "evaluate.batch_size": _num(1, integer=True),
    "evaluate.jacobian_samples": _num(0, integer=True),
    "evaluate.knn_k": _num(1, integer=True),
    "evaluate.bootstrap": _num(0, integer=True),
}


def get(params: dict, dotted: str) -> Any:
    node = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise OSRError(f"{PARAMS_FILE}: missing parameter {dotted}")
        node = node[part]
    return node


def validate(params: dict, source: str = PARAMS_FILE) -> dict:
    for key, check in SCHEMA.items():
        value = get(params, key)
        problem = check(value)
        if problem:
            raise OSRError(f"{source}: {key} {problem} (got {value!r})")
    return params


def load_params(path: str | Path = PARAMS_FILE) -> dict:
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise OSRError(f"{path}: file not found (run from the project root)") from None
    except yaml.YAMLError as e:
        raise OSRError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(params, dict):
        raise OSRError(f"{path}: expected a mapping of stage sections")
    return validate(params, str(path))
