"""params.yaml: load and validate every knob before any work, with one-line errors naming the parameter."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

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


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


_TRAIN = {"arch": _choice(ARCHS), "width": _num(1, integer=True), "epochs": _num(1, integer=True),
          "batch_size": _num(2, integer=True), "lr": _num(0, lo_open=True), "momentum": _num(0, 1),
          "weight_decay": _num(0), "schedule": _choice({"multistep", "cosine"}), "gamma": _num(0, 1, lo_open=True),
          "warmup_epochs": _num(0), "randaugment": _num(0, 30, integer=True), "amp": _bool,
          "compile": _choice(COMPILE), "checkpoint_every": _auto_or(_num(1, integer=True))}

SCHEMA: dict[str, Callable[[Any], str | None]] = {
    "base.seed": _num(0, integer=True),
    "base.device": _choice({"auto", "cpu", "cuda"}),
    "data.benchmark": _choice(BENCHMARKS),
    "split.index": _num(0, 4, integer=True),
    "split.val_fraction": _num(0, 0.5, lo_open=True),
    "split.train_per_class": _num(0, integer=True),
    "split.test_per_class": _num(0, integer=True),
    "augment.method": _choice(METHODS),
    "augment.prob": _num(0, 1),
    "augment.layers": _each({"layer1", "layer2", "layer3", "layer4"}),
    **{f"teacher.{k}": v for k, v in _TRAIN.items()},
    "teacher.loss": _choice(TEACHER_LOSSES),
    **{f"student.{k}": v for k, v in _TRAIN.items()},
    "relabel.rule": _choice(RELABEL_RULES),
    "relabel.threshold": _num(0, 1),
    "relabel.smoothing": _num(0, 1),
    "distill.method": _choice(STEP_LOSSES),
    "distill.tau": _num(0, lo_open=True),
    "distill.alpha": _num(0),
    "distill.beta": _num(0),
    "distill.gamma": _num(0),
    "distill.easy": _num(0),
    "distill.jmi": _num(0),
    "distill.hard_reduction": _choice(HARD_REDUCTIONS),
    "distill.mixed_ce": _num(0),
    "distill.divergence": _choice(DIVERGENCES),
    "movr.scale": _num(0, lo_open=True),
    "movr.margin": _num(0, 1.5),
    "movr.margin_mode": _choice(MARGIN_MODES),
    "movr.rotation": _num(0, 1),
    "evaluate.scores": _each(SCORES),
    "evaluate.energy_temperature": _num(0, lo_open=True),
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


def _merge(base: dict, over: dict) -> dict:
    """Hydra's merge: mappings recursively, everything else (lists included) replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def compose_conf(conf_dir: str | Path = "conf", **choices: str) -> dict:
    """params.yaml as Hydra composes conf/ (config.yaml, then its defaults' groups in order), with PyYAML only:
    for machines without Hydra (the GPU host). `choices` pick group options, e.g. profile="paper".
    Covers what conf/ uses: a `_self_`-first defaults list of `group: option` entries, `@package _global_`."""
    conf_dir = Path(conf_dir)
    cfg = yaml.safe_load((conf_dir / "config.yaml").read_text())
    defaults = cfg.pop("defaults", [])
    unknown = set(choices) - {k for d in defaults if isinstance(d, dict) for k in d}
    if unknown:
        raise OSRError(f"{conf_dir}/config.yaml: no config group {sorted(unknown)}")
    for entry in defaults:
        if entry == "_self_":
            continue
        (group, option), = entry.items()
        path = conf_dir / group / f"{choices.get(group, option)}.yaml"
        if not path.is_file():
            raise OSRError(f"{path}: no such {group} option")
        cfg = _merge(cfg, yaml.safe_load(path.read_text()) or {})
    return cfg


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
