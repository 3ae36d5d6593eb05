"""The study's declarations, conf/study/*.yaml: the grid (variants, suites, the ablation), the exploratory claims
and the confirmatory study. A file that cannot be read or lacks a key fails with one line naming it."""
from __future__ import annotations

from functools import cache
from pathlib import Path

from osr import OSRError
from osr.config import read_yaml

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
STUDY_DIR = CONF_DIR / "study"
GRID_FILE = STUDY_DIR / "grid.yaml"
CLAIMS_FILE = STUDY_DIR / "claims.yaml"
CONFIRMATORY_FILE = STUDY_DIR / "confirmatory.yaml"


def load(path: Path, keys: tuple[str, ...]) -> dict:
    """The YAML mapping in `path`, which must hold `keys`."""
    data = read_yaml(path)
    if not set(keys) <= data.keys():
        raise OSRError(f"{path}: a study file needs the keys {', '.join(keys)}")
    return data


def default_seed() -> int:
    """base.seed as conf/config.yaml declares it (no profile or benchmark sets it): a cell's seed by default."""
    return load(CONF_DIR / "config.yaml", ("base",))["base"]["seed"]


@cache
def grid_spec() -> dict:
    """conf/study/grid.yaml."""
    return load(GRID_FILE, ("variants", "ours", "teacher", "measurement", "schedule", "profile_base", "suites",
                            "ablation"))
