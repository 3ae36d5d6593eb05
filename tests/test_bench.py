"""The throughput benchmark runs every variant side by side (a smoke run; speed itself is never asserted)."""
import json
import sys

from conftest import ROOT, needs_mirror, sh


@needs_mirror
def test_throughput_benchmark_writes_every_variant_and_ratio(tmp_path):
    sh([sys.executable, "-m", "bench.throughput", "--subset", "512", "--width", "8", "--batch", "32", "--steps", "2",
        "--reps", "1", "--warmup", "1", "--no-workers2", "--out", str(tmp_path)], ROOT)
    res = json.loads((tmp_path / "cpu.json").read_text())
    text = json.dumps(res)
    for name in ("typical_w0", "typical_dp", "teacher", "student_cached", "student_live", "student_gradmix"):
        assert name in text
    assert "student_gradmix/student_cached (5/3)" in text and "teacher/typical_dp (data path only" in text
    assert res["complete"] and not res["errors"]


def test_ratios_cover_only_the_variants_measured_so_far():
    """The JSON is rewritten after every block: a partial run has the ratios its finished variants allow."""
    from bench.throughput import RATIOS, ratios_of

    rows = {"teacher": {"images_per_s": [200.0, 300.0]}, "typical_w0": {"images_per_s": [100.0, 100.0]},
            "student_cached": {"images_per_s": []}}
    r = ratios_of(rows, RATIOS)
    assert list(r) == ["teacher/typical_w0 (2/1)"] and r["teacher/typical_w0 (2/1)"]["median"] == 2.5
