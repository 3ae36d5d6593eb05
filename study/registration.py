"""Pre-registration from git: when a claim was stated, and whether the experiments behind a row came after it.

A claim is registered by the commit that first added its line, exactly as the line reads now (`git log --reverse
-S`); an experiment was launched from its DVC baseline commit (recorded in its archive). A row is launched after
registration when every experiment behind it has a baseline that descends from (or is) the registration commit
(`git merge-base --is-ancestor`). A line never committed, or a baseline this clone does not hold, is never after
registration: the report cannot verify it.
"""
from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)


@cache
def registration_commit(repo: Path, path: str, line: str) -> str | None:
    """The commit that first added `line` (surrounding whitespace ignored) to `path` (relative to `repo`), or None."""
    res = _git(repo, "log", "--reverse", "--format=%H", "-S", line.strip(), "--", path)
    commits = res.stdout.split() if res.returncode == 0 else []
    return commits[0] if commits else None


@cache
def descends(repo: Path, ancestor: str, commit: str) -> bool:
    """Whether `commit` is `ancestor` or a descendant of it."""
    return _git(repo, "merge-base", "--is-ancestor", ancestor, commit).returncode == 0


def after_registration(repo: Path, registered: str | None, baselines: list[str | None]) -> bool:
    """Whether every experiment (its baseline commit) was launched after the claim's registration commit."""
    return bool(registered and baselines) and all(b and descends(repo, registered, b) for b in baselines)


def claim_lines(path: Path) -> dict[str, str]:
    """Claim id -> its line in a study file (one claim per line, `- {id: <id>, ...}`)."""
    out = {}
    for line in Path(path).read_text().splitlines():
        head = line.strip()
        if head.startswith("- {id:"):
            out[head[len("- {id:"):].split(",")[0].strip()] = line
    return out
