"""`python -m cli.exp [dvc exp run options]` (`make exp`, `make dry`): `dvc exp run`, after checking its `-S`
overrides as DVC will apply them, so a bad one fails in one line before DVC writes params.yaml.

DVC composes params.yaml from conf/ with Hydra on every `-S`. An override Hydra cannot apply (a syntax error, a new
key without `+`, a config option that does not exist) reaches the user as DVC's multi-line "unexpected error"; a
value Hydra accepts but the schema refuses is written to params.yaml, refused by the check_params stage and left
there. This command composes the same params first and checks them as check_params does (`osr.config.validate`,
`osr.sizes.check_sizes`); only then does it hand the whole command line to `dvc exp run`.
"""
from __future__ import annotations

import argparse
import os
import sys

from cli import guarded
from cli.compose import compose
from cli.tools import dvc_executable
from osr import OSRError
from osr.config import PARAMS_FILE, validate
from osr.sizes import check_sizes

CONF_DIR = "conf"  # DVC's default hydra.config_dir, as .dvc/config leaves it


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m cli.exp", description=__doc__.split("\n\n")[0], allow_abbrev=False,
        epilog="Every other option (-n NAME, --queue, --dry, --copy-paths, ...) is passed to `dvc exp run`.")
    ap.add_argument("-S", "--set-param", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a Hydra override of params.yaml, as for `dvc exp run -S` (repeatable)")
    return ap


def hydra_message(e: Exception) -> str:
    """Hydra's message on one line: its first paragraph, and the options it lists for a missing config option."""
    paragraphs = str(e).strip().split("\n\n")
    lines = [line.strip() for line in paragraphs[0].splitlines()]
    text = " ".join(line for line in lines if line and not line.startswith("See https://"))  # the grammar's page
    options = getattr(e, "options", None)
    return f"{text} (options: {', '.join(options)})" if options else text


def params_overrides(overrides: list[str]) -> list[str]:
    """The overrides DVC gives Hydra: those of params.yaml (`-S key=v` or `-S params.yaml:key=v`)."""
    out = []
    for s in overrides:
        path, sep, rest = s.partition(":")
        if not sep or "=" in path:  # no file prefix (a value may hold ':')
            out.append(s)
        elif path == PARAMS_FILE:
            out.append(rest)
    return out


def check_overrides(overrides: list[str]) -> dict:
    """The params `dvc exp run -S <overrides>` composes, checked as check_params checks params.yaml; a bad override
    raises a one-line OSRError naming it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    for s in overrides:
        try:
            OverridesParser.create().parse_overrides([s])
        except HydraException as e:
            raise OSRError(f"-S {s}: not a Hydra override ({hydra_message(e)})") from None
    try:
        params = compose(CONF_DIR, overrides)
    except (HydraException, OmegaConfBaseException) as e:
        raise OSRError(f"-S {' '.join(overrides)}: {hydra_message(e)}") from None
    source = "-S overrides"
    check_sizes(validate(params, source), source)
    return params


def main(argv: list[str] | None = None) -> None:
    args, rest = parser().parse_known_args(argv)

    def check() -> None:
        check_overrides(params_overrides(args.overrides))

    if status := guarded(check):
        sys.exit(status)
    dvc = dvc_executable()
    os.execv(dvc, [dvc, "exp", "run", *rest, *[a for s in args.overrides for a in ("-S", s)]])


if __name__ == "__main__":
    main()
