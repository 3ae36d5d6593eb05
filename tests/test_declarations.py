"""One declaration per setting: a params.yaml value and its default live in conf/ only, its name, type and
constraint in osr/config.py only (`Params` and its sections), and what a tuning trial changes in its search space
file only.

The library reads the sections `load_params` returns and carries no defaults of its own (a second default drifts:
a dataclass default once said multistep where conf/train/sgd.yaml says cosine).
"""
import dataclasses
import importlib
import inspect
import pkgutil
import typing

import pytest
import yaml

import osr
from conftest import ROOT
from osr import OSRError
from osr.augment import BaseAug
from osr.config import FIELDS, Params, load_params, validate
from osr.tuning import SearchSpace, trial_params

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
SETTING_NAMES = {key for section in PARAMS.values() for key in section}
# fields whose name is a params.yaml key but which hold something else
NOT_SETTINGS = {"PlannedStep.seed": "a step's augmentation seed, drawn from base.seed by the plan",
                "Claim.margin": "a claim's registered margin, not movr.margin",
                "Cell.seed": "a suite cell's seed, set by the suite"}


def library_dataclasses():
    for info in pkgutil.iter_modules(osr.__path__):
        module = importlib.import_module(f"osr.{info.name}")
        yield from (obj for obj in vars(module).values()
                    if inspect.isclass(obj) and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__)


def leaves(node: dict, prefix: str = "") -> list[str]:
    return [k for name, v in node.items()
            for k in (leaves(v, f"{prefix}{name}.") if isinstance(v, dict) else [f"{prefix}{name}"])]


def test_every_setting_is_declared_once_in_params():
    """Every leaf of params.yaml is one field of a `Params` section: `FIELDS` lists them from that declaration."""
    assert sorted(FIELDS) == sorted(leaves(PARAMS))
    assert all(dataclasses.is_dataclass(tp) for tp in typing.get_type_hints(Params).values())


def test_no_library_dataclass_defaults_a_setting_conf_declares():
    defaulted = {f"{cls.__name__}.{f.name}" for cls in library_dataclasses() for f in dataclasses.fields(cls)
                 if f.name in SETTING_NAMES and (f.default is not dataclasses.MISSING
                                                 or f.default_factory is not dataclasses.MISSING)}
    assert defaulted <= set(NOT_SETTINGS), f"defaults also declared in conf/: {sorted(defaulted - set(NOT_SETTINGS))}"


def test_load_params_returns_frozen_sections_holding_params_yaml():
    p = load_params(ROOT / "params.yaml")
    assert dataclasses.asdict(p) == PARAMS
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.distill.tau = 2.0  # type: ignore[misc]
    assert {f.name for f in dataclasses.fields(BaseAug) if f.default is dataclasses.MISSING} == {"randaugment"}


def test_integer_values_from_the_command_line_become_floats():
    """`dvc exp run -S distill.tau=4` stores an int: the section holds a float either way."""
    p = validate({**PARAMS, "distill": {**PARAMS["distill"], "tau": 4, "alpha": 1},
                  "movr": {**PARAMS["movr"], "scale": 16}})
    assert isinstance(p.distill.tau, float) and isinstance(p.distill.alpha, float) and isinstance(p.movr.scale, float)
    assert p.distill.tau == 4.0 and isinstance(p.teacher.epochs, int)


def test_the_search_space_file_says_what_a_trial_sets(tmp_path):
    """conf/search/asym.yaml alone names the tuned keys, their ranges and the fixed values a trial trains with."""
    space = SearchSpace.load(ROOT / "conf" / "search" / "asym.yaml")
    raw = yaml.safe_load((ROOT / "conf" / "search" / "asym.yaml").read_text())
    assert space.keys() == [*(t["key"] for t in raw["tuned"].values()), *raw["fixed"]]
    drawn = {name: (t.low + t.high) / 2 for name, t in space.tuned.items()}
    cfg = trial_params(validate(PARAMS), space.settings(drawn))
    for name, t in space.tuned.items():
        section, key = t.key.split(".")
        assert getattr(getattr(cfg, section), key) == drawn[name]
        assert isinstance(getattr(getattr(cfg, section), key), float)
    for dotted, value in raw["fixed"].items():
        section, key = dotted.split(".")
        assert getattr(getattr(cfg, section), key) == value
    assert PARAMS == yaml.safe_load((ROOT / "params.yaml").read_text())  # the study's params are left as they were
    # another space: other keys, a fixed value of another section
    (tmp_path / "s.yaml").write_text("tuned:\n  lr: {key: student.lr, low: 0.01, high: 0.5, log: true}\n"
                                     "fixed:\n  distill.method: kd\n")
    other = SearchSpace.load(tmp_path / "s.yaml")
    assert trial_params(validate(PARAMS), other.settings({"lr": 0.05})).student.lr == 0.05
    assert other.keys() == ["student.lr", "distill.method"]


@pytest.mark.parametrize("text,message", [
    ("tuned:\n  tau: {key: distill.tau, low: 2.0, high: 1.0}\n", "low < high"),
    ("tuned:\n  tau: {key: distill.tau, low: 1.0}\n", "not a search space"),
    ("tuned:\n  tau: {key: distill.tau, low: 1.0, high: 2.0, step: 1}\n", "not a search space"),
    ("fixed:\n  relabel.rule: threshold\n", "not a search space"),
    ("tuned: {}\n", "is empty"),
    ("tuned:\n  tau: {key: distill.tau, low: 1e-3, high: 2.0}\n", "numbers low < high"),  # YAML reads 1e-3 as text
])
def test_a_bad_search_space_is_refused_naming_the_file(tmp_path, text, message):
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(OSRError, match=message) as e:
        SearchSpace.load(tmp_path / "s.yaml")
    assert str(tmp_path / "s.yaml") in str(e.value) and "\n" not in str(e.value)
