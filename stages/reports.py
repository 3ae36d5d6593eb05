"""A stage's report in two files: the quality figures a reviewer compares (a DVC metric) and the rest (its
diagnostics, a DVC plot). Used by the stages that report beyond their model (split, relabel, evaluate)."""
from __future__ import annotations

import re

from osr.io import diagnostic_rows, diagnostics_tree, write_json
from osr.paths import REPORTS


def write_diagnostics(stage: str, rows: list[dict]) -> None:
    """`reports/diagnostics/<stage>.json`: rows of what a stage reports beside its quality metrics. It is a DVC plot
    (a bar chart per revision in `dvc plots diff`), committed like the metrics but out of `dvc metrics diff` and
    `dvc exp show`, which list only what a reviewer compares."""
    write_json(REPORTS / "diagnostics" / f"{stage}.json", rows)


def write_report(stage: str, metrics_file: str, report: dict, quality: str) -> None:
    """Write `report` in two: the leaves whose dotted name fully matches the regex `quality` to
    `reports/<metrics_file>` (a DVC metric), the others to the stage's diagnostics file."""
    rows, keep = diagnostic_rows(report), re.compile(quality)
    write_json(REPORTS / metrics_file, diagnostics_tree([r for r in rows if keep.fullmatch(r["name"])]))
    write_diagnostics(stage, [r for r in rows if not keep.fullmatch(r["name"])])
