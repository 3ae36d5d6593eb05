"""Predict with an exported open-set classifier: a known class, or `unknown` when the score is below the card's
threshold. Python: ``Classifier.load("data/export").predict(["a.png", "b.jpg"])``; command line:
``osr predict --model data/export photos/ "more/*.jpg" --out answers.csv`` (or ``python -m osr.predict …``).
``--engine onnx`` (``Classifier.load(…, engine="onnx")``) runs model.onnx with onnxruntime instead of model.pt
with torch: the same score and decision.

Images are read and resized exactly as the folder benchmark reads its training images (osr/images.py), then
scored by the model in batches. An image that cannot be read gets its reason in the row's ``error`` column and
the other images go on. The command refuses, in one line and before it reads the model, an input that names no
file (a missing path, a glob that matches nothing, a folder without images) and an ``--out`` other than .csv or
.json.
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

import numpy as np
import torch
from torchvision.datasets.folder import IMG_EXTENSIONS

from osr import OSRError
from osr.calibration import Calibration
from osr.deploy import artifact_folder, read_card
from osr.engines import ENGINES, Engine, open_engine
from osr.images import read_image, reason
from osr.io import atomic_path
from osr.monitor import UnknownWatch
from osr.train import progress, resolve_device

UNKNOWN = "unknown"
COLUMNS = ("path", "prediction", "score", "threshold", "threshold_from", "error")
OUT_SUFFIXES = (".csv", ".json")


class Classifier:
    """An exported classifier: its card, the engine that runs it, and the threshold in use (the card's, or one
    moved with `move_threshold`)."""

    def __init__(self, engine: Engine, card: dict, where: str = "artifact"):
        self.engine, self.card, self.where = engine, card, where
        self.threshold, self.threshold_from = float(card["threshold"]), "card"
        self.watch = UnknownWatch(card.get("expected_unknown_share"))

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", engine: str = "torch", threshold: float | None = None,
             known_tpr: float | None = None) -> Classifier:
        """The artifact folder `path` (checked against its card) run by `engine` ("torch" on `device`, auto: CUDA
        when available; "onnx": onnxruntime on the CPU), at the card's threshold or one moved by `threshold` or
        `known_tpr` (`move_threshold`)."""
        if engine not in ENGINES:
            raise OSRError(f"engine: {engine!r} is not one of {', '.join(ENGINES)}")
        card = read_card(path, engine)
        folder = artifact_folder(path)
        return cls(open_engine(folder, engine, resolve_device(device)), card, str(folder)).move_threshold(
            threshold, known_tpr)

    @property
    def calibration(self) -> Calibration:
        """The validation and test scores the artifact keeps (OSRError if it keeps none)."""
        return Calibration.of(self.engine.calibration, self.where)

    def move_threshold(self, threshold: float | None = None, known_tpr: float | None = None) -> Classifier:
        """Answer `unknown` below `threshold`, or below the threshold accepting `known_tpr` of the validation
        knowns the artifact keeps (recomputed as the export computes the card's); neither: the card's."""
        if threshold is not None and known_tpr is not None:
            raise OSRError("give a threshold or a known_tpr, not both")
        if threshold is not None:
            if not np.isfinite(threshold):
                raise OSRError(f"threshold must be a finite number (got {threshold})")
            self.threshold, self.threshold_from = float(threshold), "given"
        elif known_tpr is not None:
            self.threshold, self.threshold_from = self.calibration.threshold_at(known_tpr), f"known_tpr {known_tpr}"
        if self.threshold_from != "card":  # the range the test set gives at the new threshold, when it is kept
            kept = bool(self.engine.calibration)
            self.watch = UnknownWatch(self.calibration.expected_unknown_share(self.threshold) if kept else None)
        return self

    def scores(self, x: torch.Tensor, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Predicted class index and score of uint8 images [N, C, H, W] at the card's size."""
        out = self.engine.outputs(x, batch_size)
        return out["class_index"], out["score"]

    def predict(self, images: Iterable[str | Path], batch_size: int = 64, show_progress: bool = False
                ) -> list[dict]:
        """One row per image path: path, prediction (class name or `unknown`), score, threshold, the threshold's
        origin (`threshold_from`: the card's, a `known_tpr`, or given), error."""
        return self.predict_named([(str(p), p) for p in images], batch_size, show_progress)

    def predict_named(self, images: list[tuple[str, str | Path | BinaryIO]], batch_size: int = 64,
                      show_progress: bool = False, strict: bool = False) -> list[dict]:
        """`predict` of (name, file path or binary file object) pairs; the rows' `path` is the name. `strict`: an
        unreadable image is an OSRError naming it, and no image of the call is counted. The answers are added
        to `watch`."""
        batches = range(0, len(images), batch_size)
        rows = []
        for i in progress(batches, desc="predict", unit="batch") if show_progress else batches:
            rows += self._batch(images[i:i + batch_size], batch_size, strict)
        self.watch.add(sum(not r["error"] for r in rows), sum(r["prediction"] == UNKNOWN for r in rows))
        return rows

    def _batch(self, images: list[tuple[str, str | Path | BinaryIO]], batch_size: int, strict: bool
               ) -> list[dict]:
        size, channels, t = self.card["image_size"], self.card["channels"], self.threshold
        rows, good, pixels = [], [], []
        for name, source in images:
            row = {"path": name, "prediction": "", "score": None, "threshold": t,
                   "threshold_from": self.threshold_from, "error": ""}
            try:
                pixels.append(read_image(source, size, channels))
                good.append(row)
            except (OSError, ValueError) as e:
                if strict:
                    raise OSRError(f"{name}: {reason(e)}") from None
                row["error"] = reason(e)
            rows.append(row)
        if good:
            pred, score = self.scores(torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2), batch_size)
            for row, c, s in zip(good, pred, score, strict=True):
                row["score"] = float(s)
                row["prediction"] = self.card["classes"][c] if s >= t else UNKNOWN
        return rows


def expand(inputs: Iterable[str]) -> Iterator[str]:
    """Image files of `inputs`: files as given, folders searched recursively for image extensions, globs
    expanded; OSRError naming an input that names no file."""
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(str(f) for f in path.rglob("*") if f.suffix.lower() in IMG_EXTENSIONS)
            missing = f"a folder without image files ({', '.join(IMG_EXTENSIONS)})"
        elif path.exists():
            found, missing = [item], ""
        else:
            found = sorted(glob.glob(item, recursive=True))
            missing = "matches no file" if any(c in item for c in "*?[") else "no such file or folder"
        if not found:
            raise OSRError(f"{item}: {missing}")
        yield from found


def write_rows(rows: list[dict], out: str | None) -> None:
    """CSV on stdout (out None), else JSON (`out` ends in .json) or CSV, written whole or not at all."""
    if out is None:
        _write_csv(rows, sys.stdout)
        return
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as f:
        if Path(out).suffix.lower() == ".json":
            f.write(json.dumps(rows, indent=2) + "\n")
        else:
            _write_csv(rows, f)


def _write_csv(rows: list[dict], f: TextIO) -> None:
    writer = csv.DictWriter(f, COLUMNS)
    writer.writeheader()
    writer.writerows(rows)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("images", nargs="+", help="image files, folders (searched recursively) or globs")
    parser.add_argument("--out", help="answers file, .csv or .json (default: CSV on stdout)")
    parser.add_argument("--batch-size", type=int, default=64)
    return add_model_arguments(parser)


def add_model_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options that load a classifier (`load`): `osr predict` and `osr serve` share them."""
    parser.add_argument("--model", required=True, help="the exported artifact folder (data/export) or its card.json")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="torch engine's device")
    parser.add_argument("--engine", default="torch", choices=ENGINES,
                        help="torch (model.pt) or onnx (model.onnx with onnxruntime, CPU)")
    moved = parser.add_mutually_exclusive_group()
    moved.add_argument("--known-tpr", type=float, help="answer unknown below the threshold accepting this share "
                       "of the validation knowns (recomputed from the scores the artifact keeps)")
    moved.add_argument("--threshold", type=float, help="answer unknown below this score (default: the card's)")
    return parser


def load(args: argparse.Namespace) -> Classifier:
    """The classifier `add_model_arguments`'s options name."""
    if args.known_tpr is not None and not 0 < args.known_tpr <= 1:
        raise OSRError(f"--known-tpr must be in (0, 1] (got {args.known_tpr})")
    return Classifier.load(args.model, args.device, args.engine, args.threshold, args.known_tpr)


def run(args: argparse.Namespace) -> int:
    if args.out is not None and Path(args.out).suffix.lower() not in OUT_SUFFIXES:
        raise OSRError(f"--out {args.out}: the answers file must end in .csv or .json")
    if args.batch_size < 1:
        raise OSRError(f"--batch-size must be >= 1 (got {args.batch_size})")
    paths = list(expand(args.images))
    classifier = load(args)
    rows = classifier.predict(paths, args.batch_size, show_progress=True)
    write_rows(rows, args.out)
    bad = sum(bool(r["error"]) for r in rows)
    print(f"predict: {len(rows)} images, {watch_line(classifier.watch)}, {bad} unreadable", file=sys.stderr)
    warning = classifier.watch.warning()
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def watch_line(watch: UnknownWatch) -> str:
    """`N unknown (share; the test set gives low-high at this threshold)`, as `osr predict` reports it."""
    s = watch.summary()
    share = f"{s['unknown_share']:.1%}" if s["answered"] else "-"
    e = s["expected"]
    expected = f"; the test set gives {e['low']:.1%}-{e['high']:.1%} at this threshold" if e else ""
    return f"{s['unknown']} unknown ({share}{expected})"


def _guarded(args: argparse.Namespace) -> int:
    """One line on stderr and exit status 1 for a user-facing error (as the pipeline's entry points do)."""
    try:
        return args.run(args)
    except OSRError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    """`python -m osr.predict …`"""
    parser = argparse.ArgumentParser(prog="python -m osr.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser).set_defaults(run=run)
    return _guarded(parser.parse_args(argv))


def console(argv: list[str] | None = None) -> int:
    """The `osr` console script: `osr predict …` and `osr serve …` (osr/serve.py)."""
    from osr import serve

    parser = argparse.ArgumentParser(prog="osr", description="Open-set recognition: use an exported classifier.")
    commands = parser.add_subparsers(dest="command", required=True)
    add_arguments(commands.add_parser("predict", help="classify images, or answer unknown", description=__doc__,
                                      formatter_class=argparse.RawDescriptionHelpFormatter)).set_defaults(run=run)
    serve.add_arguments(commands.add_parser("serve", help="answer image uploads over HTTP", description=serve.__doc__,
                                            formatter_class=argparse.RawDescriptionHelpFormatter)
                        ).set_defaults(run=serve.run)
    return _guarded(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
