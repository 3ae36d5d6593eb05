"""The split manifest: one row per image with its role (train / val / test) and remapped label."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from osr import OSRError
from osr.io import load_npz
from osr.paths import MANIFEST, RAW


def _per_class(idx: np.ndarray, y: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """At most `limit` indices per class (0 = all), sampled without replacement."""
    if not limit:
        return idx
    keep = [rng.choice(idx[y[idx] == c], min(limit, int((y[idx] == c).sum())), replace=False)
            for c in np.unique(y[idx])]
    return np.sort(np.concatenate(keep))


def _train_val(y_train: np.ndarray, known: list[int], val_fraction: float, seed: int, train_per_class: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the known classes' training and (stratified) validation images."""
    tr = _per_class(np.flatnonzero(np.isin(y_train, known)), y_train, train_per_class, rng)
    missing = sorted(set(known) - set(np.unique(y_train[tr]).tolist()))
    if missing:
        raise OSRError(f"split: known classes {missing} have no training images")
    try:
        return train_test_split(tr, test_size=val_fraction, stratify=y_train[tr], random_state=seed)
    except ValueError as e:  # fewer validation images than classes
        raise OSRError(f"split.val_fraction: {val_fraction} of {len(tr)} images cannot hold every known class "
                       f"({str(e).splitlines()[0]})") from None


def train_class_sizes(class_sizes: dict[int, int], known: list[int], val_fraction: float, seed: int,
                      train_per_class: int) -> dict[int, int]:
    """Training images per known class that `make_manifest` will select from a train set of `class_sizes` images
    per class: decided from the sizes alone (the selection depends on the counts, not the images)."""
    y = np.repeat(np.array(sorted(class_sizes)), [class_sizes[c] for c in sorted(class_sizes)])
    tr, _ = _train_val(y, known, val_fraction, seed, train_per_class, np.random.default_rng(seed))
    classes, counts = np.unique(y[tr], return_counts=True)
    return dict(zip(classes.tolist(), counts.tolist()))


def make_manifest(y_train: np.ndarray, y_test: np.ndarray, known: list[int], unknown: list[int],
                  val_fraction: float, seed: int, train_per_class: int = 0, test_per_class: int = 0,
                  image_shape: tuple[int, int, int] = (32, 32, 3), dtype: str = "uint8") -> pd.DataFrame:
    """Known classes are remapped to 0..K-1 in list order; unknown test images get label -1."""
    rng = np.random.default_rng(seed)
    remap = {c: i for i, c in enumerate(known)}
    tr, va = _train_val(y_train, known, val_fraction, seed, train_per_class, rng)
    te = _per_class(np.flatnonzero(np.isin(y_test, known + unknown)), y_test, test_per_class, rng)
    rows = []
    for role, source, idx, y in (("train", "train", np.sort(tr), y_train), ("val", "train", np.sort(va), y_train),
                                 ("test", "test", te, y_test)):
        rows.append(pd.DataFrame({"role": role, "source": source, "index": idx, "orig_class": y[idx],
                                  "label": [remap.get(int(c), -1) for c in y[idx]]}))
    df = pd.concat(rows, ignore_index=True)
    df.insert(0, "sample_id", np.arange(len(df)))
    df["src_key"] = df["source"] + ":" + df["index"].astype(str)
    df["height"], df["width"], df["channels"] = image_shape
    df["dtype"] = dtype
    return df


def read_manifest(path: Path) -> pd.DataFrame:
    if not Path(path).is_file():
        raise OSRError(f"{path}: file not found (run the split stage, or `dvc repro`, first)")
    return pd.read_csv(path)


@dataclass
class SplitTensors:
    """The images of one split, held once as uint8 [N, C, H, W] on the device, labels as int64."""
    x: dict[str, torch.Tensor]
    y: dict[str, torch.Tensor]
    num_classes: int
    names: list[str] = field(default_factory=list)  # class name of each known label, when the raw file has them

    @classmethod
    def from_arrays(cls, raw: dict[str, np.ndarray], manifest: pd.DataFrame, device: torch.device,
                    roles: tuple[str, ...] = ("train", "val", "test")) -> SplitTensors:
        x, y = {}, {}
        for role in roles:
            rows = manifest[manifest.role == role]
            parts = [torch.from_numpy(raw[f"x_{src}"][grp["index"].to_numpy()])
                     for src, grp in rows.groupby("source", sort=True)]
            x[role] = torch.cat(parts).permute(0, 3, 1, 2).contiguous().to(device)
            labels = [grp["label"].to_numpy() for _, grp in rows.groupby("source", sort=True)]
            y[role] = torch.from_numpy(np.concatenate(labels).astype(np.int64)).to(device)
        known = manifest.loc[manifest.label >= 0, ["label", "orig_class"]].drop_duplicates().sort_values("label")
        names = [str(raw["class_names"][c]) for c in known.orig_class] if "class_names" in raw else []
        return cls(x, y, int(known.label.max()) + 1, names)


def check_images(raw: dict[str, np.ndarray], manifest: pd.DataFrame, where: Path = RAW) -> None:
    """The images are those the manifest was made from: its dtype and image shape, every index it names (a stage
    run by hand after the arrays changed would otherwise train on, say, float32 images)."""
    first = manifest.iloc[0]
    dtype, shape = str(first["dtype"]), [int(first["height"]), int(first["width"]), int(first["channels"])]
    for source, rows in manifest.groupby("source", sort=True):
        x = raw[f"x_{source}"]
        if str(x.dtype) != dtype or list(x.shape[1:]) != shape:
            raise OSRError(f"{where}: x_{source} holds {x.dtype} images of shape {list(x.shape[1:])}, the split "
                           f"manifest {MANIFEST} was made from {dtype} {shape} (rerun `dvc repro`)")
        if int(rows["index"].max()) >= len(x):
            raise OSRError(f"{where}: x_{source} holds {len(x)} images, the split manifest {MANIFEST} names image "
                           f"{int(rows['index'].max())} (rerun `dvc repro`)")


def load_split(device: torch.device, roles: tuple[str, ...]) -> SplitTensors:
    """The images of `roles` from the pipeline's outputs: the download stage's arrays, the split's manifest."""
    raw, manifest = load_npz(RAW, ("x_train", "y_train", "x_test", "y_test")), read_manifest(MANIFEST)
    check_images(raw, manifest)
    return SplitTensors.from_arrays(raw, manifest, device, roles)
