"""What a benchmark-suite cell is: a recipe, its ablation variants and seed, the overrides and the name.

A recipe is ``<distill.method>-<augment.method>[@<teacher.loss>][+<variant>...]``: ``ce-none`` (plain student, no
mixing), ``asym-cutmix`` (asymmetric distillation with CutMix), ``movr-none@movr`` (m-OvR teacher and student),
``asym-cutmix+no_jmi`` (AD without L_JMI). A variant is one entry of ``VARIANTS``: one line, the parameter
overrides it stands for. A cell is (profile, benchmark, split, recipe, seed); its DVC experiment is named
``<profile>-<benchmark>-s<split>-<method>-<mixer>[-t<teacher.loss>][+<variant>...][-r<seed>]``, the seed only when
it is not the default, so names stay stable and a finished cell is recognised by its name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from osr import OSRError

DEFAULT_SEED = 230

# variant -> overrides: the ablations of the claims study (issue 12; methods.md §4 AD.4). [ours] = not in the
# reference code.
VARIANTS: dict[str, list[str]] = {
    "no_le": ["distill.easy=0"],                     # no L_E: easy mixed samples get only L_JMI
    "no_jmi": ["distill.jmi=0"],                     # no L_JMI
    "all_easy": ["relabel.rule=none"],               # no selective relabel: every mixed sample in E
    "all_hard": ["relabel.rule=all"],                # no selective relabel: every mixed sample in H
    "argmax": ["relabel.rule=argmax"],               # the reference code's hard rule
    "smooth75": ["relabel.smoothing=0.75"],          # the paper's "smoothed two-hot", r = 0.75
    "lh_batch": ["distill.hard_reduction=batch"],    # [ours] L_H summed over the hard samples / batch size
    "mixed_ce": ["distill.mixed_ce=1"],              # [ours] alpha * CE on mixed steps too (ce-cutmix's loss)
    "kl": ["distill.divergence=kl"],                 # [ours] KL (Hinton KD) instead of DIST: keeps the logit scale
    "raw_too": ["distill.raw_on_mixed=1"],           # [ours] mixed steps also train on the raw view (both views)
    # DIST = tau^2 (beta L_inter + gamma L_intra): tau = 4 both softens the distributions and weighs DIST 16x
    "tau4": ["distill.tau=4"],
    "w16": ["distill.beta=16", "distill.gamma=16"],  # [ours] tau = 1, DIST weighted as at tau = 4: only the weight
    "tau4_w1": ["distill.tau=4", "distill.beta=0.0625", "distill.gamma=0.0625"],  # [ours] tau = 4, tau^2 cancelled
    "t_w32": ["teacher.width=32"],                   # a stronger teacher: twice as wide
    "t_e80": ["teacher.epochs=80"],                  # a stronger teacher: twice as long
    "s_e40": ["student.epochs=40"],                  # the student's schedule length
    "s_e160": ["student.epochs=160"],
    # teacher and student in fp32, not bf16 autocast: the precision check (train.amp; native_bf16)
    "fp32": ["teacher.amp=false", "student.amp=false"],
}

# variants that are not in the reference code or the paper (tau4: the reference hard-codes tau = 1, methods.md)
OURS = {"lh_batch", "mixed_ce", "kl", "raw_too", "tau4", "w16", "tau4_w1"}
TEACHER_VARIANTS = ("+t_w32", "+t_e80", "+fp32")  # variants with a teacher of their own
MEASUREMENT = {"fp32"}  # variants that change how a recipe is computed, not the method: never a best AD variant
# the student's schedule: a regime, not a method. Against the 80-epoch reference it would win on training time, so
# it is compared with students trained as long (claims `ours-s-e160-*`) and is never a best AD variant either
SCHEDULE = {"s_e40", "s_e160"}

_RECIPE = re.compile(r"(?P<method>[a-z]+)-(?P<mixer>[a-z]+)(?:@(?P<tloss>[a-z]+))?(?P<variants>(?:\+[a-z0-9_]+)*)")
_NAME = re.compile(r"(?P<profile>[a-z]+)-(?P<benchmark>[a-z0-9_]+)-s(?P<split>\d+)-(?P<method>[a-z]+)-(?P<mixer>[a-z]+)"
                   r"(?:-t(?P<tloss>[a-z]+))?(?P<variants>(?:\+[a-z0-9_]+)*)(?:-r(?P<seed>\d+))?")
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
                *recipe_overrides(self.recipe)]


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
