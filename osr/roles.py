"""The split as the stages after it read it: the images of each role (train / val / test) as tensors, from the
download stage's arrays and the split's manifest (drawing the split: osr/split.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from osr import OSRError
from osr.io import load_npz
from osr.paths import MANIFEST, RAW


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
