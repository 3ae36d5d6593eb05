"""model.onnx: the exported graph keeps the normalisation, the score and the decision; onnxruntime answers as
torch does, and an ONNX file the card does not describe is refused."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_artifact
from osr import OSRError
from osr.deploy import ONNX_FILE, read_card
from osr.predict import UNKNOWN, Classifier, main


def write_images(folder, n=12, size=20, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size + i, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    return sorted(str(p) for p in folder.iterdir())


@pytest.mark.parametrize("score,settings", [("mls", {}), ("msp", {}), ("energy", {"temperature": 2.0}),
                                            ("ovr", {}), ("knn", {"k": 3})])
def test_onnx_and_torch_agree_on_scores_and_decisions(tmp_path, score, settings):
    images = write_images(tmp_path / "in")
    torch_rows = Classifier.load(tiny_artifact(tmp_path / "a", score, settings), "cpu").predict(images)
    median = float(np.median([r["score"] for r in torch_rows]))  # a threshold that splits the images
    folder = tiny_artifact(tmp_path / "export", score, settings, threshold=median)
    torch_rows = Classifier.load(folder, "cpu").predict(images, batch_size=5)
    onnx_rows = Classifier.load(folder, engine="onnx").predict(images, batch_size=5)
    ts, os_ = (np.array([r["score"] for r in rows]) for rows in (torch_rows, onnx_rows))
    assert np.allclose(ts, os_, rtol=0, atol=1e-4)
    far = np.abs(ts - median) > 1e-4  # ties aside
    assert far.sum() >= 10
    assert all(a["prediction"] == b["prediction"] for a, b, f in zip(torch_rows, onnx_rows, far, strict=True) if f)
    assert {r["prediction"] for r in onnx_rows} >= {UNKNOWN}
    assert any(r["prediction"] != UNKNOWN for r in onnx_rows)


def test_the_graph_holds_the_decision_a_dynamic_batch_and_the_card_in_its_metadata(tmp_path):
    from osr.onnx_graph import OnnxSession

    folder = tiny_artifact(tmp_path / "export", threshold=0.05)
    session = OnnxSession(folder / ONNX_FILE)
    card = read_card(folder, "onnx")
    assert session.metadata["threshold"] == 0.05 and session.metadata["classes"] == ["cat", "dog"]
    assert session.metadata["score"] == "mls" and session.metadata["format"] == card["format"]
    x = np.random.default_rng(1).random((7, 3, 16, 16), dtype=np.float32)
    for batch in (x[:1], x):
        out = session(batch)
        assert out["score"].shape == (len(batch),) and out["logits"].shape == (len(batch), 2)
        assert np.allclose(out["score"], out["logits"].max(1), atol=1e-6)  # mls inside the graph
        assert np.array_equal(out["decision"], np.where(out["score"] >= 0.05, out["logits"].argmax(1), -1))


def test_an_onnx_file_the_card_does_not_describe_is_refused_in_one_line(tmp_path, capsys):
    folder = tiny_artifact(tmp_path / "export")
    image = write_images(tmp_path / "in", n=1)[0]
    assert main(["--model", str(folder), "--engine", "onnx", image]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0] == "path,prediction,score,threshold,threshold_from,error" and rows[1].startswith(image)
    onnx_file = folder / ONNX_FILE
    onnx_file.write_bytes(onnx_file.read_bytes() + b"\0")
    with pytest.raises(OSRError, match="model.onnx: SHA-256 differs from the card's"):
        Classifier.load(folder, engine="onnx")
    Classifier.load(folder, engine="torch")  # model.pt is still the one described
    assert main(["--model", str(folder), "--engine", "onnx", image]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: {onnx_file}: SHA-256 differs from the card's (altered, or not the model it describes)"]
    onnx_file.unlink()
    with pytest.raises(OSRError, match="model.onnx: file not found"):
        Classifier.load(folder, engine="onnx")
    card = json.loads((folder / "card.json").read_text())
    assert len(card["onnx_sha256"]) == 64 and len(card["model_sha256"]) == 64
