"""The mirror's benchmarks decode to the common layout and the standard splits index the right classes."""
import numpy as np
import pytest

from conftest import MIRROR
from osr import OSRError
from osr.data import (
    BENCHMARKS,
    benchmark,
    downsample,
    fetch,
    held_out_partitions,
    normalise,
    split_classes,
)
from osr.paths import benchmark_label

pytestmark = pytest.mark.skipif(not (MIRROR / "mnist.npz").exists(), reason=f"no dataset mirror at {MIRROR}")


def _load(name, tmp_path):
    return normalise(name, {k: fetch(k, tmp_path)[0] for k in benchmark(name).files})


def test_mnist_layout_and_splits(tmp_path):
    d = _load("mnist", tmp_path)
    assert d["x_train"].shape == (60000, 28, 28, 1) and d["x_test"].shape == (10000, 28, 28, 1)
    assert d["x_train"].dtype == np.uint8 and np.bincount(d["y_test"]).tolist()[:2] == [980, 1135]
    known, unknown = split_classes("mnist", 0, d["y_test"])
    assert known == [2, 4, 5, 9, 8, 3] and unknown == [0, 1, 6, 7]


def test_tinyimagenet_split0_names_and_layout(tmp_path):
    d = _load("tinyimagenet", tmp_path)
    assert d["x_test"].shape == (10000, 64, 64, 3) and d["x_train"].shape == (40000, 64, 64, 3)
    known, unknown = split_classes("tinyimagenet", 0, d["y_test"])
    names = d["class_names"]
    # methods.md §2 sanity check: split 0 begins n03447447, n04179913, n01950731 and ends n01629819, n03977966
    assert [names[c] for c in known[:3]] == ["n03447447", "n04179913", "n01950731"]
    assert [names[c] for c in known[-2:]] == ["n01629819", "n03977966"]
    assert len(unknown) == 180 and set(np.unique(d["y_train"])) >= set(known)
    small = downsample(d, 32)  # benchmark tinyimagenet32: the same images and labels at a quarter of the pixels
    assert small["x_test"].shape == (10000, 32, 32, 3) and small["x_test"].dtype == np.uint8
    assert small["y_test"] is d["y_test"] and abs(small["x_test"].mean() - d["x_test"].mean()) < 0.5


def test_downsample_averages_blocks_and_refuses_to_upsample():
    x = np.zeros((3, 8, 8, 3), np.uint8)
    x[:, :4] = 200  # top half bright: after 8 -> 4 the outer rows keep their value, the edge is blurred between
    d = {"x_train": x, "x_test": x[:1], "y_train": np.arange(3)}
    out = downsample(d, 4)
    rows = out["x_train"][0, :, 0, 0].tolist()
    assert out["x_train"].shape == (3, 4, 4, 3) and rows[0] == 200 and rows[3] == 0 and 200 > rows[1] > rows[2] > 0
    assert out["x_test"].shape == (1, 4, 4, 3)
    assert downsample(d, 0) is d and benchmark_label("tinyimagenet", 32) == "tinyimagenet32"
    with pytest.raises(OSRError, match=r"data.image_size: 16 is larger than the 8x8 images"):
        downsample(d, 16)


def test_cifar_plus_label_space(tmp_path):
    d = _load("cifar_plus10", tmp_path)
    known, unknown = split_classes("cifar_plus10", 0, d["y_test"])
    assert known == [4, 7, 9, 1] and unknown[:3] == [40, 35, 11]  # CIFAR-100 30, 25, 1 offset by 10
    assert len(d["class_names"]) == 110 and d["y_test"].max() < 110
    assert (np.isin(d["y_test"], unknown)).sum() > 50  # the partial CIFAR-100 test set: smoke only


def test_unknown_benchmark_and_split_index():
    with pytest.raises(OSRError, match="data.benchmark: unknown benchmark 'svhn2'"):
        benchmark("svhn2")
    with pytest.raises(OSRError, match="split.index: 10 is out of range"):
        split_classes("cifar10", 10, np.arange(10))
    assert set(BENCHMARKS) == {"cifar10", "cifar_plus10", "cifar_plus50", "mnist", "svhn", "tinyimagenet", "folder"}


def test_svhn_from_torchvision_layout_and_its_splits():
    """SVHN is not in the mirror (download only): the torchvision arrays [N, C, H, W] become the common layout."""
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (12, 3, 32, 32), dtype=np.uint8), np.arange(12) % 10
    d = normalise("svhn", {"svhn": {"x_train": x, "y_train": y, "x_test": x[:4], "y_test": y[:4]}})
    assert d["x_train"].shape == (12, 32, 32, 3) and (d["x_train"][5, :, :, 1] == x[5, 1]).all()
    known, unknown = split_classes("svhn", 0, np.arange(10))
    assert known == [5, 3, 7, 2, 8, 6] and unknown == [0, 1, 4, 9]


def test_cifar10_held_out_partitions_are_new():
    """Splits 5-9 (the confirmatory study's): six known classes each, distinct from splits 0-4 (of which 0 and 1
    hold the same classes in another order) and from each other."""
    sets = [frozenset(k) for k in BENCHMARKS["cifar10"].known]
    new = sets[5:]
    assert len(sets) == 10 and len(set(new)) == 5 and not set(new) & set(sets[:5])
    assert all(len(k) == 6 and len(s) == 6 and s <= set(range(10)) for k, s in zip(BENCHMARKS["cifar10"].known, sets))
    assert BENCHMARKS["cifar10"].known[5:] == held_out_partitions(BENCHMARKS["cifar10"].known[:5], 10, 6, 5, seed=35)
