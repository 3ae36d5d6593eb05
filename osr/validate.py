"""Great-expectations suite for the split manifest: leakage, label ranges, counts, image dtype/shape."""
from __future__ import annotations

import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import pandas as pd  # noqa: E402


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


def validate_manifest(df: pd.DataFrame, known: list[int], unknown: list[int]) -> tuple[bool, dict, list[str]]:
    """Run the suite in a fresh ephemeral context; returns (success, description, failed expectation names)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (ctx.data_sources.add_pandas("manifests").add_dataframe_asset("split_manifest")
             .add_batch_definition_whole_dataframe("whole"))
    suite = ctx.suites.add(gx.ExpectationSuite(name="manifest"))
    for exp in manifest_expectations(known, unknown):
        suite.add_expectation(exp)
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name="manifest", data=batch, suite=suite))
    res = vd.run(batch_parameters={"dataframe": df}, result_format="SUMMARY")
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
