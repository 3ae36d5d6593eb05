"""Great-expectations suites: the split manifest (leakage, label ranges, counts, image dtype/shape), and a folder
benchmark's image files and classes (what the ingest refuses in one line naming the file)."""
from __future__ import annotations

import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import math  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from osr import OSRError  # noqa: E402


def manifest_expectations(known: list[int], unknown: list[int]) -> list:
    import great_expectations as gx

    e = gx.expectations
    k = len(known)
    return [
        e.ExpectColumnValuesToBeUnique(column="sample_id"),
        e.ExpectColumnValuesToBeUnique(column="src_key"),  # train ∩ val = ∅, no image twice
        e.ExpectColumnValuesToBeInSet(column="role", value_set=["train", "val", "test"]),
        e.ExpectColumnValuesToBeBetween(column="label", min_value=-1, max_value=k - 1),
        e.ExpectColumnValuesToBeInSet(column="orig_class", value_set=known,  # no unknowns in train/val
                                      row_condition='role != "test"', condition_parser="pandas"),
        e.ExpectColumnValuesToNotBeInSet(column="orig_class", value_set=unknown,  # known ∩ unknown = ∅
                                         row_condition="label >= 0", condition_parser="pandas"),
        e.ExpectColumnValuesToBeInSet(column="orig_class", value_set=unknown,
                                      row_condition="label == -1", condition_parser="pandas"),
        e.ExpectColumnDistinctValuesToEqualSet(column="label", value_set=list(range(k)),  # no empty class
                                               row_condition='role == "train"', condition_parser="pandas"),
        e.ExpectColumnDistinctValuesToEqualSet(column="label", value_set=list(range(-1, k)),
                                               row_condition='role == "test"', condition_parser="pandas"),
        e.ExpectColumnDistinctValuesToEqualSet(column="label", value_set=list(range(k)),
                                               row_condition='role == "val"', condition_parser="pandas"),
        e.ExpectColumnValuesToBeInSet(column="dtype", value_set=["uint8"]),
        e.ExpectColumnValuesToBeInSet(column="channels", value_set=[1, 3]),
        e.ExpectColumnValuesToBeBetween(column="height", min_value=8, max_value=512),
    ]


def run_suite(name: str, asset: str, df: pd.DataFrame, expectations: list, result_format: str = "SUMMARY"):
    """Validate `df` (data asset `asset`) against suite `name` of `expectations` in a fresh ephemeral context;
    the GX validation result."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (ctx.data_sources.add_pandas(f"{name}s").add_dataframe_asset(asset)
             .add_batch_definition_whole_dataframe("whole"))
    suite = ctx.suites.add(gx.ExpectationSuite(name=name))
    for exp in expectations:
        suite.add_expectation(exp)
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    return vd.run(batch_parameters={"dataframe": df}, result_format=result_format)


def validate_manifest(df: pd.DataFrame, known: list[int], unknown: list[int]) -> tuple[bool, dict, list[str]]:
    """Run the manifest suite; returns (success, description, failed expectation names)."""
    res = run_suite("manifest", "split_manifest", df, manifest_expectations(known, unknown))
    failed = []
    for r in res.results:
        if not r.success:
            cfg = r.expectation_config
            cond = cfg.kwargs.get("row_condition")
            if isinstance(cond, dict):  # GX 1.x serialises pandas conditions as a pass-through filter
                cond = cond.get("pass_through_filter", str(cond))
            where = f", where {cond}" if cond else ""
            failed.append(f"{cfg.type}(column={cfg.kwargs.get('column')}{where})")
    return bool(res.success), res.describe_dict(), failed


def first_failure(name: str, df: pd.DataFrame, expectations: list) -> tuple[str | None, int | None] | None:
    """(column, first offending row) of the first of `expectations` that `df` fails, both None for a table-level
    expectation; None when all pass. What the ingest refuses, in one line naming the row's file."""
    res = run_suite(name, name, df, expectations, "COMPLETE")
    failed = {(r.expectation_config.type, r.expectation_config.kwargs.get("column")): r
              for r in res.results if not r.success}
    for exp in expectations:  # in the order given, whatever order GX reports them in
        column = getattr(exp, "column", None)
        r = failed.get((exp.expectation_type, column))
        if r is not None:
            return column, ((r.result or {}).get("unexpected_index_list") or [None])[0]
    return None


def image_expectations() -> list:
    """The images of a folder benchmark (one row each, the files that decode as images): at least one."""
    import great_expectations as gx

    return [gx.expectations.ExpectTableRowCountToBeBetween(min_value=1)]


def class_expectations(need_train: int) -> list:
    """The classes of a split (one row each: role known | unknown, train and test image counts): each known
    class has `need_train` training images, each class one test image."""
    import great_expectations as gx

    e = gx.expectations
    return [e.ExpectColumnValuesToBeBetween(column="train", min_value=need_train,
                                            row_condition='role == "known"', condition_parser="pandas"),
            e.ExpectColumnValuesToBeBetween(column="test", min_value=1)]


def check_class_counts(y_train: np.ndarray, y_test: np.ndarray, known: list[int], unknown: list[int],
                       val_fraction: float, class_names: list[str], where: str) -> None:
    """Refuse (one line naming `<where>/<class>`) a class with fewer images than the split needs: a known class
    needs enough training images that the stratified validation split gets one of each (at least two), every
    class one test image. Checked by the great-expectations suite `class_expectations`."""
    need = max(2, math.ceil(round(1 / val_fraction, 6)))
    classes = known + unknown
    df = pd.DataFrame({"role": ["known"] * len(known) + ["unknown"] * len(unknown),
                       "train": np.bincount(y_train, minlength=len(class_names))[classes],
                       "test": np.bincount(y_test, minlength=len(class_names))[classes]})
    failure = first_failure("classes", df, class_expectations(need))
    if failure:
        part, row = failure
        needed = f"{need} (split.val_fraction {val_fraction})" if part == "train" else "1"
        raise OSRError(f"{where}/{class_names[classes[row]]}: {df[part][row]} {part} images, the split needs "
                       f"{needed}")
