"""Refuse to tune on stale DVC outputs: the stages a trial reads must be up to date (`dvc status`).

A trial reads the outputs of `augment` (the plan) and `relabel` (the cached teacher logits) and, through them,
`download`, `split` and `train_teacher`. If `params.yaml` or the code changed since they ran, trials would
tune the old plan, so the flow stops with one line naming the stage. The only changes allowed are those to the
parameters the trial sets itself (`tuned`): DVC reports a changed params section as a whole, so those sections
are compared with what `dvc.lock` recorded, leaving the tuned keys out.
"""
from __future__ import annotations

from pathlib import Path

from cli.compose import leaves
from cli.tools import dvc_json
from osr import OSRError
from osr.config import ParamsLoader, read_yaml

READ_BY_TRIALS = ("augment", "relabel")  # with --with-deps: download, split, train_teacher (check_params skipped)
SKIPPED = {"check_params"}  # validation only; its output is constant


def _status(project: Path) -> dict:
    return dvc_json(["status", "--json", "--with-deps", *READ_BY_TRIALS], project)


def _untuned(value, prefix: str, tuned: set[str]) -> dict:
    if not isinstance(value, dict):
        return {} if prefix in tuned else {prefix: value}
    return {k: v for k, v in leaves(value, f"{prefix}.") if k not in tuned}


def _real_changes(stage: str, change: dict, lock: dict, params: dict, tuned: set[str]) -> list[str]:
    """The changes of one `dvc status` entry that are not only edits of tuned parameters."""
    out = []
    for kind, items in change.items():
        items = items if isinstance(items, dict) else {str(items): ""}
        for path, what in items.items():
            if kind == "changed deps" and path == "params.yaml" and isinstance(what, dict):
                recorded = lock.get("stages", {}).get(stage, {}).get("params", {}).get("params.yaml", {})
                for key in what:
                    section, *rest = key.split(".")
                    now = params.get(section, {})
                    for part in rest:
                        now = now.get(part) if isinstance(now, dict) else None
                    if _untuned(recorded.get(key), key, tuned) != _untuned(now, key, tuned):
                        out.append(f"params.yaml: {key} {what[key]}")
            else:
                out.append(f"{path} {what}".strip() if isinstance(what, str) else path)
    return out


def require_current(project: Path, tuned: set[str]) -> None:
    """Raise a one-line OSRError naming the first stale stage a trial reads."""
    status = _status(project)
    if not status:
        return
    lock = read_yaml(project / "dvc.lock") if (project / "dvc.lock").exists() else {}
    params = read_yaml(project / "params.yaml", ParamsLoader)
    for stage, changes in status.items():
        if stage in SKIPPED:
            continue
        real = [c for change in changes for c in (_real_changes(stage, change, lock, params, tuned)
                                                  if isinstance(change, dict) else [str(change)])]
        if real:
            raise OSRError(f"tuning: stage {stage} is not up to date ({'; '.join(real)}); "
                           f"run `dvc repro {stage}` before tuning")
