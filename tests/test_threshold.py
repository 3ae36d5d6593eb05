"""A threshold that moves without retraining: the scores the artifact keeps, `osr predict --known-tpr` and
`--threshold`, and the calibration report (table and figure)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_artifact, tiny_images
from osr import OSRError
from osr.calibration import TPRS, Calibration
from osr.deploy import threshold_for_tpr
from osr.plots import calibration_plot
from osr.predict import UNKNOWN, Classifier, main


def save_images(x, folder):
    folder.mkdir()
    for i, img in enumerate(x.permute(0, 2, 3, 1).numpy()):
        Image.fromarray(img).save(folder / f"{i:02d}.png")
    return sorted(str(p) for p in folder.iterdir())


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return tiny_artifact(tmp_path_factory.mktemp("a") / "export")


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_known_tpr_recomputes_the_threshold_from_the_validation_scores_the_artifact_keeps(artifact, tmp_path,
                                                                                           engine):
    val = save_images(tiny_images(40, 1), tmp_path / "val")  # the images behind the kept validation scores
    for tpr in (0.5, 0.9):
        clf = Classifier.load(artifact, "cpu", engine, known_tpr=tpr)
        assert clf.threshold == threshold_for_tpr(clf.calibration.val_known, tpr)
        rows = clf.predict(val)
        assert {(r["threshold"], r["threshold_from"]) for r in rows} == {(clf.threshold, f"known_tpr {tpr}")}
        accepted = sum(r["prediction"] != UNKNOWN for r in rows)
        assert abs(accepted - math.ceil(tpr * 40)) <= 1  # ties at the threshold aside
    card = Classifier.load(artifact, "cpu", engine)
    assert card.threshold == 0.0 and card.predict(val[:1])[0]["threshold_from"] == "card"


def test_the_command_moves_the_threshold_and_says_which_one_it_used(artifact, tmp_path, capsys):
    images = save_images(tiny_images(6, 7), tmp_path / "in")
    out = tmp_path / "answers.json"
    assert main(["--model", str(artifact), "--threshold", "1e9", *images, "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert {(r["prediction"], r["threshold"], r["threshold_from"]) for r in rows} == {(UNKNOWN, 1e9, "given")}
    assert main(["--model", str(artifact), "--engine", "onnx", "--known-tpr", "0.8", *images, "--out",
                 str(out)]) == 0
    expected = threshold_for_tpr(Classifier.load(artifact, "cpu").calibration.val_known, 0.8)
    assert {(r["threshold"], r["threshold_from"]) for r in json.loads(out.read_text())} == {
        (expected, "known_tpr 0.8")}
    capsys.readouterr()
    assert main(["--model", str(artifact), "--known-tpr", "1.5", images[0]]) == 1
    assert capsys.readouterr().err == "error: --known-tpr must be in (0, 1] (got 1.5)\n"
    with pytest.raises(SystemExit):  # argparse: the two are exclusive
        main(["--model", str(artifact), "--known-tpr", "0.9", "--threshold", "0", images[0]])
    assert "not allowed with argument" in capsys.readouterr().err


def test_an_artifact_without_calibration_scores_cannot_move_its_threshold(tmp_path):
    folder = tiny_artifact(tmp_path / "export", calibration=False)
    with pytest.raises(OSRError, match=r"export: keeps no calibration scores \(val_known, "):
        Classifier.load(folder, "cpu", known_tpr=0.9)
    assert Classifier.load(folder, "cpu", threshold=0.3).threshold == 0.3


def test_the_calibration_table_trades_knowns_accepted_for_unknowns_rejected():
    rng = np.random.default_rng(0)
    cal = Calibration(rng.normal(2, 1, 500), rng.normal(2, 1, 400), rng.normal(0, 1, 300), rng.random(400) < 0.9)
    rows = cal.table()
    assert [r["known_tpr"] for r in rows] == list(TPRS) and TPRS[0] == 0.8 and TPRS[-1] == 0.99 and len(TPRS) == 20
    for a, b in zip(rows, rows[1:]):
        assert b["threshold"] <= a["threshold"] and b["unknown_rejected"] <= a["unknown_rejected"]
        assert b["known_accepted"] >= a["known_accepted"]
    assert abs(rows[0]["known_accepted"] - 0.8) < 0.06 and 0.85 < rows[-1]["known_accepted"] <= 1
    assert 0.85 < rows[0]["known_accuracy"] < 0.95 and 0.5 < rows[0]["unknown_rejected"] < 0.9
    share = cal.expected_unknown_share(rows[0]["threshold"])
    assert share == pytest.approx({"low": 1 - rows[0]["known_accepted"], "high": rows[0]["unknown_rejected"]})
    assert Calibration.of(cal.as_lists(), "x").threshold_at(0.9) == cal.threshold_at(0.9)
    with pytest.raises(OSRError, match=r"known_tpr must be in \(0, 1\] \(got 0\)"):
        cal.threshold_at(0)


def test_the_calibration_figure_is_written(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "reports" / "calibration.png"
    calibration_plot({"validation knowns": rng.normal(2, 1, 50), "test knowns": rng.normal(2, 1, 50),
                      "test unknowns": rng.normal(0, 1, 50)}, 0.5, path, "tiny")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    assert [p.name for p in path.parent.iterdir()] == ["calibration.png"]  # no temporary file left
