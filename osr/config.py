"""params.yaml: load and validate every knob before any work, with one-line errors naming the parameter.

Every setting is declared once, here: `Params` and its sections are frozen dataclasses shaped like conf/ (teacher
and student share `Network`, as conf/train/ is mounted at both) without defaults (the values live in conf/ only).
`validate` checks each field of a params mapping against its type (bool, int, float, str, a list of one of them)
and its `Annotated` constraint (`Range`, `OneOf`, `Lengths`, `AUTO`), then returns the `Params` object the stages
and the library read (`p.distill.tau`; a float setting holds a float even where `-S distill.tau=4` wrote an int).
It is standard library only: the stages run on the GPU host too, which has no pydantic.

Names drawn from a registry (`Registered`: benchmarks, mixers, losses, architectures, scores, compile modes) are
checked against the registry itself, imported only when a value is checked, so importing this module does not
import the implementations: a stage's DVC deps are the code it runs, and adding a score to `osr/scores.py` does
not mark the training stages changed. The `check_params` stage, which gates every stage, declares the registries
(`REGISTRY_MODULES`) as its deps, so a registry edit reruns the check (whose constant output changes nothing
downstream) and a name it removed fails there first.

Every number must be finite (NaN and inf are refused: `relabel.threshold: .nan` would pass any range check and
silently switch relabelling off). Bounds beyond the obvious ones mark where a value stops meaning anything:
``distill.tau`` (0, 100] (a temperature past 100 flattens every softmax while the tau^2 factor scales the loss
by 1e4), learning rates (0, 1] (the rate at batch 128, scaled linearly with the batch size: the standard SGD
recipe is 0.1, and at 10 a teacher's logits overflow fp16), loss weights [0, 100], ``movr.scale`` and
``evaluate.energy_temperature`` (0, 1000], ``data.mean`` in [0, 1] and ``data.std`` in (0, 1] per channel
(images are scaled to [0, 1]), milestones in (0, 1] (fractions of the run), seeds below 2^32 (NumPy's limit).

A key the schema does not know is refused with the nearest known one (`refuse_unknown_keys`); what the benchmark's
declared sizes decide is checked by `osr.sizes` in the check_params stage. `load_params` reads `1e9` as a number
(`ParamsLoader`).
"""
import difflib
import importlib
import math
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin, get_type_hints

import yaml

from osr import OSRError

PARAMS_FILE = "params.yaml"


@dataclass(frozen=True)
class Range:
    """A number in [lo, hi], lo excluded when `lo_open`; None: unbounded on that side."""
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False

    def problem(self, v: float) -> str | None:
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return f"must be {'>' if self.lo_open else '>='} {self.lo}"
        return f"must be <= {self.hi}" if self.hi is not None and v > self.hi else None


@dataclass(frozen=True)
class OneOf:
    """A name from `options` (a registry); as the item of a list: a non-empty list drawn from them."""
    options: Collection[str]

    def names(self) -> Collection[str]:
        return self.options

    def problem(self, v: Any) -> str | None:
        names = self.names()
        return None if isinstance(v, str) and v in names else f"must be one of {sorted(names)}"


@dataclass(frozen=True)
class Registered(OneOf):
    """A name from the registry `options` ("module:ATTRIBUTE"), imported when a value is checked."""
    options: str

    @property
    def module(self) -> str:
        return self.options.split(":")[0]

    def names(self) -> Collection[str]:
        module, attribute = self.options.split(":")
        return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Lengths:
    """A list of one of these lengths."""
    allowed: tuple[int, ...]


AUTO = "auto"  # as a constraint: the string "auto" is accepted besides the annotated type

Fraction = Annotated[float, Range(0, 1)]
Weight = Annotated[float, Range(0, 100)]  # of a loss term
Count = Annotated[int, Range(0)]


@dataclass(frozen=True)
class Base:
    seed: Annotated[int, Range(0, 2**32 - 1)]
    profile: str  # the conf/profile/ it was composed with: a label in reports
    device: Annotated[str, OneOf({"auto", "cpu", "cuda"})]


BENCHMARK = Registered("osr.data:BENCHMARKS")


@dataclass(frozen=True)
class Data:
    benchmark: Annotated[str, BENCHMARK]
    mean: Annotated[list[Annotated[float, Range(0, 1)]], Lengths((1, 3))]
    std: Annotated[list[Annotated[float, Range(0, 1, lo_open=True)]], Lengths((1, 3))]
    image_size: Annotated[int, Range(0)]  # 0: the benchmark's own size; n: resized to n x n by the download stage
    root: str  # benchmark folder: the ImageFolder tree (osr/folder.py); a DVC dependency of the download stage
    test_fraction: Annotated[float, Range(0, 0.5, lo_open=True)]  # folder without train/ and test/: held out


@dataclass(frozen=True)
class Split:
    index: Annotated[int, Range(0)]  # below the benchmark's number of splits (checked in `validate`)
    val_fraction: Annotated[float, Range(0, 0.5, lo_open=True)]
    train_per_class: Count
    test_per_class: Count
    known: list[str]  # benchmark folder: the known classes by folder name; empty: a partition drawn by index
    num_known: Count  # benchmark folder, known empty: how many classes the drawn partition knows; 0: 60 %


@dataclass(frozen=True)
class Augment:
    method: Annotated[str, Registered("osr.augment:METHODS")]
    prob: Fraction
    preview: Annotated[int, Range(1, 256)]
    layers: list[Annotated[str, OneOf({"layer1", "layer2", "layer3", "layer4"})]]


@dataclass(frozen=True)
class Network:
    """teacher and student: a profile sets arch, width and epochs, conf/train/sgd.yaml the recipe."""
    arch: Annotated[str, Registered("osr.models:ARCHS")]
    # >= 8: in fp32 + channels_last at one thread, the stride-2 1x1 shortcut convolution of a narrower network
    # corrupted the heap (oneDNN on an AVX2 CPU, torch 2.14.1; bench/README.md "Precision")
    width: Annotated[int, Range(8, 1024)]
    epochs: Annotated[int, Range(1, 10_000)]
    batch_size: Annotated[int, Range(2)]
    lr: Annotated[float, Range(0, 1, lo_open=True)]
    momentum: Fraction
    weight_decay: Fraction
    schedule: Annotated[str, OneOf({"multistep", "cosine"})]
    milestones: list[Annotated[float, Range(0, 1, lo_open=True)]]
    gamma: Annotated[float, Range(0, 1, lo_open=True)]
    warmup_epochs: Annotated[float, Range(0, 100)]
    randaugment: Annotated[int, Range(0, 30)]
    amp: Annotated[bool, AUTO]
    compile: Annotated[str, Registered("osr.train:COMPILE")]
    checkpoint_every: Annotated[int, Range(1), AUTO]
    min_steps: Count  # the run's epochs rise until it takes this many optimiser steps (osr.train.budget_epochs)
    keep: Annotated[str, OneOf({"last", "best"})]  # best: the best-validated epoch's weights (osr.train.fit)
    flip_tta: bool  # the model averages its features over the image and its mirror in eval mode (osr.models)
    init: str  # '' | teacher (student only) | a checkpoint file: the weights a run starts from (osr.models.load_init)


@dataclass(frozen=True)
class Teacher(Network):
    loss: Annotated[str, Registered("osr.teacher:TEACHER_LOSSES")]
    noise_exposure: Weight  # weight of the uniform-softmax loss on noise images added to each batch; 0 = none


@dataclass(frozen=True)
class Relabel:
    rule: Annotated[str, Registered("osr.losses:RELABEL_RULES")]
    threshold: Fraction
    smoothing: Fraction


@dataclass(frozen=True)
class Distill:
    method: Annotated[str, Registered("osr.losses:STEP_LOSSES")]
    tau: Annotated[float, Range(0, 100, lo_open=True)]
    alpha: Weight
    beta: Weight
    gamma: Weight
    easy: Weight
    jmi: Weight
    hard_reduction: Annotated[str, Registered("osr.losses:HARD_REDUCTIONS")]
    mixed_ce: Weight
    divergence: Annotated[str, Registered("osr.losses:DIVERGENCES")]
    raw_on_mixed: Weight
    noise_exposure: Weight  # weight of the uniform-softmax loss on noise images added to each student batch; 0 = none


@dataclass(frozen=True)
class Movr:
    scale: Annotated[float, Range(0, 1000, lo_open=True)]
    margin: Annotated[float, Range(0, 1.5)]
    margin_mode: Annotated[str, Registered("osr.losses:MARGIN_MODES")]
    rotation: Fraction


@dataclass(frozen=True)
class Contrastive:
    """The contrastive teacher losses (teacher.loss supcon, gradmix_con, noisebox_con; methods.md §3.3)."""
    temperature: Annotated[float, Range(0, 10, lo_open=True)]
    base_temperature: Annotated[float, Range(0, 10, lo_open=True)]
    supcon: Weight
    ntxent: Weight
    projection: Annotated[int, Range(1, 4096)]
    knn_k: Annotated[int, Range(1)]


@dataclass(frozen=True)
class Evaluate:
    scores: list[Annotated[str, Registered("osr.scores:SCORES")]]
    energy_temperature: Annotated[float, Range(0, 1000, lo_open=True)]
    batch_size: Annotated[int, Range(1)]
    jacobian_samples: Count
    knn_k: Annotated[int, Range(1)]
    bootstrap: Count
    known_tpr: Annotated[float, Range(0, 1, lo_open=True)]  # share of validation knowns the exported threshold accepts
    deploy_score: Annotated[str, Registered("osr.scores:SCORES")]  # the exported score: any registered score
    deploy_bank: Annotated[int, Range(1)]  # training images at most in an exported kNN score's feature bank
    noise_limit: Annotated[float, Range(0, 1)]  # share of noise images a candidate may accept and still ship


@dataclass(frozen=True)
class Params:
    """params.yaml, in the order its sections are validated (the first problem is the one reported).
    `dataclasses.asdict` turns it back into the mapping (for a fingerprint or a params.yaml of one's own)."""
    base: Base
    data: Data
    split: Split
    augment: Augment
    teacher: Teacher
    student: Network
    relabel: Relabel
    distill: Distill
    movr: Movr
    contrastive: Contrastive
    evaluate: Evaluate


def _fields(schema: type, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, annotated type) of every leaf of a section schema, in declaration order."""
    for name, tp in get_type_hints(schema, include_extras=True).items():
        if is_dataclass(tp):
            yield from _fields(tp, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", tp


FIELDS: dict[str, Any] = dict(_fields(Params))


def _sections() -> dict[str, str]:
    """Every section (a dotted prefix of a field, e.g. `distill`) -> its first field (e.g. `distill.method`)."""
    out: dict[str, str] = {}
    for key in FIELDS:
        parts = key.split(".")
        for n in range(1, len(parts)):
            out.setdefault(".".join(parts[:n]), key)
    return out


SECTIONS = _sections()


def _parts(tp: Any) -> tuple[Any, tuple]:
    """(type, constraints) of a possibly `Annotated` type."""
    return (get_args(tp)[0], get_args(tp)[1:]) if get_origin(tp) is Annotated else (tp, ())


def _registries(tp: Any) -> Iterator[Registered]:
    """The `Registered` constraints of a field's type, its list items' included."""
    kind, constraints = _parts(tp)
    yield from (c for c in constraints if isinstance(c, Registered))
    if get_origin(kind) is list:
        yield from _registries(get_args(kind)[0])


REGISTERED: dict[str, Registered] = {key: r for key, tp in FIELDS.items() for r in _registries(tp)}
# the modules whose registries `validate` imports: the deps of the check_params stage beside its own imports
REGISTRY_MODULES: tuple[str, ...] = tuple(sorted({r.module for r in REGISTERED.values()}))


def _list_problem(item: Any, constraints: tuple, v: Any) -> str | None:
    kind, item_constraints = _parts(item)
    if kind is str and not item_constraints:  # names, possibly none
        return None if isinstance(v, list) and all(isinstance(x, str) for x in v) else "must be a list of names"
    names = next((c for c in item_constraints if isinstance(c, OneOf)), None)
    if names is not None:
        drawn = isinstance(v, list) and v and all(names.problem(x) is None for x in v)
        return None if drawn else f"must be a non-empty list drawn from {sorted(names.names())}"
    lengths = next((c.allowed for c in constraints if isinstance(c, Lengths)), ())
    if not isinstance(v, list) or not v or (lengths and len(v) not in lengths):
        return f"must be a list of {' or '.join(map(str, lengths)) or 'one or more'} numbers"
    return next((f"item {i} {p}" for i, x in enumerate(v) if (p := _problem(kind, item_constraints, x))), None)


def _problem(kind: Any, constraints: tuple, v: Any) -> str | None:
    """What is wrong with `v` as a value of `kind` under `constraints`; None if nothing."""
    if AUTO in constraints:
        problem = None if v == AUTO else _problem(kind, tuple(c for c in constraints if c != AUTO), v)
        return problem and f"must be auto or {problem.removeprefix('must be ')}"
    if get_origin(kind) is list:
        return _list_problem(get_args(kind)[0], constraints, v)
    if kind is bool:
        return None if isinstance(v, bool) else "must be true or false"
    if kind in (int, float):
        if isinstance(v, bool) or not isinstance(v, int if kind is int else (int, float)):
            return f"must be {'an integer' if kind is int else 'a number'}"
        if not math.isfinite(v):
            return "must be a finite number"
    return next((p for c in constraints if (p := c.problem(v))), None)


def get(params: dict, dotted: str) -> Any:
    node = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise OSRError(f"{PARAMS_FILE}: missing parameter {dotted}")
        node = node[part]
    return node


def _keys(node: dict, prefix: str = "") -> Iterator[str]:
    """The dotted keys of a params mapping, down to the schema's leaves (a list or mapping value of a leaf is one)."""
    for name, value in node.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and key not in FIELDS:
            yield from _keys(value, f"{key}.")
        else:
            yield key


def refuse_unknown_keys(params: dict, source: str = PARAMS_FILE) -> None:
    """A key the schema does not know (a typo, `-S +distill.tauu=2`) would be read by nothing: refused, with the
    nearest known key."""
    for key in _keys(params):
        if key in SECTIONS:  # `-S distill=3`: a value where a section belongs
            raise OSRError(f"{source}: {key} must be a section of parameters, such as {SECTIONS[key]} "
                           f"(got {get(params, key)!r})")
        if key not in FIELDS:
            near = difflib.get_close_matches(key, FIELDS, n=1)
            raise OSRError(f"{source}: {key}: unknown parameter" + (f"; did you mean {near[0]}?" if near else ""))


def _value(tp: Any, v: Any) -> Any:
    """A checked value as its field holds it: a section as its dataclass, a number as its declared type."""
    kind, _ = _parts(tp)
    if is_dataclass(kind):
        return sections(kind, v)
    if get_origin(kind) is list:
        return [_value(get_args(kind)[0], x) for x in v]
    if kind in (int, float) and isinstance(v, (int, float)) and not isinstance(v, bool):
        return kind(v)
    return v


def sections(schema: type, mapping: dict) -> Any:
    """The frozen `schema` object (Params, or one section) of a checked mapping."""
    hints = get_type_hints(schema, include_extras=True)
    return schema(**{f.name: _value(hints[f.name], mapping[f.name]) for f in fields(schema)})


def validate(params: dict, source: str = PARAMS_FILE) -> Params:
    """The `Params` of a params mapping, every field checked first (the first problem is one line naming it)."""
    refuse_unknown_keys(params, source)
    for key, tp in FIELDS.items():
        value = get(params, key)
        problem = _problem(*_parts(tp), value)
        if problem:
            raise OSRError(f"{source}: {key} {problem} (got {value!r})")
    bench = BENCHMARK.names()[params["data"]["benchmark"]]
    if params["split"]["known"] and not bench.pick_known:
        raise OSRError(f"{source}: split.known names the classes of a folder benchmark only (data.benchmark "
                       f"{params['data']['benchmark']} has its standard splits: use split.index)")
    splits = bench.splits
    if splits is not None and params["split"]["index"] >= splits:
        raise OSRError(f"{source}: split.index must be <= {splits - 1} for {params['data']['benchmark']} "
                       f"(got {params['split']['index']})")
    return sections(Params, params)


class ParamsLoader(yaml.SafeLoader):
    """PyYAML reads YAML 1.1, where `1e9` and `2E-3` (no dot) are text; YAML 1.2, Hydra and every user read numbers.
    This loader reads them as floats too."""


EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(\.[0-9_]*)?[eE][-+]?[0-9]+$")
ParamsLoader.add_implicit_resolver("tag:yaml.org,2002:float", EXPONENT_FLOAT, list("-+0123456789"))


def read_yaml(path: str | Path, loader: type = yaml.SafeLoader, missing: str = "") -> dict:
    """A YAML file holding a mapping (params.yaml, conf/ and the study's files); a missing or invalid file, or one
    that holds no mapping, is a one-line OSRError naming it (`missing`: what to add to "file not found")."""
    try:
        data = yaml.load(Path(path).read_text(), Loader=loader)
    except FileNotFoundError:
        raise OSRError(f"{path}: file not found{missing}") from None
    except yaml.YAMLError as e:
        raise OSRError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise OSRError(f"{path}: expected a mapping at the top level")
    return data


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    return validate(read_yaml(path, ParamsLoader, " (run from the project root)"), str(path))
