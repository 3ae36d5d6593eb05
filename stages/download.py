"""Stage download: the benchmark's images as uint8 arrays: its files fetched (mirror, else canonical URL), verified
and decoded, or the folder of images at data.root (benchmark folder) validated and read."""
from __future__ import annotations

from stages import answer_help

answer_help(__name__, __spec__, __doc__)  # --help answers here, before the imports below load torch

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from osr import data
from osr.io import atomic_dir, save_npz, write_json
from osr.paths import RAW

if TYPE_CHECKING:  # main is handed the validated params by the runner
    from osr.config import Params


def main(p: Params) -> None:
    d = p.data
    name = d.benchmark
    bench = data.benchmark(name)
    with tempfile.TemporaryDirectory() as work, atomic_dir(RAW.parent) as out:
        arrays, sources = data.load(name, d, Path(work))
        save_npz(out / RAW.name, **arrays)
        write_json(out / "source.json", {"benchmark": name, "files": sources, "note": bench.note,
                                         "image_size": d.image_size,
                                         "shapes": {k: list(v.shape) for k, v in arrays.items()}})
    print(f"download: {name} train {arrays['x_train'].shape} test {arrays['x_test'].shape} -> {RAW}")


if __name__ == "__main__":  # the runner is not among the stage's deps (stages/common.py)
    from stages.common import run

    run(main)
