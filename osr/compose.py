"""conf/ (Hydra) composes params.yaml, as DVC does on every `dvc exp run -S`, and the inverse: the overrides that
turn the default composition into a given params dict, so a printed `dvc exp run -S …` replays exactly it.

DVC recomposes the defaults of conf/config.yaml on every `-S`, so a command that carries only some keys replays
them on the default profile and benchmark: `overrides_for` emits the group choices (profile, benchmark) and
every leaf that differs from what those groups compose. Hydra is imported only when composing, so the library
stays importable where Hydra is not installed (the GPU host); `compose_conf` composes with PyYAML alone, for
machines without Hydra (the GPU host), and is tested equal to Hydra's composition.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from osr import OSRError

# config group -> the parameter that names its choice (conf/<group>/<choice>.yaml sets it)
GROUPS = {"benchmark": ("data", "benchmark"), "profile": ("base", "profile")}
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/]*")


def compose(conf_dir: str | Path, overrides: list[str] | tuple[str, ...] | None = ()) -> dict:
    """The params dict that `dvc exp run -S <overrides>` writes to params.yaml."""
    import hydra
    from omegaconf import OmegaConf

    with hydra.initialize_config_dir(str(Path(conf_dir).resolve()), version_base=None):
        return OmegaConf.to_container(hydra.compose("config", overrides=list(overrides or ())), resolve=True)


def _merge(base: dict, over: dict) -> dict:
    """Hydra's merge: mappings recursively, everything else (lists included) replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def compose_conf(conf_dir: str | Path = "conf", **choices: str) -> dict:
    """params.yaml as Hydra composes conf/ (config.yaml, then its defaults' groups in order), with PyYAML only:
    for machines without Hydra (the GPU host). `choices` pick group options, e.g. profile="paper".
    Covers what conf/ uses: a `_self_`-first defaults list of `group: option` entries, each either
    `@package _global_` or mounted at a package (`train@teacher: sgd` merges train/sgd.yaml into `teacher`), and
    options that extend another option of their group."""
    conf_dir = Path(conf_dir)
    cfg = yaml.safe_load((conf_dir / "config.yaml").read_text())
    defaults = cfg.pop("defaults", [])
    unknown = set(choices) - {k for d in defaults if isinstance(d, dict) for k in d}
    if unknown:
        raise OSRError(f"{conf_dir}/config.yaml: no config group {sorted(unknown)}")
    for entry in defaults:
        if entry == "_self_":
            continue
        (name, option), = entry.items()
        group, _, package = name.partition("@")
        node = _group_option(conf_dir, group, choices.get(name, option))
        cfg = _merge(cfg, {package: node} if package else node)
    return cfg


def _group_option(conf_dir: Path, group: str, option: str) -> dict:
    """conf/<group>/<option>.yaml, extended as Hydra does by the options its own defaults list names (in the
    same group: `paper_b512` lists `paper`), merged in order, the file itself at `_self_` (last if unlisted)."""
    path = conf_dir / group / f"{option}.yaml"
    if not path.is_file():
        raise OSRError(f"{path}: no such {group} option")
    node = yaml.safe_load(path.read_text()) or {}
    defaults = node.pop("defaults", [])
    out: dict = {}
    for entry in defaults if "_self_" in defaults else [*defaults, "_self_"]:
        out = _merge(out, node if entry == "_self_" else _group_option(conf_dir, group, entry))
    return out


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
