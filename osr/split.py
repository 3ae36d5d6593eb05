"""Drawing the split manifest: one row per image with its role (train / val / test) and remapped label (the
stages after the split read it through osr/roles.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from osr import OSRError


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
