"""Datasets: fetch (mirror or canonical URL) with checksum, decode to uint8 arrays, standard OSR splits.

Every benchmark is normalised to one layout: ``x_train``/``x_test`` uint8 [N, H, W, C], ``y_train``/``y_test``
int64 class indices, ``class_names``. For CIFAR+N the CIFAR-100 test images are appended to the test set with
label ``10 + fine_label``, so the split lists below index one label space. The ``folder`` benchmark reads the
user's images instead (osr/folder.py) and draws its splits. The module is longer than most because the
``BENCHMARKS`` registry and everything its entries declare (sources, split lists, layouts) sit together.
"""
from __future__ import annotations

import io
import os
import shutil
import socket
import urllib.request
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from osr import OSRError, folder
from osr.io import load_npz, sha256
from osr.paths import MIRROR_ENV, mirror_dir

if TYPE_CHECKING:  # annotations only: osr.config is not among the DVC deps of this code
    from osr.config import Data, Split


@dataclass(frozen=True)
class RawFile:
    name: str
    sha256: str | None  # of the mirror copy; None: no mirror copy exists, only the canonical source
    url: str  # canonical source, converted to the same arrays when the mirror is absent


FILES = {
    "cifar10": RawFile("cifar10_jpeg.npz", "9448309af2fd749fbaafe661b367e7e4d5b4a7dbfa8053f6fc1936c92388ee93",
                       "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    "cifar100": RawFile("cifar100_test_partial.npz",
                        "c8d132f63ef4a996969d8bcc407b79d2f3b72049e4e6859fa55beda9568946c9",
                        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
    "mnist": RawFile("mnist.npz", "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64",
                     "https://ossci-datasets.s3.amazonaws.com/mnist/"),
    "tinyimagenet": RawFile("tinyimagenet_osr.npz",
                            "2d4c742da3c2c82e80c773a2e2761278d7fda865530620b432685530f1f495d4",
                            "http://cs231n.stanford.edu/tiny-imagenet-200.zip"),
    "svhn": RawFile("svhn.npz", None, "http://ufldl.stanford.edu/housenumbers/"),
}


def held_out_partitions(standard: list[list[int]], classes: int, known: int, count: int, seed: int
                        ) -> list[list[int]]:
    """`count` seeded random choices of `known` classes out of `classes`, each distinct (as a set) from every
    standard split and from the others: partitions that no result was chosen on, for a confirmatory study."""
    rng = np.random.default_rng(seed)
    seen, out = {frozenset(s) for s in standard}, []
    while len(out) < count:
        pick = [int(c) for c in rng.choice(classes, known, replace=False)]
        if frozenset(pick) not in seen:
            seen.add(frozenset(pick))
            out.append(pick)
    return out


# Known-class lists (Neal et al. 2018 as shipped by ARPL and Vaze). Index = split.index.
CIFAR10_STANDARD = [[0, 6, 4, 9, 1, 7], [7, 6, 4, 9, 0, 1], [1, 5, 7, 3, 9, 4], [8, 6, 1, 9, 0, 7], [2, 4, 1, 7, 9, 6]]
# CIFAR-10 splits 5-9: held-out partitions of the confirmatory study (conf/study/confirmatory.yaml), drawn with
# seed 35: [5, 9, 3, 0, 8, 2], [0, 2, 9, 7, 3, 8], [3, 0, 6, 9, 4, 7], [3, 5, 4, 6, 9, 0], [1, 9, 7, 0, 2, 8]
CIFAR10_KNOWN = CIFAR10_STANDARD + held_out_partitions(CIFAR10_STANDARD, classes=10, known=6, count=5, seed=35)
CIFAR_PLUS_KNOWN = [[4, 7, 9, 1], [6, 7, 1, 9], [9, 6, 1, 7], [6, 4, 9, 1], [1, 0, 9, 8]]
CIFAR_PLUS10_UNKNOWN = [
    [30, 25, 1, 9, 8, 0, 46, 52, 49, 71], [41, 9, 49, 40, 73, 60, 48, 30, 95, 71],
    [8, 9, 49, 40, 73, 60, 48, 95, 30, 71], [95, 60, 30, 73, 46, 49, 68, 99, 8, 71],
    [33, 2, 3, 97, 46, 21, 64, 63, 88, 43]]
_PLUS50_HEAD = [
    "27 94 29 77 88 26 69 48 75 5 59 93 39 57 45 40 78 20 98 47 "
    "66 70 91 76 41 83 99 32 53 72 2 95 21 73 84 68 35 11 55 60",
    "65 97 86 24 45 67 2 3 91 98 79 29 62 82 33 76 0 35 5 16 "
    "54 11 99 52 85 1 25 66 28 84 23 56 75 46 21 72 55 68 8 69",
    "20 83 65 97 94 2 93 16 67 29 62 33 24 98 5 86 35 54 0 91 "
    "52 66 85 84 56 11 1 76 25 55 21 99 72 41 23 75 28 68 69 46",
    "92 82 77 64 5 33 62 56 70 0 20 28 67 14 84 53 91 29 85 2 "
    "52 83 75 35 11 21 72 98 55 1 41 76 25 66 69 9 48 54 40 23",
    "47 6 19 0 62 93 59 65 54 70 34 55 23 38 72 76 53 31 78 96 "
    "77 27 92 18 82 50 98 32 1 75 83 4 51 35 80 11 74 66 36 42"]
CIFAR_PLUS50_UNKNOWN = [[int(v) for v in h.split()] + t for h, t in zip(_PLUS50_HEAD, CIFAR_PLUS10_UNKNOWN)]
TINYIMAGENET_KNOWN = [
    [108, 147, 17, 58, 193, 123, 72, 144, 75, 167, 134, 14, 81, 171, 44, 197, 152, 66, 1, 133],
    [198, 161, 91, 59, 57, 134, 61, 184, 90, 35, 29, 23, 199, 38, 133, 19, 186, 18, 85, 67],
    [177, 0, 119, 26, 78, 80, 191, 46, 134, 92, 31, 152, 27, 60, 114, 50, 51, 133, 162, 93],
    [98, 36, 158, 177, 189, 157, 170, 191, 82, 196, 138, 166, 43, 13, 152, 11, 75, 174, 193, 190],
    [95, 6, 145, 153, 0, 143, 31, 23, 189, 81, 20, 21, 89, 26, 36, 170, 102, 177, 108, 169]]
MNIST_KNOWN = [[2, 4, 5, 9, 8, 3], [3, 2, 6, 9, 4, 0], [5, 8, 3, 2, 4, 6], [3, 7, 8, 4, 0, 5], [6, 3, 4, 9, 8, 2]]
SVHN_KNOWN = [[5, 3, 7, 2, 8, 6], [3, 8, 7, 6, 2, 5], [8, 9, 4, 7, 2, 1], [3, 8, 2, 5, 0, 6], [4, 9, 2, 7, 1, 0]]


@dataclass(frozen=True)
class Benchmark:
    """A registry entry: where its images come from and how its splits are chosen, so the stages and tuning
    read behaviour from the entry instead of branching on names."""
    files: tuple[str, ...]          # keys of FILES it needs
    known: list[list[int]]          # the known classes of each split.index; empty: `pick_known` draws them
    unknown: list[list[int]] | None  # None: every test class that is not known
    classes: int | None             # classes of the normalised arrays (a stray one is an error); None: any number
    layout: Callable[[dict[str, dict[str, np.ndarray]]], dict[str, np.ndarray]] | None  # fetched files -> layout
    note: str = ""
    # as published, what check_params decides parameters against before any stage runs (() when not declared):
    # training images of each class of the normalised arrays (index = class), and the images' (height, width,
    # channels)
    train_sizes: tuple[int, ...] = ()
    image_shape: tuple[int, ...] = ()
    # the folder benchmark: its arrays read from data.root, its known classes from the split section
    read: Callable[[Data], tuple[dict[str, np.ndarray], dict]] | None = None
    pick_known: Callable[[Split, int, list[str]], list[int]] | None = None
    proxy: str | None = None        # tuning's proxy-unknown source, disjoint from the test classes; None: none
    proxy_keywords: bool = True     # drop proxy classes whose names mention a test class (names are words)

    @property
    def splits(self) -> int | None:
        """How many values split.index may take; None: any (seeded partitions)."""
        return None if self.pick_known else len(self.known)


def benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise OSRError(f"data.benchmark: unknown benchmark {name!r} (choose from {sorted(BENCHMARKS)})")
    return BENCHMARKS[name]


def split_classes(name: str, index: int, test_classes: np.ndarray, split: Split | None = None,
                  class_names: list[str] = ()) -> tuple[list[int], list[int]]:
    """Known and unknown class lists of split `index`, in the label space of the normalised arrays. A benchmark
    that draws its known classes (`pick_known`) reads params.yaml's `split` section and the class names."""
    b = benchmark(name)
    if b.pick_known:
        if split is None:
            raise OSRError(f"{name}: the known classes are drawn from params.yaml's split section; none given")
        known = b.pick_known(split, index, list(class_names))
    elif not 0 <= index < len(b.known):
        raise OSRError(f"split.index: {index} is out of range for {name} (0..{len(b.known) - 1})")
    else:
        known = list(b.known[index])
    unknown = list(b.unknown[index]) if b.unknown else sorted(set(test_classes.tolist()) - set(known))
    overlap = set(known) & set(unknown)
    if overlap:
        raise OSRError(f"split {name}/{index}: classes {sorted(overlap)} are both known and unknown")
    return known, unknown


# ---------------------------------------------------------------------------------------------- fetching

def fetch(key: str, workdir: Path, timeout: float = float(os.environ.get("OSR_DOWNLOAD_TIMEOUT", 15))
          ) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays of raw file `key` (mirror layout) and a provenance record; mirror first, then the canonical URL."""
    spec = FILES[key]
    mirror = mirror_dir() / spec.name
    if mirror.exists() and spec.sha256:
        digest = sha256(mirror)
        if digest != spec.sha256:
            raise OSRError(f"{mirror}: sha256 mismatch (got {digest[:16]}…, expected {spec.sha256[:16]}…)")
        return load_npz(mirror), {"file": spec.name, "source": str(mirror.resolve()), "sha256": digest}
    try:
        arrays = CANONICAL[key](workdir, timeout)
    except OSRError:
        raise
    except Exception as e:
        raise OSRError(
            f"{spec.name}: not in mirror {mirror.parent} (set {MIRROR_ENV} to the folder holding it) and "
            f"download from {spec.url} failed ({type(e).__name__}: {e})") from None
    return arrays, {"file": spec.name, "source": spec.url, "sha256": "verified by torchvision md5 / archive"}


def _download(url: str, dest: Path, timeout: float) -> Path:
    socket.setdefaulttimeout(timeout)
    with urllib.request.urlopen(url, timeout=timeout) as r, open(dest, "wb") as f:
        shutil.copyfileobj(r, f)
    return dest


def _canonical_cifar10(workdir: Path, timeout: float) -> dict[str, np.ndarray]:
    from torchvision.datasets import CIFAR10  # verifies the archive's md5
    socket.setdefaulttimeout(timeout)
    tr, te = CIFAR10(workdir, train=True, download=True), CIFAR10(workdir, train=False, download=True)
    return {"x_train": tr.data, "y_train": np.asarray(tr.targets), "x_test": te.data,
            "y_test": np.asarray(te.targets), "classes": np.asarray(tr.classes)}


def _canonical_cifar100(workdir: Path, timeout: float) -> dict[str, np.ndarray]:
    from torchvision.datasets import CIFAR100
    socket.setdefaulttimeout(timeout)
    te = CIFAR100(workdir, train=False, download=True)
    return {"x_test": te.data, "y_test": np.asarray(te.targets), "fine_label_names": np.asarray(te.classes)}


def _canonical_mnist(workdir: Path, timeout: float) -> dict[str, np.ndarray]:
    from torchvision.datasets import MNIST
    socket.setdefaulttimeout(timeout)
    tr, te = MNIST(workdir, train=True, download=True), MNIST(workdir, train=False, download=True)
    return {"x_train": tr.data.numpy(), "y_train": tr.targets.numpy(),
            "x_test": te.data.numpy(), "y_test": te.targets.numpy()}


def _canonical_svhn(workdir: Path, timeout: float) -> dict[str, np.ndarray]:
    from torchvision.datasets import SVHN  # verifies the .mat files' md5; label 10 ("0") is already mapped to 0
    socket.setdefaulttimeout(timeout)
    tr, te = SVHN(workdir, split="train", download=True), SVHN(workdir, split="test", download=True)
    return {"x_train": tr.data, "y_train": np.asarray(tr.labels), "x_test": te.data, "y_test": np.asarray(te.labels)}


def _canonical_tinyimagenet(workdir: Path, timeout: float) -> dict[str, np.ndarray]:
    """The official zip, re-packed as the mirror's JPEG-byte layout (train only for classes known somewhere)."""
    z = zipfile.ZipFile(_download(FILES["tinyimagenet"].url, workdir / "tin.zip", timeout))
    wnids = sorted(n.split("/")[2] for n in z.namelist() if n.count("/") == 3 and "/train/" in n and n.endswith("/"))
    index = {w: i for i, w in enumerate(wnids)}
    keep = sorted({c for s in TINYIMAGENET_KNOWN for c in s})
    train = [(n, index[n.split("/")[2]]) for n in sorted(z.namelist())
             if "/train/" in n and n.endswith(".JPEG") and index[n.split("/")[2]] in keep]
    ann = z.read("tiny-imagenet-200/val/val_annotations.txt").decode().splitlines()
    val = [(f"tiny-imagenet-200/val/images/{line.split()[0]}", index[line.split()[1]]) for line in ann]

    def pack(items):
        blobs = [np.frombuffer(z.read(n), np.uint8) for n, _ in items]
        off = np.r_[0, np.cumsum([len(b) for b in blobs])].astype(np.int64)
        return np.concatenate(blobs), off, np.asarray([c for _, c in items], np.int16)

    jt, ot, yt = pack(train)
    jv, ov, yv = pack(val)
    return {"jpeg_train": jt, "off_train": ot, "y_train": yt, "jpeg_val": jv, "off_val": ov, "y_val": yv,
            "wnids_sorted": np.asarray(wnids)}


CANONICAL: dict[str, Callable[[Path, float], dict[str, np.ndarray]]] = {
    "cifar10": _canonical_cifar10, "cifar100": _canonical_cifar100,
    "mnist": _canonical_mnist, "tinyimagenet": _canonical_tinyimagenet, "svhn": _canonical_svhn,
}


# ---------------------------------------------------------------------------------------------- decoding

def decode_jpegs(buf: np.ndarray, off: np.ndarray, workers: int = 2) -> np.ndarray:
    """Decode concatenated JPEG bytes to uint8 [N, H, W, 3]. Pillow releases the GIL while decoding."""
    def one(i: int) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(buf[off[i]:off[i + 1]].tobytes())).convert("RGB"))

    try:
        with ThreadPoolExecutor(workers) as ex:
            return np.stack(list(ex.map(one, range(len(off) - 1), chunksize=512)))
    except (OSError, ValueError) as e:
        raise OSRError(f"JPEG decoding failed ({e})") from None



def _cifar10_layout(raw: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    c = raw["cifar10"]
    if "jpeg_train" in c:
        c = {**c, "x_train": decode_jpegs(c["jpeg_train"], c["off_train"]),
             "x_test": decode_jpegs(c["jpeg_test"], c["off_test"])}
    return {"x_train": c["x_train"], "y_train": c["y_train"], "x_test": c["x_test"], "y_test": c["y_test"],
            "class_names": np.asarray(c["classes"]).astype(str)}


def _cifar_plus_layout(raw: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """CIFAR-10 with the CIFAR-100 test images appended as classes 10 + fine_label."""
    out, p = _cifar10_layout(raw), raw["cifar100"]
    out["x_test"] = np.concatenate([out["x_test"], p["x_test"]])
    out["y_test"] = np.concatenate([out["y_test"], 10 + np.asarray(p["y_test"], np.int64)])
    out["class_names"] = np.concatenate([out["class_names"], np.asarray(p["fine_label_names"]).astype(str)])
    return out


def _mnist_layout(raw: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    m = raw["mnist"]
    return {"x_train": m["x_train"][..., None], "y_train": m["y_train"], "x_test": m["x_test"][..., None],
            "y_test": m["y_test"], "class_names": np.asarray([str(i) for i in range(10)])}


def _svhn_layout(raw: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    v = raw["svhn"]  # torchvision layout [N, C, H, W]
    return {"x_train": np.ascontiguousarray(v["x_train"].transpose(0, 2, 3, 1)), "y_train": v["y_train"],
            "x_test": np.ascontiguousarray(v["x_test"].transpose(0, 2, 3, 1)), "y_test": v["y_test"],
            "class_names": np.asarray([str(i) for i in range(10)])}


def _tinyimagenet_layout(raw: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    t = raw["tinyimagenet"]
    return {"x_train": decode_jpegs(t["jpeg_train"], t["off_train"]), "y_train": t["y_train"],
            "x_test": decode_jpegs(t["jpeg_val"], t["off_val"]), "y_test": t["y_val"],
            "class_names": np.asarray(t["wnids_sorted"]).astype(str)}


_PLUS_NOTE = "mirror CIFAR-100 holds 916 test images: smoke only, not comparable to papers"
_TIN_PROXY = "tinyimagenet-val"
_CIFAR10_TRAIN = (5000,) * 10
BENCHMARKS = {
    "cifar10": Benchmark(("cifar10",), CIFAR10_KNOWN, None, 10, _cifar10_layout,
                         "mirror CIFAR-10 is JPEG q75: accuracy slightly below papers", _CIFAR10_TRAIN, (32, 32, 3),
                         proxy=_TIN_PROXY),
    "cifar_plus10": Benchmark(("cifar10", "cifar100"), CIFAR_PLUS_KNOWN,
                              [[10 + c for c in u] for u in CIFAR_PLUS10_UNKNOWN], 110, _cifar_plus_layout,
                              _PLUS_NOTE, _CIFAR10_TRAIN, (32, 32, 3), proxy=_TIN_PROXY),
    "cifar_plus50": Benchmark(("cifar10", "cifar100"), CIFAR_PLUS_KNOWN,
                              [[10 + c for c in u] for u in CIFAR_PLUS50_UNKNOWN], 110, _cifar_plus_layout,
                              _PLUS_NOTE, _CIFAR10_TRAIN, (32, 32, 3), proxy=_TIN_PROXY),
    "mnist": Benchmark(("mnist",), MNIST_KNOWN, None, 10, _mnist_layout, "",
                       (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949), (28, 28, 1), proxy=_TIN_PROXY,
                       proxy_keywords=False),
    "svhn": Benchmark(("svhn",), SVHN_KNOWN, None, 10, _svhn_layout,
                      "not in the mirror: downloaded (torchvision checks the md5)",
                      (4948, 13861, 10585, 8497, 7458, 6882, 5727, 5595, 5045, 4659), (32, 32, 3)),
    "tinyimagenet": Benchmark(("tinyimagenet",), TINYIMAGENET_KNOWN, None, 200, _tinyimagenet_layout,
                              "test = the 10,000 val images; train holds the 80 classes known in some split",
                              (500,) * 200, (64, 64, 3)),
    "folder": Benchmark((), [], None, None, None, "your images: data.root (docs/own-data.md)",
                        read=folder.read_folder, pick_known=folder.pick_known),
}


def normalise(name: str, raw: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Turn the fetched files of benchmark `name` into the common layout."""
    out = benchmark(name).layout(raw)
    out["y_train"] = np.asarray(out["y_train"], np.int64)
    out["y_test"] = np.asarray(out["y_test"], np.int64)
    check_arrays(out, name, name)
    return out


def load(name: str, section: Data, workdir: Path) -> tuple[dict[str, np.ndarray], list[dict]]:
    """The common layout of benchmark `name` (params.yaml's `data` section) and the provenance of its sources:
    fetched, verified and decoded files resized to data.image_size, or the folder at data.root."""
    b = benchmark(name)
    if b.read:
        arrays, source = b.read(section)
        check_arrays(arrays, section.root, name)
        return arrays, [source]
    fetched, sources = {}, []
    for key in b.files:
        print(f"download: {key} …", flush=True)
        fetched[key], prov = fetch(key, workdir)
        sources.append(prov)
    return downsample(normalise(name, fetched), section.image_size), sources


def downsample(arrays: dict[str, np.ndarray], size: int, chunk: int = 4096) -> dict[str, np.ndarray]:
    """`arrays` with x_train/x_test resized to size x size (torchvision, bilinear with antialiasing); 0: unchanged.
    A CPU budget's way to a second benchmark: Tiny-ImageNet at 32 x 32 costs a quarter of its native 64 x 64."""
    if not size:
        return arrays
    h, w = arrays["x_train"].shape[1:3]
    if size > min(h, w):
        raise OSRError(f"data.image_size: {size} is larger than the {h}x{w} images (0 keeps them as they are)")

    def one(x: np.ndarray) -> np.ndarray:
        parts = [TF.resize(torch.from_numpy(x[i:i + chunk]).permute(0, 3, 1, 2), [size, size], antialias=True)
                 for i in range(0, len(x), chunk)]
        return torch.cat(parts).permute(0, 2, 3, 1).contiguous().numpy()
    return {**arrays, "x_train": one(arrays["x_train"]), "x_test": one(arrays["x_test"])}


def check_arrays(d: dict[str, np.ndarray], where: str, bench: str) -> None:
    """Shape/dtype/label checks on the common layout of benchmark `bench`; one-line errors naming the array."""
    names, expected = d.get("class_names"), benchmark(bench).classes
    # a stray class would silently join the unknown test set
    if names is None or (expected is not None and len(names) != expected):
        raise OSRError(f"{where}: class_names holds {'no' if names is None else len(names)} classes, "
                       f"benchmark {bench} has {expected} (data.benchmark)")
    for part in ("train", "test"):
        x, y = d.get(f"x_{part}"), d.get(f"y_{part}")
        if x is None or y is None:
            raise OSRError(f"{where}: missing x_{part}/y_{part}")
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[3] not in (1, 3):
            raise OSRError(f"{where}: x_{part} must be uint8 [N, H, W, 1|3], got {x.dtype} {list(x.shape)}")
        if y.ndim != 1:
            raise OSRError(f"{where}: y_{part} must be 1-D, got shape {list(y.shape)}")
        if len(y) != len(x):
            raise OSRError(f"{where}: x_{part} holds {len(x)} images but y_{part} {len(y)} labels")
        n_cls = len(d["class_names"])
        if len(y) and (y.min() < 0 or y.max() >= n_cls):
            raise OSRError(f"{where}: y_{part} labels out of range [0, {n_cls - 1}] (min {y.min()}, max {y.max()})")
