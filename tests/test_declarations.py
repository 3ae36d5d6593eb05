"""One declaration per setting: a params.yaml value and its default live in conf/ only.

The library's settings dataclasses are built from params.yaml sections and carry no defaults of their own (a
second default drifts: a dataclass default once said multistep where conf/train/sgd.yaml says cosine).
"""
import dataclasses
import importlib
import inspect
import pkgutil

import yaml

import osr
from conftest import ROOT
from osr.augment import BaseAug
from osr.losses import DistillConfig, MOvRConfig
from osr.train import OptimConfig

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
    optim = dataclasses.asdict(OptimConfig.from_section(PARAMS["student"]))
    assert optim == {**{k: PARAMS["student"][k] for k in optim}, "milestones": tuple(PARAMS["student"]["milestones"])}
    assert {f.name for f in dataclasses.fields(BaseAug) if f.default is dataclasses.MISSING} == {"randaugment"}


def test_integer_values_from_the_command_line_become_floats():
    """`dvc exp run -S distill.tau=4` stores an int: the dataclass holds a float either way."""
    cfg = DistillConfig.from_sections({**PARAMS["distill"], "tau": 4, "alpha": 1}, {**PARAMS["movr"], "scale": 16})
    assert isinstance(cfg.tau, float) and isinstance(cfg.alpha, float) and isinstance(cfg.movr.scale, float)
