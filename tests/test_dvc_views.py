"""What a DVC user sees of the tiny pipeline: each declared chart once, small metric tables, `--dry` that works."""
from __future__ import annotations

import json

import pytest
import yaml

from conftest import ROOT, clone, needs_mirror, ran_stages, sh, venv_env

pytestmark = [needs_mirror, pytest.mark.slow]
EXP_SHOW_WIDTH = 160


def expected_charts() -> set[str]:
    return {"reports/plots/roc.json", "reports/plots/score_hist.json", "reports/plots/history/teacher.json",
            "reports/plots/history/student.json", "reports/run/train_teacher.json", "reports/run/distill.json",
            "reports/calibration.json",
            *(f"reports/diagnostics/{stage}.json" for stage in ("split", "relabel", "evaluate")),
            *(f"reports/{png}" for png in ("augment_preview.png", "plots/roc.png", "plots/score_hist.png",
                                           "plots/training.png", "calibration.png"))}


def test_dry_experiment_lists_what_dvc_repro_dry_lists(tiny_repro, tmp_path):
    """Both list the stages whose own deps or params changed (DVC does not follow a dry run downstream)."""
    proj = clone(tiny_repro, tmp_path / "proj")
    dry_exp = sh(["dvc", "exp", "run", "--dry", "--copy-paths", "data", "-S", "distill.tau=4"], proj).stdout
    assert ran_stages(dry_exp) == {"check_params", "distill"}
    assert yaml.safe_load((proj / "params.yaml").read_text())["distill"]["tau"] != 4  # the workspace is untouched
    assert "up to date" in sh(["dvc", "status"], proj).stdout
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["distill"]["tau"] = 4
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran_stages(sh(["dvc", "repro", "--dry"], proj).stdout) == ran_stages(dry_exp)


def test_plots_metrics_and_experiment_table_stay_small(tiny_repro, tmp_path):
    proj = clone(tiny_repro, tmp_path / "proj")
    sh(["dvc", "exp", "run", "-n", "tau4", "-S", "distill.tau=4"], proj)
    plots = json.loads(sh(["dvc", "plots", "diff", "HEAD", "tau4", "--json"], proj).stdout)
    assert not plots.get("errors") and set(plots["data"]) == expected_charts()
    for path, renderers in plots["data"].items():  # one chart of both revisions, or an image per revision
        kinds = {r["type"] for r in renderers}
        revisions = sorted(rev for r in renderers for rev in r["revisions"])
        assert (kinds, revisions) == ({"image"} if path.endswith(".png") else {"vega"}, ["HEAD", "tau4"]), (
            path, [(r["type"], r["revisions"]) for r in renderers])
        assert path.endswith(".png") or len(renderers) == 1, path
    scores = yaml.safe_load((proj / "params.yaml").read_text())["evaluate"]["scores"]
    for chart, x in (("reports/plots/roc.json", "fpr"), ("reports/plots/score_hist.json", "score")):
        vega = json.loads(sh(["dvc", "plots", "diff", "HEAD", "tau4", "--show-vega", "--targets", chart], proj).stdout)
        encoding = (vega.get("spec") or vega)["encoding"]
        assert encoding["x"]["field"] == x and encoding["strokeDash"]["field"] == "rev", chart
        rows = vega["data"]["values"]
        assert {r["rev"] for r in rows} == {"HEAD", "tau4"}, chart
        assert {r["curve"] for r in rows} == {f"{role} {s}" for role in ("teacher", "student") for s in scores}

    diff = json.loads(sh(["dvc", "metrics", "diff", "HEAD", "tau4", "--json"], proj).stdout)
    rows = [name for changes in diff.values() for name in changes]
    assert "student.test.mls.auroc" in rows and len(rows) <= 25, rows

    keep, drop = (makefile_var(ROOT / "Makefile", name) for name in ("EXP_KEEP", "EXP_DROP"))
    table = sh(["dvc", "exp", "show", "--no-pager", "--only-changed", "--drop", drop, "--keep", keep], proj,
               env=venv_env(COLUMNS="1000")).stdout  # rich fits the table to COLUMNS: measure it unshrunk
    assert "distill.tau" in table and "student.test.mls.auroc" in table, table
    assert max(len(line) for line in table.splitlines()) <= EXP_SHOW_WIDTH, table


def makefile_var(path, name: str) -> str:
    """A `NAME := value` line of the Makefile, with make's `$$` unescaped."""
    for line in path.read_text().splitlines():
        if line.startswith(f"{name} :="):
            return line.split(":=", 1)[1].strip().replace("$$", "$")
    raise AssertionError(f"{path}: no {name}")
