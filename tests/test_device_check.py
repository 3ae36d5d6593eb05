"""The prepared device script runs end to end on the CPU at tiny sizes, so it cannot rot before a GPU is lent."""
import json
import os
import sys

import pytest

from conftest import MIRROR, ROOT, needs_mirror, sh


@needs_mirror
@pytest.mark.slow
def test_device_check_tiny_on_cpu_writes_both_results(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    # the lease's 400 s budget does not apply to the rehearsal: on a loaded CPU it ran out before the last blocks
    res = sh(["bash", "bench/device_check.sh", "--tiny", "--device", "cpu", "--data", str(MIRROR / "cifar10_jpeg.npz"),
              "--budget-s", "3600"], ROOT, env=env)
    assert "device check passed" in res.stdout
    thr = json.loads((tmp_path / "bench/results/gpu_h200.json").read_text())
    proj = json.loads((tmp_path / "bench/results/paper_projection.json").read_text())
    assert thr["complete"] and proj["complete"] and not thr.get("errors") and not proj.get("errors")
    for batch in ("32", "64"):
        rows = thr["batches"][batch]
        for name in ("plain", "teacher", "student_cached", "student_live"):
            assert len(rows[name]["images_per_s"]) == 3 and rows[name]["median_images_per_s"] > 0
        assert set(rows["ratios"]) >= {"student_cached/plain", "teacher/plain", "student_live/student_cached"}
    assert set(proj["stages"]) == {"download", "split", "augment", "train_teacher", "relabel", "distill", "evaluate"}
    assert len(proj["stages"]["train_teacher"]["epoch_seconds"]) == proj["epochs_run"]
    assert proj["projected_seconds"]["total"] > sum(s["seconds"] for s in proj["stages"].values())
    k = proj["kill_and_resume"]
    assert k["pass"] and k["resume_message_seen"] and k["bit_identical"]  # CPU: resume is exact
    assert proj["views"]["pass"]
