"""Small ImageFolder trees written from the dataset mirror's MNIST (PNG files), for the folder benchmark's tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from conftest import MIRROR


def write_image_folder(root: Path, classes: int = 4, per_class: int = 30, layout: str = "tree",
                       start: int = 0) -> Path:
    """`root`/<digit name>/<i>.png (layout tree) or root/{train,test}/<digit name>/… (layout parts): `per_class`
    MNIST training images of each of the first `classes` digits, taken from index `start` on."""
    with np.load(MIRROR / "mnist.npz") as z:
        x, y = z["x_train"], z["y_train"]
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    for c in range(classes):
        idx = np.flatnonzero(y == c)[start:start + per_class]
        for i, j in enumerate(idx):
            part = ("train" if i < 0.8 * per_class else "test") if layout == "parts" else ""
            folder = root / part / names[c]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[j]).save(folder / f"{i:03d}.png")
    return root
