"""What a benchmark-suite cell is: a recipe, its ablation variants and seed, the overrides and the name.

A recipe is ``<distill.method>-<augment.method>[@<teacher.loss>][+<variant>...]``: ``ce-none`` (plain student, no
mixing), ``asym-cutmix`` (asymmetric distillation with CutMix), ``movr-none@movr`` (m-OvR teacher and student),
``asym-cutmix+no_jmi`` (AD without L_JMI). A variant is one line of ``variants`` in conf/study/grid.yaml: the
parameter overrides it stands for. A cell is (profile, benchmark, split, recipe, seed); its DVC experiment is named
``<profile>-<benchmark>-s<split>-<method>-<mixer>[-t<teacher.loss>][+<variant>...][-r<seed>]``, the seed only when
it is not the default, so names stay stable and a finished cell is recognised by its name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from osr import OSRError
from study.spec import default_seed, grid_spec

DEFAULT_SEED = default_seed()  # conf/config.yaml's base.seed

_SPEC = grid_spec()
VARIANTS: dict[str, list[str]] = _SPEC["variants"]  # variant -> its overrides
OURS = set(_SPEC["ours"])  # variants that are not in the reference code or the paper
TEACHER_VARIANTS = tuple(f"+{v}" for v in _SPEC["teacher"])  # variants with a teacher of their own
MEASUREMENT = set(_SPEC["measurement"])  # how a recipe is computed, not the method: never a best AD variant
SCHEDULE = set(_SPEC["schedule"])  # the student's schedule: a regime, compared with controls trained as long
SUITES: dict[str, list[str]] = _SPEC["suites"]  # profile -> the recipes its suite runs by default
PROFILE_BASE: dict[str, list[str]] = _SPEC["profile_base"]  # profile -> overrides before every recipe's
# variants whose cells run in another regime (schedule, precision, teacher) than the seed-noise recipes
REGIME = MEASUREMENT | SCHEDULE | set(_SPEC["teacher"])

_RECIPE = re.compile(r"(?P<method>[a-z]+)-(?P<mixer>[a-z]+)(?:@(?P<tloss>[a-z_]+))?(?P<variants>(?:\+[a-z0-9_]+)*)")
_NAME = re.compile(r"(?P<profile>[a-z]+)-(?P<benchmark>[a-z0-9_]+)-s(?P<split>\d+)-(?P<method>[a-z]+)-(?P<mixer>[a-z]+)"
                   r"(?:-t(?P<tloss>[a-z_]+))?(?P<variants>(?:\+[a-z0-9_]+)*)(?:-r(?P<seed>\d+))?")
NAME_PATTERN = "^" + _NAME.pattern + "$"


def _recipe_text(method: str, mixer: str, tloss: str | None, variants: str) -> str:
    return f"{method}-{mixer}" + (f"@{tloss}" if tloss else "") + variants


def recipe_overrides(recipe: str) -> list[str]:
    """`asym-cutmix+no_jmi` -> distill.method=asym, augment.method=cutmix, distill.jmi=0."""
    m = _RECIPE.fullmatch(recipe)
    if not m:
        raise OSRError(f"recipe {recipe!r}: expected <distill.method>-<augment.method>[@<teacher.loss>][+<variant>]")
    out = [f"distill.method={m['method']}", f"augment.method={m['mixer']}"]
    out += [f"teacher.loss={m['tloss']}"] if m["tloss"] else []
    for variant in filter(None, m["variants"].split("+")):
        if variant not in VARIANTS:
            raise OSRError(f"recipe {recipe!r}: unknown variant {variant!r} (choose from {sorted(VARIANTS)})")
        out += VARIANTS[variant]
    return out


def recipe_variants(recipe: str) -> set[str]:
    """`asym-cutmix+tau4+all_hard` -> {"tau4", "all_hard"}."""
    return set(recipe.split("+")[1:])


@dataclass(frozen=True)
class Cell:
    profile: str
    benchmark: str
    split: int
    recipe: str
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        recipe_overrides(self.recipe)  # a bad recipe or unknown variant fails here, with its one-line error

    @property
    def name(self) -> str:
        m = _RECIPE.fullmatch(self.recipe)
        tail = f"-t{m['tloss']}" if m["tloss"] else ""
        seed = f"-r{self.seed}" if self.seed != DEFAULT_SEED else ""
        return f"{self.profile}-{self.benchmark}-s{self.split}-{m['method']}-{m['mixer']}{tail}{m['variants']}{seed}"

    @property
    def overrides(self) -> list[str]:
        seed = [f"base.seed={self.seed}"] if self.seed != DEFAULT_SEED else []
        return [f"profile={self.profile}", f"benchmark={self.benchmark}", f"split.index={self.split}", *seed,
                *PROFILE_BASE.get(self.profile, []), *recipe_overrides(self.recipe)]


def parse_name(name: str) -> Cell | None:
    """The cell an experiment name stands for, or None for an ad-hoc experiment."""
    m = _NAME.fullmatch(name)
    if not m:
        return None
    try:
        return Cell(m["profile"], m["benchmark"], int(m["split"]), _recipe_text(m["method"], m["mixer"], m["tloss"],
                    m["variants"]), int(m["seed"]) if m["seed"] else DEFAULT_SEED)
    except OSRError:  # a variant this version does not know: an ad-hoc experiment
        return None


def grid(profile: str, benchmarks: list[str], splits: list[int], recipes: list[str],
         seeds: list[int] | None = None) -> list[Cell]:
    """Recipe-major: neighbouring cells differ in benchmark, split or seed, so queue workers running side by
    side train different teachers instead of the same one twice (later recipes reuse them from the run cache)."""
    return [Cell(profile, b, s, r, seed) for r in recipes for b in benchmarks for s in splits
            for seed in (seeds or [DEFAULT_SEED])]
