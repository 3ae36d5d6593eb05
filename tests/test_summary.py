"""`make run`'s closing summary: both models' figures from reports/metrics.json, the outputs, the next commands."""
import json
import subprocess
import sys

import yaml

from cli.summary import summary


def _metrics(acc: float, auroc: float, oscr: float) -> dict:
    return {"test": {"acc": acc, "mls": {"auroc": auroc, "oscr": oscr}}, "model": "resnet18-w8"}


def test_the_summary_shows_each_model_in_percent_and_lists_only_outputs_that_exist(tmp_path):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "metrics.json").write_text("{}")
    (tmp_path / "reports" / "run").mkdir()
    (tmp_path / "reports" / "run" / "train_teacher.json").write_text('{"epochs": 167}')
    metrics = {"teacher": _metrics(0.9, 0.8123, 0.75), "student": _metrics(0.85, 0.7, 0.6),
               "info": {"benchmark": "cifar10"}}
    params = yaml.safe_load(open("params.yaml"))
    export = {"role": "teacher", "chosen_because": "highest validation accuracy: teacher 0.9000 against student 0.8",
              "known_tpr": 0.95, "noise_accepted": 0.0, "test": {"known_accuracy_accepted": 0.9312,
                                                                 "unknown_rejected": 0.25}}
    text = summary(metrics, params, tmp_path, export)
    teacher = next(line for line in text.splitlines() if line.startswith("teacher "))
    assert teacher.split()[2:] == ["90.0", "81.2", "75.0"]
    assert "reports/metrics.json" in text and "data/student/model.pt" not in text
    assert "dvc exp run -S profile=adpaper" in text and "\ntrained: teacher 167 epochs\n" in text
    assert "shipped: the teacher (highest validation accuracy: teacher 0.9000 against student 0.8)" in text
    assert "known accuracy among accepted 93.1 %, unknowns rejected 25.0 %, noise images accepted 0.0 %" in text


def test_a_missing_metrics_file_is_one_line(tmp_path):
    res = subprocess.run([sys.executable, "-m", "cli.summary", "--metrics", str(tmp_path / "m.json")],
                         capture_output=True, text=True)
    assert res.returncode == 1 and res.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'm.json'}: not found (run `dvc repro` first)"]


def test_the_committed_metrics_summarise(capsys):
    from cli.summary import main
    assert main([]) == 0
    student = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("student "))
    m = json.load(open("reports/metrics.json"))["student"]["test"]
    assert float(student.split()[2]) == round(100 * m["acc"], 1)
    rows = json.load(open("reports/diagnostics/evaluate.json"))
    arch = next(r["value"] for r in rows if r["name"] == "student.model")
    assert student.split()[1] == arch  # the architecture comes from the diagnostics
