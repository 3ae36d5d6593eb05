"""A folder of images as a benchmark: an ImageFolder tree (``<root>/<class>/<image>``, or ``<root>/train/<class>/…``
and ``<root>/test/<class>/…``) read into the common array layout (osr/data.py).

Class indices are the sorted folder names, as torchvision's ImageFolder numbers them. Without train/ and test/,
each class's test images are the ``data.test_fraction`` of its files that come first in the order of the SHA-1 of
their relative paths: no seed, and adding images leaves the other files where they were. Every file in a class
folder whose content is an image, whatever its name, is read as RGB at ``data.image_size`` squared by
osr/images.py, as the prediction command reads new images; the other files under the root are counted and named
in one line.
"""
from __future__ import annotations

import hashlib
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from torchvision.datasets.folder import find_classes, make_dataset

from osr import OSRError
from osr.expectations import first_failure, image_expectations
from osr.images import read_image

if TYPE_CHECKING:  # annotations only: osr.config is not among the DVC deps of this code
    from osr.config import Data, Split

PARTS = ("train", "test")
DEFAULT_KNOWN_SHARE = 0.6  # split.num_known 0: the known share of CIFAR-10's standard splits (6 of 10)


def _listing(folder: Path, root: Path) -> pd.DataFrame:
    """file (relative to `root`) and class of each file, of any name, in the class folders of `folder`."""
    classes, to_index = find_classes(str(folder)) if any(p.is_dir() for p in folder.iterdir()) else ([], {})
    files = make_dataset(str(folder), to_index, is_valid_file=lambda _: True, allow_empty=True) if classes else []
    return pd.DataFrame({"file": [str(Path(f).relative_to(root)) for f, _ in files],
                         "class": [classes[c] for _, c in files]}, columns=["file", "class"])


def _held_out(files: pd.Series, fraction: float) -> np.ndarray:
    """Whether each file (of one class) is a test image: the first `fraction` by SHA-1 of the path, at least
    one and never all when the class holds two or more."""
    order = np.argsort([hashlib.sha1(f.encode()).hexdigest() for f in files], kind="stable")
    n = len(files)
    n_test = min(n - 1, max(1, round(fraction * n))) if n > 1 else 0
    test = np.zeros(n, bool)
    test[order[:n_test]] = True
    return test


def has_parts(root: Path) -> bool:
    """Whether `root` holds its own test set: train/ and test/ folders."""
    return all((root / part).is_dir() for part in PARTS)


def list_files(root: Path) -> pd.DataFrame:
    """One row per file in the class folders under `root`, image or not: file (relative to root), class, and
    part (train | test) when the root holds train/ and test/."""
    if not root.is_dir():
        raise OSRError(f"data.root: {root} is not a folder (expected <root>/<class>/<image>)")
    if has_parts(root):
        return pd.concat([_listing(root / part, root).assign(part=part) for part in PARTS], ignore_index=True)
    return _listing(root, root)


def hold_out(df: pd.DataFrame, test_fraction: float) -> pd.DataFrame:
    """`df` (the images of one tree) with each class's held-out share as part test, the others train."""
    df = df.assign(part="train")
    for _, rows in df.groupby("class"):
        df.loc[rows.index[_held_out(rows["file"], test_fraction)], "part"] = "test"
    return df


def decode_all(root: Path, files: pd.Series, size: int, workers: int = 2) -> list[np.ndarray | None]:
    """The images of `files`, None for a file that is not a readable image."""
    def one(f: str) -> np.ndarray | None:
        try:
            return read_image(root / f, size)
        except (OSError, ValueError):
            return None

    with ThreadPoolExecutor(workers) as ex:
        return list(ex.map(one, files, chunksize=64))


def skipping(files: list[str]) -> str:
    """The skipped files in a few words: how many, and the first three names."""
    names = ", ".join(files[:3]) + (", …" if len(files) > 3 else "")
    what = "file that is not an image" if len(files) == 1 else "files that are not images"
    return f"skipped {len(files)} {what} in a class folder ({names})"


def read_folder(section: Data) -> tuple[dict[str, np.ndarray], dict]:
    """The common layout of the folder at params.yaml's data.root, and its provenance record. Files that are not
    images in a class folder are left out, in one line on stderr; a folder without images is refused, as the
    great-expectations suite finds it."""
    root, size = Path(section.root), section.image_size
    if not size:
        raise OSRError("data.image_size: a folder benchmark needs a size (its images differ); e.g. 32")
    files = list_files(root)
    decoded = decode_all(root, files["file"], size)
    read = np.array([x is not None for x in decoded], bool)
    df, images = files[read].reset_index(drop=True), [x for x in decoded if x is not None]
    skipped = sorted({str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} - set(df.file))
    if first_failure("images", df, image_expectations()):
        why = f"; {skipping(skipped)}" if skipped else ""
        raise OSRError(f"{root}: no images (expected <root>/<class>/<image>{why})")
    if skipped:
        print(f"folder: {skipping(skipped)}", file=sys.stderr)
    if not has_parts(root):
        df = hold_out(df, section.test_fraction)
    names = sorted(df["class"].unique())
    index = {n: i for i, n in enumerate(names)}
    out = {"class_names": np.asarray(names)}
    for part in PARTS:
        rows = df.index[df.part == part]
        out[f"x_{part}"] = np.stack([images[i] for i in rows]) if len(rows) else np.zeros((0, size, size, 3), np.uint8)
        out[f"y_{part}"] = np.asarray([index[c] for c in df["class"][rows]], np.int64)
        out[f"files_{part}"] = np.asarray(df.file[rows].tolist(), dtype=str)
    layout = "train/ and test/" if has_parts(root) else f"one tree, test_fraction {section.test_fraction}"
    return out, {"root": str(root), "layout": layout, "images": len(df), "classes": len(names),
                 "skipped": len(skipped)}


def pick_known(split: Split, index: int, class_names: list[str]) -> list[int]:
    """Known classes of a folder benchmark: split.known by name, else a partition of split.num_known classes
    (0: 60 %) drawn with `index` (split.index) as the seed."""
    n = len(class_names)
    if split.known:
        missing = [k for k in split.known if k not in class_names]
        if missing:
            raise OSRError(f"split.known: no class folder {missing[0]!r} (classes: {', '.join(class_names)})")
        known = [class_names.index(k) for k in split.known]
    else:
        k = split.num_known or max(1, round(DEFAULT_KNOWN_SHARE * n))
        if k >= n:
            raise OSRError(f"split.num_known: {k} leaves no unknown class among the {n} classes")
        known = sorted(int(c) for c in np.random.default_rng(index).choice(n, k, replace=False))
    if len(known) >= n:
        raise OSRError(f"split.known: every one of the {n} classes is known; leave at least one unknown")
    return known
