"""The `dvc` and `git` subprocesses of the command-line tools (flows, the study, the experiment runner): the
environment's own executable, and a failure as one line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from osr import OSRError


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
