"""Bad input decided without running the pipeline: params.yaml cross-checks, unknown keys, finite values, the
stage publication of osr.io (all outputs or none) and one-line OSErrors."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from cli import guarded
from cli.compose import compose
from conftest import ROOT
from osr import OSRError, check_finite
from osr.augment import BaseAug, make_plan
from osr.config import load_params, validate
from osr.io import publication, save_npz, write_json
from osr.models import build, check_model, load_state, model_meta
from osr.relabel import teacher_outputs
from osr.roles import check_images
from osr.scores import bank_of, knn
from osr.sizes import check_sizes
from osr.split import make_manifest
from stages import SHARED
from stages.common import declared_outputs


@pytest.fixture(scope="module")
def tiny() -> dict:
    return compose(ROOT / "conf", ["profile=tiny"])


def _with(params: dict, **changes) -> dict:
    q = copy.deepcopy(params)
    for key, value in changes.items():
        section, name = key.split("__")
        q[section][name] = value
    return q


@pytest.mark.parametrize("changes,message", [
    # tiny: 40 images of each of 6 known classes, 10 % to validation: 216 training images, 36 in each class
    ({"teacher__batch_size": 100_000}, "teacher.batch_size must be <= 216, the training images of cifar10 split 0"),
    ({"student__batch_size": 217}, "student.batch_size must be <= 216"),
    ({"evaluate__knn_k": 37}, "evaluate.knn_k must be <= 36, the training images of the smallest known class"),
    ({"split__val_fraction": 0.01}, "split.val_fraction: 0.01 of 240 images cannot hold every known class"),
    ({"data__image_size": 48}, "data.image_size must be <= 32, the size of cifar10's images"),
    ({"data__benchmark": "mnist"}, "data.mean must hold 1 values, one per channel of mnist's images"),
], ids=["teacher-batch", "student-batch", "knn-k", "val-too-small", "image-size", "channels"])
def test_sizes_the_benchmark_declares_decide_batch_sizes_and_knn_k(tiny, changes, message):
    with pytest.raises(OSRError, match=message.replace(".", r"\.")) as e:
        check_sizes(validate(_with(tiny, **changes)))
    assert str(e.value).startswith("params.yaml: ") and "\n" not in str(e.value)


def test_the_largest_sizes_that_fit_pass(tiny):
    check_sizes(validate(_with(tiny, teacher__batch_size=216, student__batch_size=216,
                               evaluate__knn_k=36)))
    # knn_k is read only by the knn score
    check_sizes(validate(_with(tiny, evaluate__knn_k=1000, evaluate__scores=["msp"], evaluate__deploy_score="msp")))


@pytest.mark.parametrize("key,near", [("distill.tauu", "distill.tau"), ("teacher.batchsize", "teacher.batch_size"),
                                      ("evaluatee.knn_k", "evaluate.knn_k"), ("zzz.qqq", None)])
def test_unknown_keys_are_refused_with_the_nearest_known_key(tiny, key, near):
    q = copy.deepcopy(tiny)
    section, name = key.split(".")
    q.setdefault(section, {})[name] = 2
    with pytest.raises(OSRError) as e:
        validate(q)
    expected = f"params.yaml: {key}: unknown parameter" + (f"; did you mean {near}?" if near else "")
    assert str(e.value) == expected


@pytest.mark.parametrize("text,value", [("1e9", 1e9), ("2E-3", 2e-3), ("1.5e2", 150.0), ("-3e1", -30.0)])
def test_exponent_numbers_in_params_yaml_are_numbers(tiny, tmp_path, text, value):
    body = yaml.safe_dump(tiny, sort_keys=False).replace("  tau: 1.0\n", f"  tau: {text}\n")
    assert f"tau: {text}" in body
    (tmp_path / "params.yaml").write_text(body)
    if 0 < value <= 100:
        assert load_params(tmp_path / "params.yaml").distill.tau == value
    else:
        with pytest.raises(OSRError, match=rf"distill\.tau must be (<= 100|> 0) \(got {value!r}\)"):
            load_params(tmp_path / "params.yaml")


def test_check_finite_names_what_and_counts():
    check_finite(np.array([1.0, -65504.0]), "x", 65504)
    with pytest.raises(OSRError, match=r"^cache: 2 of 4 values are non-finite or beyond \+-65504$"):
        check_finite(np.array([1.0, np.inf, np.nan, 2.0]), "cache", 65504)
    with pytest.raises(OSRError, match=r"^cache: 1 of 2 values are beyond \+-65504$"):
        check_finite(np.array([1.0, 1e5]), "cache", 65504)


def test_teacher_logits_the_fp16_cache_cannot_hold_stop_the_pass():
    torch.manual_seed(0)
    teacher = build(**model_meta("resnet18", 3, 8, 3, (0.5,) * 3, (0.5,) * 3)).eval()
    x, y = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8), torch.arange(16) % 3
    plan = make_plan(16, 8, 2, 0, "cutmix", 0.5, (8, 8))
    fine = teacher_outputs(teacher, x, y, plan, BaseAug(randaugment=0), amp=False)
    assert np.isfinite(fine["t_raw"]).all()
    with torch.no_grad():
        teacher.fc.weight.mul_(1e7)  # the logits of a diverged teacher: finite in fp32, inf in fp16
    with pytest.raises(OSRError, match=r"^relabel: teacher logits of epoch 1 \(a diverged teacher\?\): \d+ of \d+ "
                                       r"values are beyond \+-65504$"):
        teacher_outputs(teacher, x, y, plan, BaseAug(randaugment=0), amp=False, where="relabel")


def test_knn_k_larger_than_a_class_is_refused_not_reduced():
    features, labels = torch.randn(7, 4), torch.tensor([0, 0, 0, 1, 1, 1, 1])
    bank = bank_of(features, labels)
    assert knn(torch.zeros(2, 2), torch.randn(2, 4), bank, k=3).shape == (2,)
    with pytest.raises(OSRError, match="evaluate.knn_k: 4 is more than the 3 training images of known class 0"):
        knn(torch.zeros(2, 2), torch.randn(2, 4), bank, k=4)


def test_a_checkpoint_of_another_width_gives_the_reason():
    wide = build(**model_meta("resnet18", 3, 16, 3, (0.5,) * 3, (0.5,) * 3)).state_dict()
    narrow = build(**model_meta("resnet18", 3, 8, 3, (0.5,) * 3, (0.5,) * 3))
    with pytest.raises(OSRError) as e:
        load_state(narrow, wide, "data/teacher/model.pt")
    assert "checkpoint does not fit the model (size mismatch for" in str(e.value) and "\n" not in str(e.value)


def test_a_model_of_other_architecture_than_the_params_is_refused(tiny):
    meta = model_meta("resnet18", 6, 16, 3, (0.5,) * 3, (0.5,) * 3)
    check_model({**meta, "width": 8}, validate(tiny).student, "student", 6, "data/student/model.pt")
    with pytest.raises(OSRError, match=r"data/student/model\.pt: holds a resnet18-w16 model, params\.yaml's "
                                       r"student\.arch and student\.width say resnet18-w8"):
        check_model(meta, validate(tiny).student, "student", 6, "data/student/model.pt")
    with pytest.raises(OSRError, match="has 6 outputs, the split has 4 known classes"):
        check_model({**meta, "width": 8}, validate(tiny).student, "student", 4, "data/student/model.pt")


def test_a_publication_renames_every_output_together_or_none(tmp_path):
    scores, metrics, plots = tmp_path / "eval" / "scores.npz", tmp_path / "reports" / "metrics.json", \
        tmp_path / "reports" / "plots"
    with publication([scores.parent, metrics, plots]):
        save_npz(scores, s=np.arange(3))
        write_json(metrics, {"auroc": 0.5})
        assert not scores.exists() and not metrics.exists()  # nothing in place before the whole block succeeds
    assert json.loads(metrics.read_text()) == {"auroc": 0.5}
    before = {p: p.stat().st_ino for p in (scores, metrics)}
    with pytest.raises(RuntimeError), publication([scores.parent, metrics, plots]):
        save_npz(scores, s=np.arange(4))
        write_json(metrics, {"auroc": 0.9})
        raise RuntimeError("the stage failed after writing")
    assert {p: p.stat().st_ino for p in (scores, metrics)} == before
    assert json.loads(metrics.read_text()) == {"auroc": 0.5}
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    assert not plots.exists()  # a folder made only for a discarded output is removed again


def test_a_publication_checks_its_folders_before_any_work(tmp_path):
    (tmp_path / "reports").write_text("a file where the reports folder should be")
    ran = []
    with pytest.raises(OSRError, match="reports: not a folder, so .*metrics.json cannot be written"), \
            publication([tmp_path / "eval", tmp_path / "reports" / "metrics.json"]):
        ran.append(True)
    assert not ran


def test_a_failed_write_is_one_line_naming_the_path(tmp_path):
    """A real write error (the file-size limit: EFBIG, as ENOSPC from a full disk) in a child process."""
    code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000)); "
            "from osr.io import write_json; from osr import OSRError\n"
            "try:\n    write_json(sys.argv[1], list(range(10000)))\n"
            "except OSRError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "big.json")], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.strip()
    assert out == f"{tmp_path / 'big.json'}: cannot write (File too large)"
    assert not list(tmp_path.iterdir())


def test_images_are_checked_against_the_manifest_they_were_split_by():
    y = np.repeat(np.arange(4), 10)
    raw = {"x_train": np.zeros((40, 8, 8, 3), np.uint8), "x_test": np.zeros((40, 8, 8, 3), np.uint8)}
    manifest = make_manifest(y, y, [0, 1], [2, 3], 0.25, 0, image_shape=(8, 8, 3))
    check_images(raw, manifest)
    with pytest.raises(OSRError, match=r"x_train holds float32 images of shape \[8, 8, 3\], the split manifest .* "
                                       r"was made from uint8 \[8, 8, 3\]"):
        check_images({**raw, "x_train": raw["x_train"].astype(np.float32)}, manifest)
    with pytest.raises(OSRError, match=r"x_test holds 20 images, the split manifest .* names image 3\d"):
        check_images({**raw, "x_test": raw["x_test"][:20]}, manifest)


def test_an_os_error_at_an_entry_point_is_one_line_naming_the_path(tmp_path, capsys):
    assert guarded(lambda: (tmp_path / "missing" / "x.json").read_text()) == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'missing' / 'x.json'}: No such file or directory\n"


def test_every_stage_publishes_the_outputs_dvc_yaml_declares():
    stages = {p.stem for p in (ROOT / "stages").glob("*.py")} - SHARED
    assert all(declared_outputs(stage) for stage in stages)
    assert {Path("data/eval"), Path("reports/metrics.json"), Path("reports/plots/roc.json")} <= set(
        declared_outputs("evaluate"))
    with pytest.raises(OSRError, match="dvc.yaml: no stage predict_all"):
        declared_outputs("predict_all")


def test_the_divergence_guard_reads_the_weights_and_statistics_not_only_the_mean_loss(tmp_path):
    """An inf batch-norm statistic leaves the training loss finite (training normalises by the batch's own
    statistics) and every later prediction inf: the epoch stops with one line."""
    from test_train import tiny_model, train
    model = tiny_model()
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_var[0] = float("inf")
    with pytest.raises(OSRError, match=r"^t: training diverged in epoch 1 \(non-finite weights or batch-norm "):
        train(model, tmp_path / "ck.pt")
    assert not (tmp_path / "ck.pt").exists()
    assert train(tiny_model(), tmp_path / "ok.pt")[-1]["epoch"] == 2
