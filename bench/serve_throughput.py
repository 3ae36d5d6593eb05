"""Prediction throughput of an exported classifier: torch (model.pt) against onnxruntime (model.onnx), at batch 1
and batch 64, images/s side by side in one run -> bench/results/serve_throughput_<device>.json.

Both engines score the same seeded uint8 images through `osr.engines` (what `osr predict` and `osr serve` run):
each (engine, batch) pair is warmed up once, then timed over `--repeats` rounds, the pairs interleaved round-robin
so that drift of the machine's load spreads over all of them; the median round gives images/s.

    python -m bench.serve_throughput --model data/export            # the pipeline's artifact
    python -m bench.serve_throughput --tiny --images 8 --repeats 1   # a width-8 model of random weights (a check)
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench.common import RESULTS
from osr.engines import ENGINES, open_engine
from osr.io import write_json
from osr.machine import device_name
from osr.predict import Classifier
from osr.train import resolve_device

BATCHES = (1, 64)


def tiny_artifact(folder: Path) -> Path:
    """A width-8 ResNet-18 of seeded random weights as an artifact (2 classes, 32 x 32 RGB), to check the bench."""
    from osr.deploy import write_artifact
    from osr.graph import Deployed
    from osr.models import build, model_meta

    torch.manual_seed(0)
    meta = model_meta("resnet18", 2, 8, 3, [0.5] * 3, [0.25] * 3)
    card = {"classes": ["a", "b"], "image_size": 32, "channels": 3, "score": "mls", "score_settings": {},
            "threshold": 0.0}
    write_artifact(folder, Deployed(build(**meta), "mls", {}, 0.0), meta, card)
    return folder


def throughput(folder: Path, images: int, repeats: int, device: str = "cpu", batches=BATCHES) -> dict:
    """images/s of every (engine, batch size) pair on `images` seeded images of the artifact's size."""
    card = Classifier.load(folder, device).card
    x = torch.randint(0, 256, (images, card["channels"], card["image_size"], card["image_size"]),
                      generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    engines = {e: open_engine(folder, e, resolve_device(device)) for e in ENGINES}
    pairs = [(e, b) for e in ENGINES for b in batches]
    seconds: dict[tuple[str, int], list[float]] = {p: [] for p in pairs}
    for e, b in pairs:  # warm-up
        engines[e].outputs(x[:b], b)
    for _ in range(repeats):
        for e, b in pairs:
            start = time.perf_counter()
            engines[e].outputs(x, b)
            seconds[(e, b)].append(time.perf_counter() - start)
    rows = {f"{e} batch {b}": {"engine": e, "batch": b, "images_per_s": images / statistics.median(seconds[(e, b)]),
                               "seconds": seconds[(e, b)]} for e, b in pairs}
    return {"device": device_name(resolve_device(device)), "torch_threads": torch.get_num_threads(),
            "images": images, "repeats": repeats, "image_size": card["image_size"], "rows": rows}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_throughput", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="an exported artifact folder (data/export)")
    source.add_argument("--tiny", action="store_true", help="a width-8 model of random weights instead")
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="the torch engine's device")
    parser.add_argument("--out", type=Path, help="results file (default: bench/results/serve_throughput_<device>.json)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = tiny_artifact(Path(tmp) / "export") if args.tiny else args.model
        result = throughput(folder, args.images, args.repeats, args.device)
    out = args.out or RESULTS / f"serve_throughput_{args.device}.json"
    write_json(out, result)
    for name, row in result["rows"].items():
        print(f"{name:>16}: {row['images_per_s']:10.1f} images/s")
    print(f"-> {out}")
    return result


if __name__ == "__main__":
    main()
