"""Every registered score ships: the kNN score with a bounded feature bank inside both model files, and a
refusal, in one line, of a score the ONNX graph cannot compute."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import tiny_artifact, tiny_images
from osr import OSRError
from osr.deploy import MODEL_FILE, ONNX_FILE
from osr.graph import Deployed, bounded_bank, load_deployed, outputs
from osr.io import load_torch
from osr.models import build, model_meta
from osr.predict import Classifier
from osr.scores import SCORES, Score, bank_of, knn


def test_the_bounded_bank_keeps_each_class_its_share_seeded():
    labels = torch.tensor([2] * 60 + [0] * 30 + [1] * 10)
    bank = bank_of(torch.randn(100, 4, generator=torch.Generator().manual_seed(0)), labels)
    assert bank.groups == ((0, 0, 30), (1, 30, 40), (2, 40, 100))  # rows grouped by class
    small = bounded_bank(bank, 20, k=3, seed=1)
    assert small.groups == ((0, 0, 6), (1, 6, 9), (2, 9, 21))  # 30/100, 10/100 (at least k) and 60/100 of 20
    assert torch.equal(small.labels, torch.tensor([0] * 6 + [1] * 3 + [2] * 12))
    assert all(any(torch.equal(r, b) for b in bank.features) for r in small.features)  # rows of the bank
    assert torch.equal(small.features, bounded_bank(bank, 20, k=3, seed=1).features)
    assert not torch.equal(small.features, bounded_bank(bank, 20, k=3, seed=2).features)
    assert bounded_bank(bank, 100, k=3, seed=1) is bank  # within the limit: whole


def test_knn_reads_classes_as_blocks_and_scores_in_chunks_alike():
    gen = torch.Generator().manual_seed(0)
    f, feats = torch.randn(50, 8, generator=gen), torch.randn(30, 8, generator=gen)
    labels = torch.randint(0, 3, (30,), generator=gen)
    bank = bank_of(feats, labels)
    s = knn(None, f, bank, k=2)
    assert torch.allclose(s, knn(None, f, bank, k=2, chunk=7)) and ((1 / 3 <= s) & (s <= 1)).all()
    cos = torch.nn.functional.normalize(f, dim=1) @ torch.nn.functional.normalize(feats, dim=1).T
    per_class = torch.stack([cos[:, labels == c].topk(2, 1).values.sum(1) for c in range(3)], 1)
    assert torch.allclose(s, (per_class / per_class.sum(1, keepdim=True)).max(1).values, atol=1e-6)


def test_a_knn_artifact_carries_its_bank_in_both_files_and_predicts(tmp_path):
    folder = tiny_artifact(tmp_path / "export", "knn", {"k": 3}, bank_limit=24)
    card = json.loads((folder / "card.json").read_text())
    assert card["score"] == "knn" and card["bank"] == {"images": 24, "of": 40, "limit": 24}
    deploy = load_torch(folder / MODEL_FILE)["deploy"]
    assert deploy["bank"]["features"].shape == (24, 64) and deploy["bank"]["groups"] == [[0, 0, 12], [1, 12, 24]]
    module, _ = load_deployed(folder / MODEL_FILE, torch.device("cpu"))
    x = tiny_images(9, 11)
    torch_scores = outputs(module, x)["score"]
    onnx_scores = Classifier.load(folder, engine="onnx").engine.outputs(x, 4)["score"]
    assert np.allclose(torch_scores, onnx_scores, atol=1e-4) and ((0.5 <= torch_scores) & (torch_scores <= 1)).all()
    assert (folder / ONNX_FILE).stat().st_size > 24 * 64 * 4  # the bank is inside the graph
    with pytest.raises(OSRError, match="score: knn needs the training-feature bank"):
        Deployed(module.model, "knn", {"k": 3}, 0.0)


def test_a_score_the_graph_cannot_compute_is_refused_in_one_line(tmp_path, monkeypatch):
    def numpy_max(z, f=None, bank=None):  # leaves the tensor operations: a trace freezes it into a constant
        return torch.from_numpy(z.detach().numpy().max(1))

    monkeypatch.setitem(SCORES, "numpy_max", Score(numpy_max))
    torch.manual_seed(0)
    meta = model_meta("resnet18", 2, 8, 3, [0.5] * 3, [0.25] * 3)
    from osr.deploy import write_artifact

    card = {"classes": ["a", "b"], "image_size": 16, "channels": 3, "score": "numpy_max", "score_settings": {},
            "threshold": 0.0}
    with pytest.raises(OSRError, match=r"^score numpy_max: cannot be exported to ONNX \(the traced graph") as e:
        write_artifact(tmp_path / "export", Deployed(build(**meta), "numpy_max", {}, 0.0), meta, card)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "export").exists() and list(tmp_path.iterdir()) == []


def test_a_model_of_large_logits_exports_its_score(tmp_path):
    """float32 rounds a logit of 10^5 by far more than 1e-4: the graph check is relative to the score's size."""
    from osr.deploy import write_artifact

    torch.manual_seed(0)
    meta = model_meta("resnet18", 2, 8, 3, [0.5] * 3, [0.25] * 3)
    model = build(**meta)
    with torch.no_grad():
        model.fc.weight.mul_(1e5)
    card = {"classes": ["a", "b"], "image_size": 16, "channels": 3, "score": "mls", "score_settings": {},
            "threshold": 0.0}
    write_artifact(tmp_path / "export", Deployed(model, "mls", {}, 0.0), meta, card)
    x = tiny_images(6, 3, 16)
    torch_scores = Classifier.load(tmp_path / "export").engine.outputs(x, 4)["score"]
    onnx_scores = Classifier.load(tmp_path / "export", engine="onnx").engine.outputs(x, 4)["score"]
    assert np.abs(torch_scores).max() > 1e3
    assert np.allclose(torch_scores, onnx_scores, rtol=1e-4, atol=1e-4)
