"""The folder benchmark's ingest: an ImageFolder tree (PNG files written from the mirror's MNIST) read into the
common layout, and each refusal as one line naming the file, with nothing written."""
from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ROOT, compose, composed, needs_mirror, sh, venv_env, write_image_folder
from osr import OSRError
from osr.config import Data, Split
from osr.data import check_arrays, load, split_classes
from osr.expectations import check_class_counts

pytestmark = needs_mirror


def section(root: Path, size: int = 32, test_fraction: float = 0.2) -> Data:
    return replace(composed(["benchmark=folder"]).data, root=str(root), image_size=size, test_fraction=test_fraction)


def split(known: list[str], num_known: int) -> Split:
    return replace(composed(["benchmark=folder"]).split, known=known, num_known=num_known)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("tree") / "imgs")


def test_a_tree_is_read_resized_and_held_out_by_path(tree, tmp_path):
    arrays, (source,) = load("folder", section(tree), tmp_path)
    assert list(arrays["class_names"]) == ["one", "three", "two", "zero"]  # sorted folder names, as ImageFolder
    assert arrays["x_train"].shape == (96, 32, 32, 3) and arrays["x_test"].shape == (24, 32, 32, 3)
    assert np.bincount(arrays["y_test"]).tolist() == [6, 6, 6, 6]  # 20 % of each class's 30 images
    assert not set(arrays["files_train"]) & set(arrays["files_test"])
    assert source["images"] == 120 and source["classes"] == 4
    check_arrays(arrays, str(tree), "folder")
    again, _ = load("folder", section(tree), tmp_path)
    assert all(np.array_equal(arrays[k], again[k]) for k in arrays)


def test_train_and_test_folders_are_kept_as_given(tmp_path):
    root = write_image_folder(tmp_path / "parts", classes=3, per_class=20, layout="parts")
    arrays, (source,) = load("folder", section(root, size=28), tmp_path)
    assert arrays["x_train"].shape == (48, 28, 28, 3) and arrays["x_test"].shape == (12, 28, 28, 3)
    assert all(f.startswith("test/") for f in arrays["files_test"]) and source["layout"] == "train/ and test/"


def test_known_classes_by_name_or_drawn_by_index(tree, tmp_path):
    arrays, _ = load("folder", section(tree), tmp_path)
    names, y = list(arrays["class_names"]), arrays["y_test"]
    assert split_classes("folder", 0, y, split(["two", "zero"], 0), names) == ([2, 3], [0, 1])
    drawn = [split_classes("folder", i, y, split([], 3), names)[0] for i in range(4)]
    assert all(len(k) == 3 for k in drawn) and len({tuple(k) for k in drawn}) > 1  # seeded by split.index
    assert drawn[0] == split_classes("folder", 0, y, split([], 3), names)[0]


def test_leaves_out_an_unreadable_image_in_one_line(tmp_path, capsys):
    root = write_image_folder(tmp_path / "imgs", classes=2, per_class=12)
    (root / "one" / "004.png").write_bytes(b"\x89PNG truncated")
    arrays, (source,) = load("folder", section(root), tmp_path)
    assert "folder: skipped 1 file that is not an image in a class folder (one/004.png)" in capsys.readouterr().err
    assert source["images"] == 23 and "one/004.png" not in {*arrays["files_train"], *arrays["files_test"]}


def test_refuses_an_empty_folder(tmp_path):
    (tmp_path / "imgs" / "cat").mkdir(parents=True)
    (tmp_path / "imgs" / "cat" / "notes.txt").write_text("not an image")
    with pytest.raises(OSRError, match=r"imgs: no images \(expected <root>/<class>/<image>"):
        load("folder", section(tmp_path / "imgs"), tmp_path)
    with pytest.raises(OSRError, match="data.root: .*missing is not a folder"):
        load("folder", section(tmp_path / "missing"), tmp_path)


def test_refuses_a_known_class_that_does_not_exist(tree, tmp_path):
    arrays, _ = load("folder", section(tree), tmp_path)
    with pytest.raises(OSRError, match="split.known: no class folder 'cat' \\(classes: one, three, two, zero\\)"):
        split_classes("folder", 0, arrays["y_test"], split(["one", "cat"], 0),
                      list(arrays["class_names"]))
    with pytest.raises(OSRError, match="split.num_known: 4 leaves no unknown class"):
        split_classes("folder", 0, arrays["y_test"], split([], 4), list(arrays["class_names"]))


def test_refuses_a_class_with_fewer_images_than_the_split_needs(tmp_path):
    root = write_image_folder(tmp_path / "imgs", classes=3, per_class=12)
    for f in sorted((root / "two").iterdir())[3:]:
        f.unlink()  # 3 images: 2 to train, 1 to test; a 0.1 validation share needs 10 training images
    arrays, _ = load("folder", section(root), tmp_path)
    names = list(arrays["class_names"])
    assert names == ["one", "two", "zero"]
    args = (arrays["y_train"], arrays["y_test"], [0, 1], [2], 0.1, names, str(root))
    with pytest.raises(OSRError, match=r"imgs/two: 2 train images, the split needs 10 \(split.val_fraction 0.1\)"):
        check_class_counts(*args)
    check_class_counts(arrays["y_train"], arrays["y_test"], [0, 1], [2], 0.5, names, str(root))  # needs 2


def test_the_download_stage_refuses_in_one_line_and_writes_nothing(tmp_path):
    root = tmp_path / "imgs"
    (root / "zero").mkdir(parents=True)
    (root / "zero" / "007.png").write_bytes(b"")
    params = compose(ROOT / "conf", ["profile=tiny", "benchmark=folder", f"data.root={root}"])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    res = sh([str(Path(venv_env()["PATH"].split(":")[0]) / "python"), "-m", "stages.download"], tmp_path,
             check=False, env=venv_env(PYTHONPATH=str(ROOT)))
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [f"error: {root}: no images (expected <root>/<class>/<image>; skipped 1"
                                               " file that is not an image in a class folder (zero/007.png))"]
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*.npz"))
    shutil.rmtree(root)


@pytest.mark.parametrize("overrides,message", [
    (["split.known=[cat]"], "split.known names the classes of a folder benchmark only"),
    (["evaluate.deploy_score=odin"], "evaluate.deploy_score must be one of"),
    (["evaluate.known_tpr=0"], "evaluate.known_tpr must be > 0"),
    (["benchmark=folder", "split.known=[1]"], "split.known must be a list of names"),
])
def test_params_of_the_folder_benchmark_and_the_export_are_checked(overrides, message):
    from osr.config import validate

    with pytest.raises(OSRError, match=message):
        validate(compose(ROOT / "conf", overrides))
    assert validate(compose(ROOT / "conf", ["benchmark=folder", "split.index=99"])).split.index == 99
    for deploy in ("knn", "energy"):  # any registered score ships, whether evaluate scores it or not
        assert validate(compose(ROOT / "conf", [f"evaluate.deploy_score={deploy}", "evaluate.scores=[mls]"]))
