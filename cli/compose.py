"""conf/ (Hydra) composes params.yaml, as DVC does on every `dvc exp run -S`, and the inverse: the overrides that
turn the default composition into a given params dict, so a printed `dvc exp run -S …` replays exactly it.

DVC recomposes the defaults of conf/config.yaml on every `-S`, so a command that carries only some keys replays
them on the default profile and benchmark: `overrides_for` emits the group choices (profile, benchmark) and
every leaf that differs from what those groups compose. Hydra is imported only when composing, so importing this
module needs no Hydra (a machine without it reads the compositions committed in tests/golden/compositions.yaml).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# config group -> the parameter that names its choice (conf/<group>/<choice>.yaml sets it)
GROUPS = {"benchmark": ("data", "benchmark"), "profile": ("base", "profile")}
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/]*")


def compose(conf_dir: str | Path, overrides: list[str] | tuple[str, ...] | None = ()) -> dict:
    """The params dict that `dvc exp run -S <overrides>` writes to params.yaml."""
    import hydra
    from omegaconf import OmegaConf

    with hydra.initialize_config_dir(str(Path(conf_dir).resolve()), version_base=None):
        return OmegaConf.to_container(hydra.compose("config", overrides=list(overrides or ())), resolve=True)


def leaves(d: dict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in d.items():
        if isinstance(v, dict) and v:
            yield from leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def hydra_value(v: Any) -> str:
    """A value in Hydra's override grammar (floats keep their dot: `4.0`, not the int `4`)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(hydra_value(x) for x in v) + "]"
    s = str(v)
    plain = _PLAIN.fullmatch(s) and s.lower() not in ("true", "false", "null", "nan", "inf")
    return s if plain else "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def overrides_for(params: dict, conf_dir: str | Path) -> list[str]:
    """Hydra overrides that compose `params` from conf/: differing group choices first, then differing leaves."""
    defaults = compose(conf_dir)
    groups = []
    for group, (section, key) in GROUPS.items():
        choice = params.get(section, {}).get(key)
        if choice is not None and choice != defaults[section][key]:
            groups.append(f"{group}={choice}")
    base = dict(leaves(compose(conf_dir, groups)))
    target = dict(leaves(params))
    changed = [f"{k}={hydra_value(v)}" for k, v in target.items() if k in base and base[k] != v]
    added = [f"+{k}={hydra_value(v)}" for k, v in target.items() if k not in base]
    removed = [f"~{k}" for k in base if k not in target]
    return groups + changed + added + removed
