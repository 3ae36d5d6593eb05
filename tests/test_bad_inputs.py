"""Bad input: each case is a one-line error naming the file or parameter, a non-zero exit, no partial output."""
from __future__ import annotations

import hashlib
import os
import resource
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import MIRROR, clone, needs_mirror, sh, venv_env
from osr.io import load_npz
from osr.models import build, model_meta

pytestmark = [needs_mirror, pytest.mark.slow]
RAW = "data/raw/dataset.npz"


def _params(**changes) -> Callable[[Path], None]:
    def apply(proj: Path) -> None:
        p = yaml.safe_load((proj / "params.yaml").read_text())
        for key, value in changes.items():
            section, name = key.split("__")
            p[section][name] = value
        (proj / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    return apply


def _raw(mutate: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(proj: Path) -> None:
        arrays = load_npz(proj / RAW)
        mutate(arrays)
        (proj / RAW).unlink()
        with open(proj / RAW, "wb") as f:
            np.savez(f, **arrays)
    return apply


def _truncate(rel: str, keep: float = 0.5) -> Callable[[Path], None]:
    def apply(proj: Path) -> None:
        data = (proj / rel).read_bytes()
        (proj / rel).unlink()
        (proj / rel).write_bytes(data[: int(len(data) * keep)])
    return apply


def _pickled(proj: Path) -> None:
    arrays = load_npz(proj / RAW)
    arrays["class_names"] = np.array([{"evil": 1}] * 10, dtype=object)
    (proj / RAW).unlink()
    with open(proj / RAW, "wb") as f:
        np.savez(f, **arrays)


def _mirror(mutate: Callable[[Path], None]) -> Callable[[Path], None]:
    def apply(proj: Path) -> None:
        mirror = proj / "mirror"
        mirror.mkdir()
        mutate(mirror)
    return apply


def _corrupt_copy(mirror: Path) -> None:
    data = bytearray((MIRROR / "cifar10_jpeg.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (mirror / "cifar10_jpeg.npz").write_bytes(bytes(data))


def _truncated_copy(mirror: Path) -> None:
    (mirror / "cifar10_jpeg.npz").write_bytes((MIRROR / "cifar10_jpeg.npz").read_bytes()[:1_000_000])


def _empty_class(a: dict) -> None:
    keep = a["y_train"] != 6
    a["x_train"], a["y_train"] = a["x_train"][keep], a["y_train"][keep]


def _eleventh_class(a: dict) -> None:
    a["class_names"] = np.append(a["class_names"], "unicorn")
    a["y_test"][:5] = 10


def _other_arch(proj: Path) -> None:
    meta = model_meta("resnet18", 6, 4, 3, [0.5] * 3, [0.25] * 3)
    wrong = build(**{**meta, "arch": "resnet50"}).state_dict()
    torch.save({"meta": meta, "state": wrong}, proj / "data/teacher/model.pt.new")
    (proj / "data/teacher/model.pt").unlink()
    (proj / "data/teacher/model.pt.new").rename(proj / "data/teacher/model.pt")


def _model_file(rel: str, meta_width: int, state_width: int) -> Callable[[Path], None]:
    """A model file whose meta says `meta_width` and whose weights are of `state_width`."""
    def apply(proj: Path) -> None:
        meta = model_meta("resnet18", 6, meta_width, 3, [0.5] * 3, [0.25] * 3)
        state = build(**{**meta, "width": state_width}).state_dict()
        (proj / rel).unlink()
        torch.save({"meta": meta, "state": state}, proj / rel)
    return apply


def _block_output(rel: str) -> Callable[[Path], None]:
    def apply(proj: Path) -> None:
        shutil.rmtree(proj / rel)
        (proj / rel).write_text("a file where the output folder should be")
    return apply


CASES = [
    # id, stage, mutation, env, expected fragment of the one-line error, output that must not appear
    ("checksum-mismatch", "download", _mirror(_corrupt_copy), "mirror", "sha256 mismatch", None),
    ("truncated-mirror-file", "download", _mirror(_truncated_copy), "mirror", "sha256 mismatch", None),
    ("missing-mirror-offline", "download", _mirror(lambda m: None), "mirror", "set OSR_DATA_MIRROR", None),
    ("truncated-dataset", "split", _truncate(RAW), None, "corrupt or truncated archive", "data/split"),
    ("pickle-in-data-file", "split", _pickled, None, "contains pickled objects", "data/split"),
    ("wrong-dtype", "split", _raw(lambda a: a.update(x_train=a["x_train"].astype(np.float32))), None,
     "x_train must be uint8", "data/split"),
    ("wrong-shape", "split", _raw(lambda a: a.update(x_test=a["x_test"][:, :, :, 0])), None,
     "x_test must be uint8 [N, H, W, 1|3]", "data/split"),
    ("labels-out-of-range", "split", _raw(lambda a: a["y_train"].__setitem__(0, 42)), None,
     "y_train labels out of range", "data/split"),
    ("class-the-benchmark-lacks", "split", _raw(_eleventh_class), None,
     "class_names holds 11 classes, benchmark cifar10 has 10", "data/split"),
    ("empty-class", "split", _raw(_empty_class), None, "known classes [6] have no training images", "data/split"),
    ("split-index-out-of-range", "split", _params(split__index=12), None, "split.index must be <= 9", "data/split"),
    ("unknown-benchmark", "download", _params(data__benchmark="svhn2"), None, "data.benchmark must be one of", None),
    ("unknown-method", "distill", _params(distill__method="magic"), None, "distill.method must be one of",
     "data/student/model.pt"),
    ("unknown-mixer", "augment", _params(augment__method="blend"), None, "augment.method must be one of",
     "data/plan"),
    ("tau-not-positive", "distill", _params(distill__tau=0), None, "distill.tau must be > 0", "data/student/model.pt"),
    ("threshold-above-one", "relabel", _params(relabel__threshold=1.5), None, "relabel.threshold must be <= 1",
     "data/teacher_cache"),
    ("threshold-nan", "relabel", _params(relabel__threshold=float("nan")), None,
     "relabel.threshold must be a finite number", "data/teacher_cache"),
    ("tau-huge", "distill", _params(distill__tau=1.0e9), None, "distill.tau must be <= 100",
     "data/student/model.pt"),
    ("threshold-negative", "relabel", _params(relabel__threshold=-0.2), None, "relabel.threshold must be >= 0",
     "data/teacher_cache"),
    ("negative-epochs", "train_teacher", _params(teacher__epochs=-3), None, "teacher.epochs must be >= 1",
     "data/teacher/model.pt"),
    ("checkpoint-other-arch", "relabel", _other_arch, None, "checkpoint does not fit the model",
     "data/teacher_cache"),
    ("corrupt-checkpoint", "evaluate", _truncate("data/student/model.pt", 0.3), None,
     "cannot load checkpoint safely", "data/eval"),
    ("output-folder-blocked", "augment", _block_output("data/plan"), None, "data/plan", None),
    ("float-images-by-hand", "train_teacher", _raw(lambda a: a.update(x_train=a["x_train"].astype(np.float32))),
     None, "x_train holds float32 images of shape [32, 32, 3], the split manifest", "data/teacher/model.pt"),
    ("short-x-test", "split", _raw(lambda a: a.update(x_test=a["x_test"][:-5])), None,
     "x_test holds 9995 images but y_test 10000 labels", "data/split"),
    ("student-of-other-width", "evaluate", _model_file("data/student/model.pt", 16, 16), None,
     "data/student/model.pt: holds a resnet18-w16 model, params.yaml's student.arch and student.width say "
     "resnet18-w8", "data/eval"),
    ("checkpoint-other-width", "relabel", _model_file("data/teacher/model.pt", 8, 16), None,
     "checkpoint does not fit the model (size mismatch for", "data/teacher_cache"),
]


@pytest.mark.parametrize("case_id,stage,mutate,env,fragment,absent", CASES, ids=[c[0] for c in CASES])
def test_bad_input(tiny_repro, tmp_path, case_id, stage, mutate, env, fragment, absent):
    proj = clone(tiny_repro, tmp_path / "proj")
    if absent:
        target = proj / absent
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    mutate(proj)
    extra = {"OSR_DATA_MIRROR": str(proj / "mirror"), "OSR_DOWNLOAD_TIMEOUT": "3"} if env == "mirror" else {}
    res = sh(["python", "-m", f"stages.{stage}"], proj, check=False, env=venv_env(**extra), timeout=300)
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and fragment in last, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    if absent:
        assert not (proj / absent).exists(), f"{absent} was written despite the error"
    leftovers = [p for p in proj.rglob("*.tmp*") if ".git" not in p.parts]
    assert not leftovers, f"partial outputs left behind: {leftovers}"


def _outputs(proj: Path) -> dict[str, tuple]:
    """Every file under data/ and reports/ with its inode, size and mtime: a deleted or rewritten one shows.
    The check's own stamp is persistent, which DVC unprotects (copies) before the stage runs: its bytes count."""
    return {str(f.relative_to(proj)): (f.read_bytes(),) if f.name == "params.ok" else
            (f.stat().st_ino, f.stat().st_size, f.stat().st_mtime_ns)
            for top in ("data", "reports") for f in (proj / top).rglob("*") if f.is_file()}


@pytest.mark.parametrize("how,setting,fragment", [
    ("exp", "student.epochs=0", "student.epochs must be >= 1 (got 0)"),
    ("exp", "teacher.batch_size=100000", "teacher.batch_size must be <= 216, the training images of cifar10 split 0"),
    ("exp", "+distill.tauu=2", "distill.tauu: unknown parameter; did you mean distill.tau?"),
    ("exp", "distill.tau=1.0e9", "distill.tau must be <= 100"),
    ("exp", "teacher.lr=10", "teacher.lr must be <= 1"),
    ("repro", "relabel__threshold", "relabel.threshold must be a finite number"),
], ids=["exp-run-epochs-0", "exp-run-batch-size-huge", "exp-run-typo", "exp-run-tau-huge", "exp-run-lr-diverging",
        "repro-threshold-nan"])
def test_bad_parameter_fails_before_any_stage_touches_its_outputs(tiny_repro, tmp_path, how, setting, fragment):
    """DVC deletes a stage's outputs before running it: the check_params stage runs first, so nothing is lost."""
    proj = clone(tiny_repro, tmp_path / "proj")
    before = _outputs(proj)
    assert {"data/plan/plan.npz", "reports/augment_preview.png", "reports/student_train.json"} <= set(before)
    if how == "exp":
        res = sh(["dvc", "exp", "run", "-S", setting], proj, check=False, timeout=300)
    else:
        _params(**{setting: float("nan")})(proj)
        res = sh(["dvc", "repro"], proj, check=False, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and fragment in errors[0], out[-2000:]
    assert "Traceback" not in out and "Running stage 'download'" not in out
    assert _outputs(proj) == before


def _file_size_limit(limit: int) -> Callable[[], None]:
    """For a child process: writes beyond `limit` bytes fail with EFBIG (an OSError, as a full disk's ENOSPC)."""
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("how,fragment", [
    ("folder-blocked", "error: reports/plots: not a folder, so reports/plots/roc.json cannot be written"),
    # scores.npz (16 kB) and metrics.json fit, roc.png (70 kB) does not: the stage fails after writing two outputs
    ("file-too-large", "error: reports/plots/roc.png: cannot write (File too large)"),
])
def test_a_stage_that_fails_leaves_every_previous_output(tiny_repro, tmp_path, how, fragment):
    """Evaluate publishes its scores, metrics and plots together: a failure keeps all of the previous ones."""
    proj = clone(tiny_repro, tmp_path / "proj")
    limit = None
    if how == "folder-blocked":
        _block_output("reports/plots")(proj)
    else:
        limit = _file_size_limit(40_000)
    before = _outputs(proj)
    res = sh(["python", "-m", "stages.evaluate"], proj, check=False, timeout=300, preexec_fn=limit)
    assert res.returncode == 1 and res.stderr.strip().splitlines()[-1] == fragment, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert _outputs(proj) == before
    assert not [p for p in proj.rglob("*.tmp*") if ".git" not in p.parts]


def _contents(proj: Path) -> dict[str, str]:
    """md5 of every file under data/ and reports/ (a restored file is a new file with the old bytes)."""
    return {str(f.relative_to(proj)): hashlib.md5(f.read_bytes()).hexdigest()
            for top in ("data", "reports") for f in (proj / top).rglob("*") if f.is_file()}


def test_a_stage_failing_under_dvc_repro_loses_nothing_that_restore_cannot_put_back(tiny_repro, tmp_path):
    """Under `dvc repro`, DVC removes a stage's outputs before its command runs, the uncached metrics and plots
    included: when the command then fails on write, `python -m cli.restore` puts back every output dvc.lock records,
    byte for byte (cached ones by `dvc checkout`, the others from the copies DVC's run-cache keeps)."""
    proj = clone(tiny_repro, tmp_path / "proj")
    before = _contents(proj)
    _params(evaluate__bootstrap=7)(proj)  # evaluate and export rerun
    wrapper = tmp_path / "bin" / "python"  # the stages' python, with a 40 KiB file-size limit; DVC's own is not
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nulimit -f 40\nexec "{Path(venv_env()["PATH"].split(os.pathsep)[0])}/python" "$@"\n')
    wrapper.chmod(0o755)
    env = venv_env()
    res = sh(["dvc", "repro"], proj, check=False, timeout=600, env={**env, "PATH": f"{wrapper.parent}:{env['PATH']}"})
    assert res.returncode != 0 and "cannot write (File too large)" in res.stderr, res.stderr[-2000:]
    lost = sorted(set(before) - set(_contents(proj)))
    assert {"reports/metrics.json", "reports/plots/roc.json", "data/eval/scores.npz"} <= set(lost)
    res = sh(["python", "-m", "cli.restore"], proj, timeout=300)
    assert res.stdout.startswith("restore: dvc checkout, then ") and _contents(proj) == before, res.stdout


def test_a_teacher_whose_logits_overflow_the_fp16_cache_is_refused(tiny_repro, tmp_path):
    """A teacher whose logits are inf in the fp16 cache (here: its head scaled by 1e6; at teacher.lr 10, which the
    schema now refuses, training produced one) is refused by relabel, and the previous cache stays."""
    proj = clone(tiny_repro, tmp_path / "proj")
    path = proj / "data" / "teacher" / "model.pt"
    ck = torch.load(path, weights_only=False)
    ck["state"] = {k: v * 1e6 if k.startswith("fc.") else v for k, v in ck["state"].items()}
    torch.save(ck, path.with_suffix(".new"))
    path.with_suffix(".new").replace(path)  # a new file: the clone's outputs are links to the shared baseline's
    cache = _outputs(proj)["data/teacher_cache/cache.npz"]
    res = sh(["python", "-m", "stages.relabel"], proj, check=False, timeout=300)
    last = res.stderr.strip().splitlines()[-1]
    assert res.returncode == 1 and last.startswith(
        "error: relabel (data/teacher/model.pt): teacher logits of epoch 1 (a diverged teacher?): "), res.stderr[-2000:]
    assert last.endswith("values are beyond +-65504")
    assert _outputs(proj)["data/teacher_cache/cache.npz"] == cache
