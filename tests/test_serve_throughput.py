"""bench/serve_throughput.py on tiny sizes: both engines at batch 1 and 64, images/s side by side in one file."""
from __future__ import annotations

import json

from bench.serve_throughput import main


def test_the_throughput_bench_times_both_engines_at_both_batch_sizes(tmp_path, capsys):
    out = tmp_path / "serve.json"
    result = main(["--tiny", "--images", "8", "--repeats", "2", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert set(result["rows"]) == {"torch batch 1", "torch batch 64", "onnx batch 1", "onnx batch 64"}
    for row in result["rows"].values():
        assert row["images_per_s"] > 0 and len(row["seconds"]) == 2
    printed = capsys.readouterr().out
    assert "onnx batch 64" in printed and f"-> {out}" in printed
