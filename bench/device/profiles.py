"""The params of the profiles the device check runs (paper, paper_b512, and tiny for its CPU rehearsal), composed
by Hydra on the machine that sends the check: the GPU host has no Hydra. `python -m bench.device.profiles` rewrites
bench/device/profiles.yaml; tests/test_device_check.py checks that it is Hydra's composition of conf/ today."""
from __future__ import annotations

from pathlib import Path

import yaml

from osr import OSRError
from osr.config import read_yaml
from osr.io import atomic_path

PROFILES = ("paper", "paper_b512", "tiny")
FILE = Path(__file__).with_name("profiles.yaml")
CONF = Path(__file__).resolve().parents[2] / "conf"


def composed() -> dict[str, dict]:
    """Each profile's params as `dvc exp run -S profile=<name>` composes them (needs Hydra)."""
    from cli.compose import compose
    return {name: compose(CONF, [f"profile={name}"]) for name in PROFILES}


def profile_params(name: str, path: Path = FILE) -> dict:
    """The composed params of profile `name` from `path`."""
    profiles = read_yaml(path, missing=" (python -m bench.device.profiles writes it)")
    if name not in profiles:
        raise OSRError(f"{path}: no profile {name} (python -m bench.device.profiles writes {', '.join(PROFILES)})")
    return profiles[name]


def main() -> None:
    with atomic_path(FILE) as tmp:
        tmp.write_text("# Written by `python -m bench.device.profiles` (Hydra's composition of conf/): do not edit.\n"
                       + yaml.safe_dump(composed(), sort_keys=False))
    print(f"profiles: {', '.join(PROFILES)} -> {FILE}")


if __name__ == "__main__":
    main()
