"""A folder of images as a benchmark: an ImageFolder tree (``<root>/<class>/<image>``, or ``<root>/train/<class>/…``
and ``<root>/test/<class>/…``) read into the common array layout (osr/data.py).

Class indices are the sorted folder names, as torchvision's ImageFolder numbers them. Without train/ and test/,
each class's test images are the ``data.test_fraction`` of its files that come first in the order of the SHA-1 of
their relative paths: no seed, and adding images leaves the other files where they were. Images are decoded
with torchvision's loader (RGB) and resized to ``data.image_size`` squared, whatever their size; the prediction
command reads new images with the same two functions, so a deployed model sees what the pipeline trained on.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset, pil_loader
from torchvision.transforms.v2 import functional as TF

from osr import OSRError
from osr.validate import first_failure, image_expectations

PARTS = ("train", "test")
DEFAULT_KNOWN_SHARE = 0.6  # split.num_known 0: the known share of CIFAR-10's standard splits (6 of 10)


def read_image(path: str | Path, size: int, channels: int = 3) -> np.ndarray:
    """uint8 [size, size, channels] of an image file (any size, any mode Pillow reads); OSError/ValueError if
    the file is not a readable image."""
    img = pil_loader(str(path))
    if channels == 1:
        img = img.convert("L")
    x = torch.from_numpy(np.asarray(img).copy()).reshape(img.height, img.width, channels).permute(2, 0, 1)
    if x.shape[1:] != (size, size):
        x = TF.resize(x, [size, size], antialias=True)
    return x.permute(1, 2, 0).contiguous().numpy()


def reason(e: Exception) -> str:
    """Why an image could not be read, in a few words (Pillow's messages repeat the file object)."""
    text = str(e).split(" <")[0].splitlines()[0] if str(e) else "unreadable"
    return f"{type(e).__name__}: {text}"


def _listing(folder: Path, root: Path) -> pd.DataFrame:
    """file (relative to `root`) and class of each image in the class folders of `folder`."""
    classes, to_index = find_classes(str(folder)) if any(p.is_dir() for p in folder.iterdir()) else ([], {})
    files = make_dataset(str(folder), to_index, extensions=IMG_EXTENSIONS, allow_empty=True) if classes else []
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


def list_images(root: Path, test_fraction: float) -> pd.DataFrame:
    """One row per image file under `root`: file (relative to root), class, part (train | test)."""
    if not root.is_dir():
        raise OSRError(f"data.root: {root} is not a folder (expected <root>/<class>/<image>)")
    if (root / "train").is_dir() and (root / "test").is_dir():
        return pd.concat([_listing(root / part, root).assign(part=part) for part in PARTS], ignore_index=True)
    df = _listing(root, root)
    df["part"] = "train"
    for _, rows in df.groupby("class"):
        df.loc[rows.index[_held_out(rows["file"], test_fraction)], "part"] = "test"
    return df


def decode_all(root: Path, files: pd.Series, size: int, workers: int = 2) -> tuple[list, list[str]]:
    """The images of `files` (None where unreadable) and the reason for each unreadable one ('' if read)."""
    def one(f: str):
        try:
            return read_image(root / f, size), ""
        except (OSError, ValueError) as e:
            return None, reason(e)

    with ThreadPoolExecutor(workers) as ex:
        done = list(ex.map(one, files, chunksize=64))
    return [x for x, _ in done], [why for _, why in done]


def read_folder(section: Mapping) -> tuple[dict[str, np.ndarray], dict]:
    """The common layout of the folder at params.yaml's data.root, and its provenance record. Refuses (one line
    naming the file) an empty folder and an unreadable image, as the great-expectations suite finds them."""
    root, size = Path(section["root"]), section["image_size"]
    if not size:
        raise OSRError("data.image_size: a folder benchmark needs a size (its images differ); e.g. 32")
    df = list_images(root, section["test_fraction"])
    images, reasons = decode_all(root, df["file"], size) if len(df) else ([], [])
    df["readable"] = [not r for r in reasons]
    failure = first_failure("images", df, image_expectations())
    if failure:
        _, row = failure
        if row is None:
            raise OSRError(f"{root}: no images (expected <root>/<class>/<image> with {', '.join(IMG_EXTENSIONS)})")
        raise OSRError(f"{root / df.file[row]}: unreadable image ({reasons[row]})")
    names = sorted(df["class"].unique())
    index = {n: i for i, n in enumerate(names)}
    out = {"class_names": np.asarray(names)}
    for part in PARTS:
        rows = df.index[df.part == part]
        out[f"x_{part}"] = np.stack([images[i] for i in rows]) if len(rows) else np.zeros((0, size, size, 3), np.uint8)
        out[f"y_{part}"] = np.asarray([index[c] for c in df["class"][rows]], np.int64)
        out[f"files_{part}"] = np.asarray(df.file[rows].tolist(), dtype=str)
    layout = "train/ and test/" if (root / "train").is_dir() else f"one tree, test_fraction {section['test_fraction']}"
    return out, {"root": str(root), "layout": layout, "images": len(df), "classes": len(names)}


def pick_known(split: Mapping, class_names: list[str]) -> list[int]:
    """Known classes of a folder benchmark: split.known by name, else a partition of split.num_known classes
    (0: 60 %) drawn with split.index as the seed."""
    n = len(class_names)
    if split["known"]:
        missing = [k for k in split["known"] if k not in class_names]
        if missing:
            raise OSRError(f"split.known: no class folder {missing[0]!r} (classes: {', '.join(class_names)})")
        known = [class_names.index(k) for k in split["known"]]
    else:
        k = split["num_known"] or max(1, round(DEFAULT_KNOWN_SHARE * n))
        if k >= n:
            raise OSRError(f"split.num_known: {k} leaves no unknown class among the {n} classes")
        known = sorted(int(c) for c in np.random.default_rng(split["index"]).choice(n, k, replace=False))
    if len(known) >= n:
        raise OSRError(f"split.known: every one of the {n} classes is known; leave at least one unknown")
    return known
