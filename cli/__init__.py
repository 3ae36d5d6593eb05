"""What the command-line entry points share (DVC stages, flows, the suite report): one-line errors and the `dvc`
subprocess. It sits beside the library, not in it, so `osr/` needs no pipeline tools (stack.md §6)."""
from __future__ import annotations

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
    """Run an entry point's work; a user-facing error (OSRError) becomes one line on stderr and exit status 1."""
    try:
        return work() or 0
    except OSRError as e:
        return fail(e)


def dvc_executable() -> str:
    """The dvc of this interpreter's environment (the project's .venv), else the one on PATH."""
    local = Path(sys.executable).parent / "dvc"
    return str(local) if local.exists() else "dvc"


def dvc(args: list[str], repo: Path | None = None, check: bool = True, env: dict[str, str] | None = None) -> str:
    """The standard output of `dvc <args>` run in `repo` (None: here) with environment `env` (None: this one); a
    missing dvc, or a failure when `check`, raises a one-line OSRError with dvc's last line."""
    try:
        res = subprocess.run([dvc_executable(), *args], cwd=repo, capture_output=True, text=True, env=env)
    except FileNotFoundError:
        raise OSRError("dvc not found; put the project's .venv/bin first on PATH") from None
    if check and res.returncode:
        last = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
        raise OSRError(f"`dvc {' '.join(args)}` failed{f' in {repo}' if repo else ''}: {last[0]}")
    return res.stdout


def dvc_json(args: list[str], repo: Path | None = None):
    """`dvc <args>` (a `--json` command) parsed; no output is an empty dict."""
    out = dvc(args, repo)
    try:
        return json.loads(out or "{}")
    except json.JSONDecodeError as e:
        raise OSRError(f"`dvc {' '.join(args)}` did not print JSON ({e.msg})") from None
