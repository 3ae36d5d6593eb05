"""What the command-line entry points share (DVC stages, flows, the suite report): the runner with one-line errors
and the `dvc` subprocess. It sits beside the library, not in it, so `osr/` needs no pipeline tools."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

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


def dvc_executable() -> str:
    """The dvc of this interpreter's environment (the project's .venv), else the one on PATH."""
    local = Path(sys.executable).parent / "dvc"
    return str(local) if local.exists() else "dvc"


def _tool(name: str, executable: str, args: list[str], repo: Path | None, check: bool,
          env: dict[str, str] | None) -> str:
    """The standard output of `<name> <args>` run in `repo` (None: here) with environment `env` (None: this one);
    a missing executable, or a failure when `check`, raises a one-line OSRError with the tool's last line."""
    try:
        res = subprocess.run([executable, *args], cwd=repo, capture_output=True, text=True, env=env)
    except FileNotFoundError:
        raise OSRError(f"{name} not found; put the project's .venv/bin first on PATH") from None
    if check and res.returncode:
        last = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
        raise OSRError(f"`{name} {' '.join(args)}` failed{f' in {repo}' if repo else ''}: {last[0]}")
    return res.stdout


def dvc(args: list[str], repo: Path | None = None, check: bool = True, env: dict[str, str] | None = None) -> str:
    """`dvc <args>` with the environment's dvc (see `_tool`)."""
    return _tool("dvc", dvc_executable(), args, repo, check, env)


def git(args: list[str], repo: Path | None = None, check: bool = True) -> str:
    """`git <args>` (see `_tool`)."""
    return _tool("git", "git", args, repo, check, None)


def dvc_json(args: list[str], repo: Path | None = None):
    """`dvc <args>` (a `--json` command) parsed; no output is an empty dict."""
    out = dvc(args, repo)
    try:
        return json.loads(out or "{}")
    except json.JSONDecodeError as e:
        raise OSRError(f"`dvc {' '.join(args)}` did not print JSON ({e.msg})") from None
