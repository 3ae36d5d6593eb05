"""Reports split in two: DVC metrics hold what a reviewer compares, reports/diagnostics/<stage>.json the rest."""
from __future__ import annotations

import json
import re

import pytest

import stages.reports
from osr.io import diagnostic_rows, diagnostics_tree, merged
from stages.evaluate import QUALITY
from stages.relabel import QUALITY as RELABEL_QUALITY
from stages.reports import write_report

SCORES = ("msp", "mls", "energy", "ovr", "knn")


def role_report(base: float) -> dict:
    """What osr.evaluate.evaluate_model reports for one model, with five scores and the Jacobian diagnostics."""
    per_score = {s: {"auroc": base + i / 100, "auroc_ci95": [base, base + 0.1], "oscr": base / 2, "fpr95": 0.9,
                     "aupr_in": 0.7, "aupr_out": 0.5, "macro_f1": 0.6} for i, s in enumerate(SCORES)}
    return {"model": "resnet18-w16", "val": {"acc": 0.8, "class_separation": 0.4},
            "test": {"acc": base, "n_known": 120, "n_unknown": 80, "mean_max_logit_known": 2.5,
                     "mean_max_logit_unknown": 2.0, **per_score},
            "jacobian": {"known_mean": 6.9, "unknown_mean": 7.3, "jnd": 0.34, "auroc_neg_norm": 0.55,
                         "per_class_known": {"0": 6.7, "4": 6.6}}}


REPORT = {"info": {"benchmark": "cifar10", "split": 0, "profile": "tiny", "method": "asym", "teacher_loss": "ce",
                   "mixing": "cutmix", "balanced_test": False},
          "teacher": role_report(0.88), "student": role_report(0.79)}


def numeric_leaves(tree: dict) -> list[str]:
    return [r["name"] for r in diagnostic_rows(tree)
            if isinstance(r["value"], int | float) and not isinstance(r["value"], bool)]


def test_rows_give_the_report_back_exactly():
    rows = diagnostic_rows(REPORT)
    assert {"name": "student.jacobian.per_class_known.4", "value": 6.6} in rows
    assert {"name": "teacher.test.mls.auroc_ci95", "value": [0.88, 0.98]} in rows
    assert diagnostics_tree(rows) == REPORT
    half = len(rows) // 2
    assert merged(diagnostics_tree(rows[:half]), diagnostics_tree(rows[half:])) == REPORT


def test_a_list_of_dicts_comes_back_keyed_by_position():
    rows = diagnostic_rows({"results": [{"success": True}, {"success": False}]})
    assert rows == [{"name": "results.0.success", "value": True}, {"name": "results.1.success", "value": False}]
    assert diagnostics_tree(rows) == {"results": {"0": {"success": True}, "1": {"success": False}}}


@pytest.mark.parametrize("headline", ["mls", "energy"])
def test_evaluate_metrics_hold_accuracy_and_the_headline_score_only(tmp_path, monkeypatch, headline):
    monkeypatch.setattr(stages.reports, "REPORTS", tmp_path)
    write_report("evaluate", "metrics.json", REPORT, QUALITY.format(headline=headline))
    quality = json.loads((tmp_path / "metrics.json").read_text())
    rows = json.loads((tmp_path / "diagnostics" / "evaluate.json").read_text())
    assert merged(quality, diagnostics_tree(rows)) == REPORT  # every value kept, each in one file
    assert quality["info"] == REPORT["info"]
    for role in ("teacher", "student"):
        assert quality[role] == {"test": {"acc": REPORT[role]["test"]["acc"], headline: {
            k: REPORT[role]["test"][headline][k] for k in ("auroc", "auroc_ci95", "oscr", "fpr95")}}}
    assert len(numeric_leaves(quality)) == 9  # 2 models x (acc, AUROC, OSCR, FPR95) and the split index
    assert any(re.fullmatch(r"student\.jacobian\..+", r["name"]) for r in rows)


def test_relabel_metric_is_the_hard_fraction(tmp_path, monkeypatch):
    monkeypatch.setattr(stages.reports, "REPORTS", tmp_path)
    report = {"teacher_pass": True, "hard_fraction": 0.13, "hard_fraction_per_epoch": [0.12, 0.14],
              "mixed_samples": 4096, "teacher_raw_view_acc": 0.9, "rule": "threshold", "threshold": 0.5,
              "smoothing": 0.0}
    write_report("relabel", "relabel.json", report, RELABEL_QUALITY)
    assert json.loads((tmp_path / "relabel.json").read_text()) == {"hard_fraction": 0.13}
    rows = json.loads((tmp_path / "diagnostics" / "relabel.json").read_text())
    assert merged({"hard_fraction": 0.13}, diagnostics_tree(rows)) == report


def test_the_archive_reads_an_experiment_whole_again_from_its_metrics_and_diagnostics(tmp_path, monkeypatch):
    """A new experiment keeps its Jacobian diagnostics in reports/diagnostics/evaluate.json: the claims read them
    from the archive, so archiving merges them back; an old commit without that file keeps its metrics as they are."""
    import subprocess

    from study.experiments import with_diagnostics
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports" / "diagnostics").mkdir(parents=True)
    (tmp_path / "reports" / "diagnostics" / "evaluate.json").write_text(
        json.dumps([{"name": "student.jacobian.jnd", "value": 0.25}]))
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "x"]):
        subprocess.run(["git", *args], check=True)
    rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    quality = {"student": {"test": {"acc": 0.9}}}
    assert with_diagnostics(rev, quality, "evaluate") == {"student": {"test": {"acc": 0.9}, "jacobian": {"jnd": 0.25}}}
    assert with_diagnostics(rev, quality, "relabel") == quality
