"""The checkout is a DVC baseline: dvc.lock matches the code, params.yaml and the committed reports.

A fresh clone has no data/, so outputs and the deps that are other stages' data outputs are missing, which is
fine; but a git-tracked dep (code, params.yaml) or a committed report (reports/, cache: false) that differs from
dvc.lock means the lock is stale, `dvc status` lists every stage as changed and `dvc plots diff main <exp>` /
`dvc metrics diff main <exp>` compare against numbers the code no longer produces. After a change that touches
a stage, `make run` regenerates dvc.lock and reports/, and both are committed.
"""
from __future__ import annotations

import json

from conftest import ROOT, sh


def tracked_files() -> set[str]:
    return set(sh(["git", "ls-files"], ROOT).stdout.splitlines())


def stale_entries(status: dict, tracked: set[str]) -> dict[str, list[str]]:
    """Per stage, what in `dvc status --json` says the lock is stale: a changed param, a changed git-tracked dep,
    a changed command, or a committed output that differs from the lock. Missing data is not staleness."""
    stale: dict[str, list[str]] = {}
    for stage, changes in status.items():
        found = []
        for change in changes:
            if not isinstance(change, dict):  # "changed checksum", "always changed" and similar
                found.append(str(change))
                continue
            for path, state in change.get("changed deps", {}).items():
                if isinstance(state, dict):  # a params file: {section: "modified"}
                    found += [f"param {path}:{key} {how}" for key, how in state.items()]
                elif path in tracked:
                    found.append(f"dep {path} {state}")
            found += [f"out {path} {state}" for path, state in change.get("changed outs", {}).items()
                      if path in tracked and state == "modified"]
            if "changed command" in change:
                found.append("command")
        if found:
            stale[stage] = found
    return stale


def test_stale_entries_ignore_missing_data_only():
    status = {"split": [{"changed deps": {"osr/data.py": "modified", "data/raw": "deleted",
                                          "params.yaml": {"split.index": "modified"}}},
                        {"changed outs": {"data/split": "not in cache", "reports/diagnostics/split.json": "deleted"}}],
              "download": [{"changed deps": {"data/params.ok": "deleted"}}, {"changed outs": {"data/raw": "deleted"}}]}
    tracked = {"osr/data.py", "reports/diagnostics/split.json"}
    assert stale_entries(status, tracked) == {"split": ["dep osr/data.py modified",
                                                        "param params.yaml:split.index modified"]}


def test_dvc_lock_matches_the_checkout():
    status = json.loads(sh(["dvc", "status", "--json"], ROOT).stdout or "{}")
    stale = stale_entries(status, tracked_files())
    assert not stale, ("dvc.lock is stale (run `make run` and commit dvc.lock and reports/): "
                       + "; ".join(f"{stage}: {', '.join(found)}" for stage, found in stale.items()))
