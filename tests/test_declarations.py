"""One declaration per setting: a params.yaml value and its default live in conf/ only, and what a tuning trial
changes lives in its search space file only.

The library's settings dataclasses are built from params.yaml sections and carry no defaults of their own (a
second default drifts: a dataclass default once said multistep where conf/train/sgd.yaml says cosine).
"""
import dataclasses
import importlib
import inspect
import pkgutil

import pytest
import yaml

import osr
from conftest import ROOT
from osr import OSRError
from osr.augment import BaseAug
from osr.contrastive import ContrastiveConfig
from osr.losses import DistillConfig, MOvRConfig
from osr.train import OptimConfig
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


def test_no_library_dataclass_defaults_a_setting_conf_declares():
    defaulted = {f"{cls.__name__}.{f.name}" for cls in library_dataclasses() for f in dataclasses.fields(cls)
                 if f.name in SETTING_NAMES and (f.default is not dataclasses.MISSING
                                                 or f.default_factory is not dataclasses.MISSING)}
    assert defaulted <= set(NOT_SETTINGS), f"defaults also declared in conf/: {sorted(defaulted - set(NOT_SETTINGS))}"


def test_settings_dataclasses_hold_their_sections_values():
    """Each is built from its params.yaml section, every field read (cast to its type)."""
    distill = DistillConfig.from_sections(PARAMS["distill"], PARAMS["movr"])
    assert dataclasses.asdict(distill) == {**{k: v for k, v in PARAMS["distill"].items() if k != "method"},
                                           "movr": PARAMS["movr"]}
    assert dataclasses.asdict(MOvRConfig.from_section(PARAMS["movr"])) == PARAMS["movr"]
    assert dataclasses.asdict(ContrastiveConfig.from_section(PARAMS["contrastive"])) == PARAMS["contrastive"]
    optim = dataclasses.asdict(OptimConfig.from_section(PARAMS["student"]))
    assert optim == {**{k: PARAMS["student"][k] for k in optim}, "milestones": tuple(PARAMS["student"]["milestones"])}
    assert {f.name for f in dataclasses.fields(BaseAug) if f.default is dataclasses.MISSING} == {"randaugment"}


def test_integer_values_from_the_command_line_become_floats():
    """`dvc exp run -S distill.tau=4` stores an int: the dataclass holds a float either way."""
    cfg = DistillConfig.from_sections({**PARAMS["distill"], "tau": 4, "alpha": 1}, {**PARAMS["movr"], "scale": 16})
    assert isinstance(cfg.tau, float) and isinstance(cfg.alpha, float) and isinstance(cfg.movr.scale, float)


def test_the_search_space_file_says_what_a_trial_sets(tmp_path):
    """conf/search/asym.yaml alone names the tuned keys, their ranges and the fixed values a trial trains with."""
    space = SearchSpace.load(ROOT / "conf" / "search" / "asym.yaml")
    raw = yaml.safe_load((ROOT / "conf" / "search" / "asym.yaml").read_text())
    assert space.keys() == [*(t["key"] for t in raw["tuned"].values()), *raw["fixed"]]
    drawn = {name: (t.low + t.high) / 2 for name, t in space.tuned.items()}
    cfg = trial_params(PARAMS, space.settings(drawn))
    for name, t in space.tuned.items():
        section, key = t.key.split(".")
        assert cfg[section][key] == drawn[name] and isinstance(cfg[section][key], float)
    for dotted, value in raw["fixed"].items():
        section, key = dotted.split(".")
        assert cfg[section][key] == value
    assert PARAMS == yaml.safe_load((ROOT / "params.yaml").read_text())  # the study's params are left as they were
    # another space: other keys, a fixed value of another section
    (tmp_path / "s.yaml").write_text("tuned:\n  lr: {key: student.lr, low: 0.01, high: 0.5, log: true}\n"
                                     "fixed:\n  distill.method: kd\n")
    other = SearchSpace.load(tmp_path / "s.yaml")
    assert trial_params(PARAMS, other.settings({"lr": 0.05}))["student"]["lr"] == 0.05
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
