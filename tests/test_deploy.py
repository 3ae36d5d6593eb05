"""The deployable classifier: the threshold rule, the artifact's refusals, `osr predict`, and the folder
benchmark's tiny pipeline end to end (dvc repro -> export -> predict in a fresh process)."""
from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from conftest import ROOT, make_project, needs_mirror, ran_stages, sh, tiny_artifact, venv_env, write_image_folder
from osr import OSRError
from osr.deploy import MODEL_FILE, choose, operating_point, read_card, threshold_for_tpr
from osr.images import read_image
from osr.io import load_npz
from osr.pixels import noise_images
from osr.predict import UNKNOWN, Classifier, console, expand, main

PY = [sys.executable, "-m", "osr.predict"]


@pytest.mark.parametrize("n,tpr", [(1000, 0.95), (1000, 0.9), (37, 0.95), (20, 0.5), (3, 0.99)])
def test_threshold_accepts_exactly_the_requested_share_of_validation_knowns(n, tpr):
    s = np.random.default_rng(n).normal(size=n)
    t = threshold_for_tpr(s, tpr)
    assert (s >= t).sum() == int(np.ceil(tpr * n))


def test_threshold_with_ties_and_bad_scores():
    assert threshold_for_tpr(np.ones(10), 0.5) == 1.0  # every tied score accepted
    with pytest.raises(OSRError, match="not finite"):
        threshold_for_tpr(np.array([0.1, np.nan]), 0.95)


def test_operating_point():
    p = operating_point(np.array([0.9, 0.8, 0.2, 0.7]), np.array([True, False, True, True]),
                        np.array([0.1, 0.75, 0.3]), threshold=0.5)
    assert p["known_accepted"] == 0.75 and p["known_accuracy_accepted"] == pytest.approx(2 / 3)
    assert p["unknown_rejected"] == pytest.approx(2 / 3)
    assert p["oscr_point"] == {"ccr": 0.5, "fpr": pytest.approx(1 / 3)}


def test_the_export_ships_the_candidate_of_highest_validation_accuracy():
    clean = {"noise_accepted": 0.0}
    role, why = choose({"student": {"val_acc": 0.81, **clean}, "teacher": {"val_acc": 0.9, **clean}}, 0.05)
    assert role == "teacher" and why == "highest validation accuracy: teacher 0.9000 against student 0.8100"
    tie = {"student": {"val_acc": 0.9, **clean}, "teacher": {"val_acc": 0.9, **clean}}
    assert choose(tie, 0.05)[0] == "student"  # a tie: the first


def test_a_candidate_that_accepts_noise_ships_only_when_every_candidate_does():
    role, why = choose({"student": {"val_acc": 1.0, "noise_accepted": 1.0},
                        "teacher": {"val_acc": 0.98, "noise_accepted": 0.0}}, 0.05)
    assert role == "teacher"
    assert why == "highest validation accuracy: teacher 0.9800; accepts over 5% of noise images: student (100.0%)"
    role, why = choose({"student": {"val_acc": 1.0, "noise_accepted": 0.3},
                        "teacher": {"val_acc": 0.98, "noise_accepted": 0.2}}, 0.05)
    assert role == "teacher" and why == ("every candidate accepts more than 5% of noise images; teacher accepts "
                                         "the least (20.0%)")
    assert choose({"student": {"val_acc": 0.9, "noise_accepted": 0.05},
                   "teacher": {"val_acc": 0.8, "noise_accepted": 0.0}}, 0.05)[0] == "student"  # at the limit


def test_noise_images_are_seeded_uniform_uint8():
    a = noise_images(200, 3, 8, seed=1)
    assert a.shape == (200, 3, 8, 8) and a.dtype == torch.uint8 and torch.equal(a, noise_images(200, 3, 8, seed=1))
    assert 120 < a.float().mean() < 135 and a.min() == 0 and a.max() == 255


@pytest.fixture()
def artifact(tmp_path):
    """A width-8 model (random weights) exported with a card, as the export stage writes it."""
    return tiny_artifact(tmp_path / "export")


def test_an_altered_or_foreign_artifact_is_refused(artifact, tmp_path):
    assert read_card(artifact)["format"] == "osr-classifier/1"
    with pytest.raises(OSRError, match="no card.json"):
        Classifier.load(tmp_path)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "card.json").write_text(json.dumps({"classes": ["a"]}))
    with pytest.raises(OSRError, match="card.json: not a card of this project's classifier"):
        Classifier.load(foreign / "card.json")
    model = artifact / MODEL_FILE
    model.write_bytes(model.read_bytes()[:-10] + b"0" * 10)
    with pytest.raises(OSRError, match="model.pt: SHA-256 differs from the card's"):
        Classifier.load(artifact)
    res = sh(PY + ["--model", str(artifact), str(model)], ROOT, check=False, env=venv_env(PYTHONPATH=str(ROOT)))
    assert res.returncode == 1 and res.stderr.strip().splitlines() == [
        f"error: {model}: SHA-256 differs from the card's (altered, or not the model it describes)"]


def test_predict_reports_a_bad_image_in_its_row_and_goes_on(artifact, tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    (folder / "2.png").write_bytes(b"broken")
    rows = Classifier.load(artifact).predict([*expand([str(folder)]), str(tmp_path / "none.jpg")], batch_size=2)
    assert [r["path"].rsplit("/", 1)[1] for r in rows] == ["0.png", "1.png", "2.png", "3.png", "4.png", "none.jpg"]
    assert rows[2]["error"].startswith("UnidentifiedImageError") and rows[2]["score"] is None
    assert rows[5]["error"].startswith("FileNotFoundError")
    good = [r for i, r in enumerate(rows) if i not in (2, 5)]
    assert all(r["prediction"] in ("cat", "dog", UNKNOWN) for r in good)
    assert all((r["prediction"] == UNKNOWN) == (r["score"] < r["threshold"]) for r in good)
    out = tmp_path / "answers.csv"
    res = sh(PY + ["--model", str(artifact), f"{folder}/*.png", "--out", str(out), "--batch-size", "3"], ROOT,
             env=venv_env(PYTHONPATH=str(ROOT)))
    table = pd.read_csv(out)
    assert list(table.columns) == ["path", "prediction", "score", "threshold", "threshold_from", "error"]
    assert len(table) == 5
    assert np.allclose(table.score.dropna().to_numpy(), [r["score"] for r in good[:4]], atol=1e-5)
    assert "predict: 5 images" in res.stderr and "1 unreadable" in res.stderr
    res = sh(PY + ["--model", str(artifact), str(folder / "0.png")], ROOT, env=venv_env(PYTHONPATH=str(ROOT)))
    lines = res.stdout.strip().splitlines()  # CSV on stdout
    assert lines[0] == "path,prediction,score,threshold,threshold_from,error"
    assert lines[1].startswith(f"{folder / '0.png'},")


def test_predict_refuses_inputs_that_name_no_file_before_reading_the_model(tmp_path, capsys):
    """An input that names no image, and an answers file that is neither CSV nor JSON: exit 1, one line naming
    it, nothing written; the model (here no model at all) is not read."""
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    (tmp_path / "empty").mkdir()
    none = tmp_path / "no-model"
    cases = [([str(tmp_path / "missing.jpg")], f"{tmp_path / 'missing.jpg'}: no such file or folder"),
             ([str(image), f"{tmp_path}/*.jpeg"], f"{tmp_path}/*.jpeg: matches no file"),
             ([str(tmp_path / "empty")], f"{tmp_path / 'empty'}: a folder without image files (.jpg, "),
             ([str(image), "--out", str(tmp_path / "answers.xlsx")],
              f"--out {tmp_path / 'answers.xlsx'}: the answers file must end in .csv or .json")]
    for argv, message in cases:
        assert main(["--model", str(none), *argv]) == 1
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {message}"), err
    assert console(["predict", "--model", str(none), str(image), "--out", str(tmp_path / "a.txt")]) == 1
    assert capsys.readouterr().err == f"error: --out {tmp_path / 'a.txt'}: the answers file must end in .csv or .json\n"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["a.png", "empty"]
    assert main(["--model", str(none), str(image), "--out", str(tmp_path / "answers.JSON")]) == 1  # inputs good:
    assert capsys.readouterr().err.startswith(f"error: {none}: not a classifier artifact")  # the model is read


@pytest.fixture(scope="module")
def folder_pipeline(tmp_path_factory):
    """The tiny profile through `dvc repro` on a folder of 4 MNIST classes (PNG), two of them known; the teacher
    trains 150 steps and keeps its best-validated epoch; the student starts from it and is distilled by the AD
    variant the quick profile ships; both learn with noise exposure (the quick profile's settings)."""
    root = write_image_folder(tmp_path_factory.mktemp("images") / "digits", classes=4, per_class=40)
    proj = make_project(tmp_path_factory.mktemp("folder") / "proj",
                        overrides=["benchmark=folder", f"data.root={root}", "split.known=[zero,one]",
                                   "teacher.min_steps=150", "teacher.keep=best", "teacher.noise_exposure=1.0",
                                   "student.init=teacher", "distill.tau=4.0", "relabel.rule=all",
                                   "distill.noise_exposure=1.0"])
    res = sh(["dvc", "repro"], proj)
    return proj, root, res.stdout


@pytest.mark.slow
@needs_mirror
def test_folder_pipeline_exports_a_classifier_that_predicts_as_evaluate_scored(folder_pipeline, tmp_path):
    proj, root, out = folder_pipeline
    assert {"download", "split", "train_teacher", "distill", "evaluate", "export"} <= ran_stages(out)
    card = read_card(proj / "data" / "export")
    assert card["classes"] == ["zero", "one"] and card["image_size"] == 32 and card["score"] == "mls"
    assert 0 <= card["test"]["unknown_rejected"] <= 1 and card["test"]["n_unknown"] > 0
    role = card["role"]  # the candidate of highest validation accuracy among those rejecting noise, and why
    passing = [c for c in card["candidates"].values() if c["noise_accepted"] <= 0.05]
    assert card["candidates"][role]["val_acc"] == max(c["val_acc"] for c in passing)
    assert card["chosen_because"].startswith(f"highest validation accuracy: {role} ")
    assert card["noise_accepted"] == card["candidates"][role]["noise_accepted"]
    assert card["candidates"]["teacher"]["val_acc"] == 1.0  # 0 against 1: a trained teacher
    assert card["candidates"]["teacher"]["noise_accepted"] <= 0.01  # and it does not name noise a digit
    raw, scores = load_npz(proj / "data/raw/dataset.npz"), load_npz(proj / "data/eval/scores.npz")
    manifest = pd.read_csv(proj / "data/split/manifest.csv")
    files = [str(root / raw["files_test"][i]) for i in manifest[manifest.role == "test"]["index"]]
    answers = tmp_path / "answers.json"
    sh(PY + ["--model", str(proj / "data" / "export"), *files, "--out", str(answers)], proj,
       env=venv_env(PYTHONPATH=str(ROOT)))  # a fresh process
    rows = json.loads(answers.read_text())
    assert [r["path"] for r in rows] == files and not any(r["error"] for r in rows)
    assert np.allclose([r["score"] for r in rows], scores[f"{role}_mls"], rtol=1e-5, atol=1e-5)
    assert UNKNOWN in {r["prediction"] for r in rows}
    assert np.array_equal(read_image(files[0], 32), raw["x_test"][manifest[manifest.role == "test"]["index"].iloc[0]])
    status = sh(["dvc", "status"], proj).stdout
    assert "up to date" in status
    (root / "one" / "000.png").write_bytes((root / "one" / "001.png").read_bytes())  # the folder is a dependency
    assert "download" in sh(["dvc", "status"], proj).stdout
