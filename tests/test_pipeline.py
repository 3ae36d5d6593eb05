"""The real pipeline (DVC, great-expectations, the stages) on the tiny profile, in temporary copies."""
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import clone, needs_mirror, ran_stages, sh, stage_report, venv_env
from osr.machine import cpu_name
from osr.train import precision

pytestmark = [needs_mirror, pytest.mark.slow]


def test_repro_writes_metrics_plots_and_validation(tiny_repro):
    m = stage_report(tiny_repro, "evaluate", "metrics.json")
    for role in ("teacher", "student"):
        t = m[role]["test"]
        assert 0.0 <= t["acc"] <= 1.0 and 0.0 <= m[role]["val"]["acc"] <= 1.0
        assert t["n_known"] == 6 * 20 and t["n_unknown"] == 4 * 20
        for score in ("msp", "mls", "energy"):
            assert 0.0 <= t[score]["auroc"] <= 1.0
            assert 0.0 <= t[score]["oscr"] <= t["acc"] + 1e-9
    v = stage_report(tiny_repro, "split")
    assert v["success"] and v["known"] == [0, 6, 4, 9, 1, 7] and v["counts"]["train"] + v["counts"]["val"] == 240
    for png in ("augment_preview.png", "plots/roc.png", "plots/score_hist.png", "plots/training.png"):
        assert (tiny_repro / "reports" / png).read_bytes()[:4] == b"\x89PNG"
    relabel = stage_report(tiny_repro, "relabel", "relabel.json")
    assert 0.0 <= relabel["hard_fraction"] <= 1.0 and relabel["mixed_samples"] > 0
    quality = json.loads((tiny_repro / "reports/metrics.json").read_text())
    assert set(quality["student"]["test"]) == {"acc", "mls"} and "jacobian" not in quality["student"]


RUN_STAT_WORDS = ("seconds", "images_per_s", "rss")


def _monotone(values: list[float]) -> bool:
    return all(b >= a for a, b in zip(values, values[1:]))


def test_repro_writes_plot_data_and_keeps_run_statistics_out_of_the_metrics(tiny_repro):
    p = yaml.safe_load((tiny_repro / "params.yaml").read_text())
    plots = tiny_repro / "reports/plots"
    rocs, hists = (json.loads((plots / name).read_text()) for name in ("roc.json", "score_hist.json"))
    for role in ("teacher", "student"):
        for score in p["evaluate"]["scores"]:
            roc = [r for r in rocs if r["curve"] == f"{role} {score}"]
            fpr, tpr = [r["fpr"] for r in roc], [r["tpr"] for r in roc]
            assert 2 <= len(roc) <= 200 and _monotone(fpr) and _monotone(tpr)
            assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
            assert all(0.0 <= v <= 1.0 for v in fpr + tpr)
            hist = [r for r in hists if r["curve"] == f"{role} {score}"]
            assert len(hist) == 39 and _monotone([r["score"] for r in hist])
            assert all(r["known"] >= 0 and r["unknown"] >= 0 for r in hist)
        epochs = p[role]["epochs"]
        history = json.loads((plots / "history" / f"{role}.json").read_text())
        assert [r["epoch"] for r in history] == list(range(1, epochs + 1))
        assert all(set(r) == {"epoch", "loss", "lr", "val_acc"} for r in history)
        assert history[-1]["val_acc"] is not None and 0.0 <= history[-1]["val_acc"] <= 1.0
        train = json.loads((tiny_repro / f"reports/{role}_train.json").read_text())
        assert set(train) == {"final"} and set(train["final"]) == {"epoch", "loss", "val_acc"}
        stage = {"teacher": "train_teacher", "student": "distill"}[role]
        run = json.loads((tiny_repro / f"reports/run/{stage}.json").read_text())
        assert run["epochs"] == len(run["history"]) == epochs and run["peak_rss_mib"] > 0
        assert run["precision"] == precision(p[role]["amp"], torch.device("cpu"))  # amp: auto, resolved here
        assert run["cpu"] == cpu_name() and run["threads"] >= 1
        assert all(r["seconds"] > 0 and r["images_per_s"] > 0 for r in run["history"])
        assert run["seconds"] == pytest.approx(sum(r["seconds"] for r in run["history"]))
    shown = json.loads(sh(["dvc", "metrics", "show", "--json"], tiny_repro).stdout)
    files = shown[0]["data"] if isinstance(shown, list) else shown
    text = json.dumps(files)
    assert "reports/teacher_train.json" in text and "reports/run/" not in text
    assert not any(w in text for w in RUN_STAT_WORDS), "run statistics among the DVC metrics"
    res = json.loads(sh(["dvc", "plots", "show", "--json"], tiny_repro).stdout)
    assert not res.get("errors"), res.get("errors")
    data = res["data"]
    for plot_id in ("reports/plots/history/teacher.json", "reports/plots/roc.json", "reports/plots/score_hist.json"):
        assert data[plot_id] and data[plot_id][0]["type"] == "vega", plot_id
    values = data["reports/plots/roc.json"][0]["content"]["data"]["values"]
    assert {v["curve"] for v in values} == {f"{role} {score}" for role in ("teacher", "student")
                                            for score in ("msp", "mls", "energy", "ovr", "knn")}


def test_second_repro_runs_nothing(tiny_repro):
    out = sh(["dvc", "repro"], tiny_repro).stdout
    assert ran_stages(out) == set()
    assert "up to date" in sh(["dvc", "status"], tiny_repro).stdout


def test_experiments_rerun_only_what_their_parameters_touch(tiny_repro, tmp_path):
    proj = clone(tiny_repro, tmp_path / "proj")
    out = sh(["dvc", "exp", "run", "-n", "tau4", "-S", "distill.tau=4"], proj).stdout
    assert ran_stages(out) == {"check_params", "distill", "evaluate", "export"}
    assert yaml.safe_load((proj / "params.yaml").read_text())["distill"]["tau"] == 4
    out = sh(["dvc", "exp", "run", "-n", "thr02", "-S", "relabel.threshold=0.05"], proj).stdout
    assert ran_stages(out) == {"check_params", "relabel", "distill", "evaluate", "export"}
    relabel = stage_report(proj, "relabel", "relabel.json")
    assert relabel["threshold"] == 0.05
    diff = sh(["dvc", "metrics", "diff", "tau4", "thr02", "--json"], proj).stdout
    changes = json.loads(diff)["reports/metrics.json"]
    assert "student.test.mls.auroc" in changes
    auroc = changes["student.test.mls.auroc"]
    assert auroc["old"] != auroc["new"] and auroc["diff"] == pytest.approx(auroc["new"] - auroc["old"])
    assert "teacher.test.mls.auroc" not in changes  # the teacher was not retrained


def _set_params(proj: Path, **changes) -> None:
    p = yaml.safe_load((proj / "params.yaml").read_text())
    for key, value in changes.items():
        section, name = key.split("__")
        p[section][name] = value
    (proj / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, "the stage ended before writing a checkpoint"
        assert time.time() < end, f"no checkpoint at {path}"
        time.sleep(0.02)


@pytest.mark.parametrize("stage,ckpt,model", [("train_teacher", "data/ckpt/teacher.pt", "data/teacher/model.pt"),
                                              ("distill", "data/ckpt/student.pt", "data/student/model.pt")])
def test_sigkill_then_rerun_resumes_and_matches_an_uninterrupted_run(tiny_repro, tmp_path, stage, ckpt, model):
    epochs = {"train_teacher": "teacher__epochs", "distill": "student__epochs"}[stage]
    ref, victim = clone(tiny_repro, tmp_path / "ref"), clone(tiny_repro, tmp_path / "victim")
    for proj in (ref, victim):
        _set_params(proj, **{epochs: 40})
        (proj / ckpt).unlink(missing_ok=True)
    sh(["dvc", "repro", "-s", "augment"], ref)  # student.epochs feeds the plan
    sh(["dvc", "repro", "-s", "augment"], victim)
    if stage == "distill":
        sh(["dvc", "repro", "-s", "relabel"], ref)
        sh(["dvc", "repro", "-s", "relabel"], victim)
    sh(["dvc", "repro", "-s", stage], ref)
    proc = subprocess.Popen(["dvc", "repro", "-s", stage], cwd=victim, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, env=venv_env())
    _wait_for(victim / ckpt, proc)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = torch.load(victim / ckpt, weights_only=True)["epoch"] + 1
    assert 1 <= done < 40, "kill landed outside training"
    out = sh(["dvc", "repro", "-s", stage], victim)
    assert f"resuming from {ckpt} after epoch {done}/40" in out.stdout + out.stderr
    a, b = torch.load(ref / model, weights_only=True), torch.load(victim / model, weights_only=True)
    assert all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])


def test_metrics_diff_markdown_shows_the_auroc_change(tiny_repro, tmp_path):
    proj = clone(tiny_repro, tmp_path / "proj")
    sh(["dvc", "exp", "run", "-n", "tau2", "-S", "distill.tau=2.0"], proj)
    table = sh(["dvc", "metrics", "diff", "HEAD", "--md"], proj).stdout
    row = next(line for line in table.splitlines() if "student.test.mls.auroc" in line)
    old, new, change = (float(v) for v in row.strip("|").split("|")[2:5])
    assert change == pytest.approx(new - old, abs=1e-4) and change != 0
    assert not any(w in table for w in RUN_STAT_WORDS)
    # the data plots overlay the baseline and the experiment in one chart
    res = json.loads(sh(["dvc", "plots", "diff", "HEAD", "tau2", "--json"], proj).stdout)
    assert not res.get("errors"), res.get("errors")
    roc = res["data"]["reports/plots/roc.json"][0]
    assert len(roc["revisions"]) == 2 and len({v["rev"] for v in roc["content"]["data"]["values"]}) == 2


def test_queued_experiments_finish_with_distinct_metrics(tiny_repro, tmp_path):
    proj = clone(tiny_repro, tmp_path / "proj")
    taus = ["0.5", "2.0", "4.0", "8.0"]
    for tau in taus:
        sh(["dvc", "exp", "run", "--queue", "-n", f"q{tau.replace('.', '')}", "-S", f"distill.tau={tau}"], proj)
    sh(["dvc", "queue", "start", "-j", "2"], proj)
    deadline = time.time() + 600
    while time.time() < deadline:
        status = sh(["dvc", "queue", "status"], proj).stdout
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        time.sleep(3)
    assert status.count("Success") == 4, status
    shown = json.loads(sh(["dvc", "exp", "show", "--json"], proj).stdout)
    results = {}
    for commit in shown:
        for exp in commit.get("experiments") or []:
            rev = exp["revs"][0]
            data = rev.get("data") or {}
            tau = data["params"]["params.yaml"]["data"]["distill"]["tau"]
            auroc = data["metrics"]["reports/metrics.json"]["data"]["student"]["test"]["mls"]["auroc"]
            results[float(tau)] = auroc
    assert set(results) == {float(t) for t in taus}
    assert len(set(results.values())) == 4, results


def test_same_seed_twice_gives_identical_metrics(tiny_repro, tmp_path):
    proj = clone(tiny_repro, tmp_path / "proj")
    shutil.rmtree(proj / "data/ckpt")  # no resume: train teacher and student again from scratch
    out = sh(["dvc", "repro", "-f", "--downstream", "train_teacher"], proj).stdout
    assert {"train_teacher", "relabel", "distill", "evaluate"} <= ran_stages(out)
    assert (proj / "reports/metrics.json").read_text() == (tiny_repro / "reports/metrics.json").read_text()


@pytest.mark.parametrize("module,spared", [("osr/expectations.py", "train_teacher"), ("osr/models.py", "split")])
def test_a_comment_in_a_library_module_reruns_only_the_stages_that_import_it(tiny_repro, tmp_path, module, spared):
    """`dvc status` after a comment is appended to `module`: exactly the stages whose code imports it (dvc.yaml's
    generated deps, tests/test_dvc_deps.py) are changed, the others are up to date."""
    proj = clone(tiny_repro, tmp_path / "proj")
    path = proj / module
    path.unlink()  # the clone's files may be links to the baseline's
    path.write_text((tiny_repro / module).read_text() + "# a comment\n")
    changed = set(json.loads(sh(["dvc", "status", "--json"], proj).stdout))
    stages = yaml.safe_load((proj / "dvc.yaml").read_text())["stages"]
    assert changed == {name for name, s in stages.items() if module in s["deps"]} and spared not in changed
