"""The prepared device check runs end to end on the CPU at tiny sizes, so it cannot rot before a GPU is lent; its
time plan stops training at the budget and still returns a projection and throughput; a compiler that fails
falls back to eager and says so; its $OUT stays within the device tool's return limits."""
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import MIRROR, ROOT, needs_mirror

NPZ = MIRROR / "cifar10_jpeg.npz"


def device_check(out, *args, **env):
    """bench/device_check.sh at tiny sizes on the CPU; (exit status, output, throughput JSON, projection JSON)."""
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(out), "OMP_NUM_THREADS": "1", **env}
    res = subprocess.run(["bash", "bench/device_check.sh", "--tiny", "--device", "cpu", "--data", str(NPZ), *args],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    results = out / "bench" / "results"
    read = [json.loads(p.read_text()) if p.exists() else None
            for p in (results / "gpu_h200.json", results / "paper_projection.json")]
    return res.returncode, res.stdout + res.stderr, *read


@needs_mirror
@pytest.mark.slow
def test_device_check_tiny_on_cpu_writes_both_results_and_its_log(tmp_path):
    # the lease's budget does not apply to the rehearsal: on a loaded CPU it ran out before the last blocks
    rc, log, thr, proj = device_check(tmp_path, "--budget-s", "3600")
    assert rc == 0 and "device check passed" in log, log[-3000:]
    assert thr["complete"] and proj["complete"] and not thr.get("errors") and not proj.get("errors")
    for batch in ("32", "64"):
        rows = thr["batches"][batch]["variants"]
        for name in ("plain", "teacher", "student_cached", "student_live"):
            assert len(rows[name]["images_per_s"]) == 3 and rows[name]["median_images_per_s"] > 0
        assert set(thr["batches"][batch]["ratios"]) >= {"student_cached/plain", "teacher/plain",
                                                        "student_live/student_cached"}
        assert thr["batches"][batch]["short"] == []
    assert set(proj["stages"]) == {"download", "split", "augment", "train_teacher", "relabel", "distill", "evaluate"}
    assert len(proj["stages"]["train_teacher"]["epoch_seconds"]) == proj["epochs_asked"]["teacher"] == 4
    assert proj["projected_seconds"]["missing"] == [] and proj["target_split0_le_480s"]["met"] is not None
    assert proj["projected_seconds"]["total"] > sum(s["seconds"] for s in proj["stages"].values())
    k = proj["kill_and_resume"]
    assert k["pass"] and k["resume_message_seen"] and k["bit_identical"]  # CPU: resume is exact
    assert 0 < k["seconds_to_first_checkpoint"] < k["first_checkpoint_wait_s"]
    assert proj["views"]["pass"] and proj["compile"] is False and proj["compile_smoke"] is None
    saved = (tmp_path / "bench/results/device_check.log").read_text()
    assert "projection: evaluate" in saved and "device check passed" in saved and "torch" in saved.splitlines()[0]
    assert "$OUT:" not in log  # within the return limits


@needs_mirror
@pytest.mark.slow
def test_a_budget_that_cuts_training_still_returns_a_projection_and_throughput(tmp_path):
    """300 teacher epochs cannot fit in 45 s: the teacher stops after the epoch that crosses its deadline, the
    student (4 epochs) and evaluate still run, and the run ends within the budget and the watchdog's grace."""
    t0 = time.perf_counter()
    rc, log, thr, proj = device_check(tmp_path, "--budget-s", "45", "--grace-s", "30", "--epochs", "300",
                                      "--set", "student.epochs", "4", "--parts", "throughput,projection")
    wall = time.perf_counter() - t0
    assert rc == 1 and "device check FAILED" in log and "train_teacher: stopped after epoch" in log, log[-3000:]
    assert wall < 45 + 30 + 60  # budget + grace + start-up (imports, data)
    teacher = proj["stages"]["train_teacher"]
    assert 1 <= teacher["stopped_after_epoch"] < 300 == proj["epochs_asked"]["teacher"]
    assert len(teacher["epoch_seconds"]) == teacher["stopped_after_epoch"]
    projected = proj["projected_seconds"]
    assert projected["train_teacher"] > 200 * min(teacher["epoch_seconds"]) > 0 and projected["total"] > 0
    assert not proj["complete"] and any("train_teacher" in why for why in proj["incomplete"])
    plain = thr["batches"]["32"]["variants"]["plain"]  # throughput ran first, within its share
    assert plain["images_per_s"] and plain["median_images_per_s"] > 0
    assert thr["wall_s"] < 45 + 30


@needs_mirror
@pytest.mark.slow
def test_a_compiler_that_fails_falls_back_to_eager_and_says_so(tmp_path):
    """Inductor forced on the CPU with no working C++ compiler (a fresh cache, so nothing compiled earlier is
    reused): the smoke test fails, the JSON records compile false and why, and the stages still run, eager."""
    rc, log, thr, proj = device_check(tmp_path, "--compile", "inductor", "--epochs", "2", "--parts",
                                      "views,projection", CXX="/bin/false",
                                      TORCHINDUCTOR_CACHE_DIR=str(tmp_path / "inductor"))
    assert rc == 0 and "compile smoke test failed, running eager" in log, log[-3000:]
    assert thr is None and proj["compile"] is False
    smoke = proj["compile_smoke"]
    assert not smoke["compile"] and smoke["backend"] == "inductor" and "compiler" in smoke["error"].lower()
    assert proj["complete"] and proj["stages"]["evaluate"]["seconds"] > 0


@needs_mirror
def test_without_cuda_the_default_device_fails_at_once_in_one_line(tmp_path):
    if __import__("torch").cuda.is_available():
        pytest.skip("CUDA is usable here")
    res = subprocess.run([sys.executable, "-m", "bench.device_check", "--data", str(NPZ), "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 2 and not list(tmp_path.iterdir())
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("device check: CUDA is not usable") and "--device cpu" in lines[0]


def test_variants_with_fewer_repetitions_than_asked_are_marked_short():
    from bench.device.throughput import mark_short

    rows = {"plain": {"images_per_s": [3.0, 1.0, 2.0]}, "teacher": {"images_per_s": [5.0]},
            "student_live": {"images_per_s": []}}
    assert mark_short(rows, 3) == ["teacher", "student_live"]
    assert "short" not in rows["plain"] and rows["plain"]["median_images_per_s"] == 2.0
    assert rows["teacher"]["short"] == "1 of 3 repetitions" and "median_images_per_s" not in rows["student_live"]


def test_training_stops_after_the_epoch_that_crosses_the_deadline_but_never_after_the_last():
    from bench.device.training import EpochDeadline
    from osr.train import Pruned

    stop = EpochDeadline(lambda model, epoch: {"val_acc": 0.5}, deadline=time.perf_counter() + 3600, epochs=3)
    assert stop(None, 0) == {"val_acc": 0.5}  # before the deadline: goes on
    stop.deadline = time.perf_counter() - 1
    with pytest.raises(Pruned, match="stopped after epoch 2 of 3"):
        stop(None, 1)
    assert stop(None, 2) == {"val_acc": 0.5}  # the last epoch: the run finishes on its own
    assert [r["epoch"] for r in stop.rows] == [1, 2, 3] and all(r["seconds"] >= 0 for r in stop.rows)


def test_projection_from_what_finished_marks_missing_stages_and_one_epoch_runs():
    from bench.device.projection import project

    stages = {"download": {"seconds": 2.0}, "augment": {"seconds": 1.0},
              "train_teacher": {"seconds": 12.0, "epoch_seconds": [10.0], "callback_seconds": [1.0],
                                "validations_projected": 20},
              "relabel": {"skipped": "time budget"}}
    res = project(stages, 4)
    assert res["missing"] == ["relabel"] and res["one_epoch_only"] == ["train_teacher"]
    assert res["augment"] == 50.0 and res["train_teacher"] == 200 * 10.0 + 20 * 1.0 + 1.0
    assert res["total"] == 2.0 + 50.0 + res["train_teacher"]


def test_out_folder_is_checked_against_the_return_limits(tmp_path):
    from bench.device.limits import main, problems

    (tmp_path / "bench" / "results").mkdir(parents=True)
    (tmp_path / "bench" / "results" / "gpu_h200.json").write_text("{}")
    assert problems(tmp_path) == [] and main([str(tmp_path)]) == 0
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c" / "deep.txt").write_text("x")
    (tmp_path / "bad name.txt").write_text("x")
    with open(tmp_path / "big.bin", "wb") as f:
        f.truncate(17 * 2**20)
    for i in range(6):
        (tmp_path / f"f{i}.txt").write_text("x")
    found = "\n".join(problems(tmp_path))
    assert "a/b/c/deep.txt: more than 2 folders down" in found and "bad name.txt: name outside" in found
    assert "big.bin: 17.0 MiB, over 16 MiB" in found and "10 files, over 8" in found
    assert main([str(tmp_path)]) == 1

