"""Stage split: known/unknown classes (a folder benchmark's checked for enough images), stratified validation split,
manifest validated by great-expectations."""
from __future__ import annotations

from stages import answer_help

answer_help(__name__, __spec__, __doc__)  # --help answers here, before the imports below load torch

from typing import TYPE_CHECKING

from osr import OSRError
from osr.data import benchmark, check_arrays, split_classes
from osr.expectations import check_class_counts, validate_manifest
from osr.io import atomic_path, diagnostic_rows, load_npz
from osr.paths import MANIFEST, RAW
from osr.split import make_manifest
from stages.reports import write_diagnostics

if TYPE_CHECKING:  # main is handed the validated params by the runner
    from osr.config import Params


def main(p: Params) -> None:
    s = p.split
    raw = load_npz(RAW, ("x_train", "y_train", "x_test", "y_test", "class_names"))
    d = p.data
    check_arrays(raw, str(RAW), d.benchmark)
    names = [str(c) for c in raw["class_names"]]
    known, unknown = split_classes(d.benchmark, s.index, raw["y_test"], s, names)
    if benchmark(d.benchmark).read:  # the user's folder: a class may hold too few images (the standard ones do not)
        check_class_counts(raw["y_train"], raw["y_test"], known, unknown, s.val_fraction, names, d.root)
    df = make_manifest(raw["y_train"], raw["y_test"], known, unknown, s.val_fraction, p.base.seed,
                       s.train_per_class, s.test_per_class, tuple(raw["x_train"].shape[1:]),
                       str(raw["x_train"].dtype))
    ok, report, failed = validate_manifest(df, known, unknown)
    write_diagnostics("split", diagnostic_rows({"success": ok, "known": known, "unknown": unknown,
                                                "counts": df.groupby("role").size().to_dict(), "failed": failed,
                                                "results": report}))
    if not ok:
        raise OSRError(f"{MANIFEST}: manifest failed expectations: {'; '.join(failed)}")
    with atomic_path(MANIFEST) as tmp:
        df.to_csv(tmp, index=False)
    print(f"split: known {known}, unknown {unknown}; " + ", ".join(
        f"{k} {v}" for k, v in df.groupby("role").size().items()))


if __name__ == "__main__":  # the runner is not among the stage's deps (stages/common.py)
    from stages.common import run

    run(main)
