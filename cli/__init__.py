"""What the command-line entry points share (DVC stages, flows, the suite report): the runner with one-line errors
(the `dvc` and `git` subprocesses: cli/tools.py). It sits beside the library, not in it, so `osr/` needs no
pipeline tools; every stage imports it, so it holds the runner only."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from osr import OSRError


def fail(message: object) -> int:
    """Print `error: <message>` (one line) on stderr; returns the exit status of a failed command, 1."""
    print(f"error: {message}", file=sys.stderr)
    return 1


def guarded(work: Callable[[], int | None]) -> int:
    """Run an entry point's work; a user-facing error (OSRError), or an OSError (no space, permission, read-only
    file system: named by its path), becomes one line on stderr and exit status 1."""
    try:
        return work() or 0
    except OSRError as e:
        return fail(e)
    except OSError as e:
        return fail(f"{e.filename or 'input/output'}: {e.strerror or type(e).__name__}")


def entry_point(main: Callable[[], int | None], parser: argparse.ArgumentParser, argv: list[str] | None = None) -> None:
    """Run a command-line entry point: the command line is parsed first, so `--help` answers (exit 0) before
    anything is read or written; a user-facing error becomes one line on stderr and exit status 1."""
    parser.parse_args(argv)  # argv None: the command line
    status = guarded(main)
    if status:
        sys.exit(status)
