import copy
from dataclasses import asdict

import pytest
import yaml

from cli.compose import overrides_for
from conftest import ROOT, compose
from osr import OSRError
from osr.config import FIELDS, get, load_params, validate


def test_committed_params_is_the_hydra_composition_of_the_defaults():
    assert compose(ROOT / "conf") == yaml.safe_load((ROOT / "params.yaml").read_text())


GOLDEN = yaml.safe_load((ROOT / "tests" / "golden" / "compositions.yaml").read_text())


@pytest.mark.parametrize("profile", GOLDEN["profiles"])
@pytest.mark.parametrize("bench", GOLDEN["benchmarks"])
def test_every_profile_and_benchmark_composes_its_golden_valid_params(profile, bench):
    """Same keys, same values as the committed golden: a conf/ edit that moves or changes a value fails here."""
    p = asdict(validate(compose(ROOT / "conf", [f"profile={profile}", f"benchmark={bench}"])))
    assert p == {**GOLDEN["profiles"][profile], "data": GOLDEN["benchmarks"][bench]}


def test_the_golden_covers_every_profile_and_benchmark():
    assert {f.stem for f in (ROOT / "conf" / "profile").glob("*.yaml")} == set(GOLDEN["profiles"])
    assert {f.stem for f in (ROOT / "conf" / "benchmark").glob("*.yaml")} == set(GOLDEN["benchmarks"])


@pytest.mark.parametrize("profile,key,value", [
    ("quick", "distill.tau", 4.0), ("quick", "student.epochs", 3), ("tiny", "teacher.lr", 0.2),
    ("paper", "student.schedule", "cosine"), ("claims", "teacher.batch_size", 64)])
def test_an_override_changes_its_key_only(profile, key, value):
    """`dvc exp run -S key=value` keeps its meaning: the mounted train/ group leaves the keys teacher.lr, ..."""
    expected = copy.deepcopy({**GOLDEN["profiles"][profile], "data": GOLDEN["benchmarks"]["cifar10"]})
    section, name = key.split(".")
    expected[section][name] = value
    assert compose(ROOT / "conf", [f"profile={profile}", f"{key}={value}"]) == expected


@pytest.mark.parametrize("key,value,message", [
    ("distill.tau", 0, "distill.tau must be > 0"),
    ("teacher.checkpoint_every", 0, "teacher.checkpoint_every must be auto or >= 1"),
    ("student.compile", "fast", "student.compile must be one of"),
    ("teacher.amp", "bf16", "teacher.amp must be auto or true or false"),
    ("distill.tau", -1.5, "distill.tau must be > 0"),
    ("relabel.threshold", 1.5, "relabel.threshold must be <= 1"),
    ("relabel.threshold", -0.1, "relabel.threshold must be >= 0"),
    ("data.benchmark", "svhn2", "data.benchmark must be one of"),
    ("split.index", 10, "split.index must be <= 9 for cifar10"),
    ("teacher.epochs", -1, "teacher.epochs must be >= 1"),
    ("distill.method", "magic", "distill.method must be one of"),
    ("augment.method", "blend", "augment.method must be one of"),
    ("student.width", 2.5, "student.width must be an integer"),
    ("teacher.width", 4, "teacher.width must be >= 8"),
    ("teacher.loss", "asym", "teacher.loss must be one of"),
    ("movr.margin_mode", "both", "movr.margin_mode must be one of"),
    ("movr.scale", 0, "movr.scale must be > 0"),
    ("augment.layers", ["layer9"], "augment.layers must be a non-empty list drawn from"),
    ("evaluate.scores", ["mls", "odin"], "evaluate.scores must be a non-empty list drawn from"),
    ("evaluate.bootstrap", -1, "evaluate.bootstrap must be >= 0"),
    ("relabel.rule", "some", "relabel.rule must be one of"),
    ("distill.hard_reduction", "sum", "distill.hard_reduction must be one of"),
    ("distill.easy", -1, "distill.easy must be >= 0"),
    ("distill.mixed_ce", "yes", "distill.mixed_ce must be a number"),
    ("distill.divergence", "l2", "distill.divergence must be one of"),
    ("relabel.threshold", float("nan"), "relabel.threshold must be a finite number"),
    ("relabel.smoothing", float("inf"), "relabel.smoothing must be a finite number"),
    ("student.lr", float("nan"), "student.lr must be a finite number"),
    ("distill.tau", 1.0e9, "distill.tau must be <= 100"),
    ("distill.tau", float("inf"), "distill.tau must be a finite number"),
    ("teacher.lr", 1.0e3, "teacher.lr must be <= 1"),
    ("teacher.lr", 10.0, "teacher.lr must be <= 1"),  # a tiny teacher's logits overflow its fp16 cache
    ("distill.alpha", 1.0e6, "distill.alpha must be <= 100"),
    ("movr.scale", 1.0e9, "movr.scale must be <= 1000"),
    ("evaluate.energy_temperature", float("nan"), "evaluate.energy_temperature must be a finite number"),
    ("data.std", [0.2, float("nan"), 0.2], "data.std item 1 must be a finite number"),
    ("data.std", [0.2, 0.0, 0.2], "data.std item 1 must be > 0"),
    ("data.mean", [0.5, 0.5], "data.mean must be a list of 1 or 3 numbers"),
    ("teacher.milestones", [0.3, float("inf")], "teacher.milestones item 1 must be a finite number"),
    ("augment.preview", 0, "augment.preview must be >= 1"),
    ("base.seed", 2**40, "base.seed must be <="),
    ("base.device", ["cpu"], "base.device must be one of"),  # a list where a name goes: one line, no TypeError
    ("augment.layers", [["layer3"]], "augment.layers must be a non-empty list drawn from"),
])
def test_invalid_values_name_the_parameter(key, value, message, tmp_path):
    p = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    section, name = key.split(".")
    p[section][name] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(p))
    with pytest.raises(OSRError, match=message.replace(".", r"\.")) as e:
        load_params(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_every_float_parameter_refuses_nan_and_inf():
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    floats = [k for k in FIELDS if isinstance(get(p, k), float)]
    assert "relabel.threshold" in floats and "distill.tau" in floats
    for key in floats:
        for bad in (float("nan"), float("inf"), float("-inf")):
            q = copy.deepcopy(p)
            section, name = key.split(".")
            q[section][name] = bad
            with pytest.raises(OSRError, match=f"{key} must be a finite number"):
                validate(q)


def test_a_value_where_a_section_belongs_names_the_section():
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["distill"] = 3  # what `dvc exp run -S distill=3` composes
    with pytest.raises(OSRError, match=r"^params\.yaml: distill must be a section of parameters, such as "
                                       r"distill\.method \(got 3\)$"):
        validate(p)


def test_missing_parameter_and_bad_yaml(tmp_path):
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    del p["distill"]["tau"]
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(p))
    with pytest.raises(OSRError, match="missing parameter distill.tau"):
        load_params(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("base: [unclosed\n")
    with pytest.raises(OSRError, match="not valid YAML"):
        load_params(tmp_path / "b.yaml")


@pytest.mark.parametrize("overrides", [
    [],
    ["profile=tiny"],
    ["benchmark=mnist", "profile=claims", "split.index=3", "student.epochs=5", "distill.tau=4.0"],
    ["profile=tiny", "teacher.milestones=[0.5,0.75]", "augment.layers=[layer2,layer3]", "teacher.amp=false",
     "data.mean=[0.5,0.5,0.5]", "distill.divergence=kl"],
])
def test_overrides_for_replays_the_composition(overrides):
    """What `dvc exp run -S <overrides_for(p)>` composes is p itself, whatever profile or benchmark p has."""
    conf = ROOT / "conf"
    p = compose(conf, overrides)
    replay = overrides_for(p, conf)
    assert compose(conf, replay) == p
    assert all(o.split("=")[0] in {"benchmark", "profile"} for o in replay[:sum(
        o.startswith(("benchmark=", "profile=")) for o in replay)])
    assert not overrides or replay, "a non-default config needs overrides"


def test_the_search_space_sets_parameters_within_their_bounds():
    """conf/search/asym.yaml (the tune-asym flow's) names params.yaml keys; its ends and fixed values validate."""
    space = yaml.safe_load((ROOT / "conf" / "search" / "asym.yaml").read_text())
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    settings = [(s["key"], float(s[end])) for s in space["tuned"].values() for end in ("low", "high")]
    for key, value in settings + list(space["fixed"].items()):
        q = copy.deepcopy(p)
        section, name = key.split(".")
        assert name in q[section], key
        q[section][name] = value
        validate(q)
