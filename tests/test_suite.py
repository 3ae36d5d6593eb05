"""The benchmark-grid runner's recipe and split grammar (the queue itself runs in test_report)."""
import pytest

from flows.suite import SUITES, grid, parse_splits, recipe_overrides
from osr import OSRError


def test_recipes_map_to_parameter_overrides():
    assert recipe_overrides("asym-cutmix") == ["distill.method=asym", "augment.method=cutmix"]
    assert recipe_overrides("movr-none@movr") == ["distill.method=movr", "augment.method=none", "teacher.loss=movr"]
    with pytest.raises(OSRError, match="recipe 'asym'"):
        recipe_overrides("asym")


def test_splits_and_grid():
    assert parse_splits("0-4") == [0, 1, 2, 3, 4] and parse_splits("1,3") == [1, 3]
    with pytest.raises(OSRError, match="--splits"):
        parse_splits("0..4")
    cells = grid("quick", ["cifar10", "mnist"], [0, 1], SUITES["quick"] + ["movr-none@movr"])
    names = [n for n, _ in cells]
    assert len(cells) == 16 and len(set(names)) == 16
    assert ("quick-mnist-s1-asym-cutmix", ["profile=quick", "benchmark=mnist", "split.index=1",
                                           "distill.method=asym", "augment.method=cutmix"]) in cells
    assert "quick-cifar10-s0-movr-none-tmovr" in names


def test_the_report_counts_suite_cells_and_not_ad_hoc_experiments():
    import re

    from stages.report import SUITE_NAMES

    names = [n for n, _ in grid("paper", ["cifar_plus10", "tinyimagenet"], [0, 4], ["asym-gradmix", "movr-none@movr"])]
    assert all(re.search(SUITE_NAMES, n) for n in names)
    assert not any(re.search(SUITE_NAMES, n) for n in ["tau4", "asym-e8", "quick-cifar10-s0"])
