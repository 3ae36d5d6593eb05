"""Stage split: known/unknown classes, stratified validation split, manifest validated by great-expectations."""
from stages import answer_help

answer_help(__name__, __spec__, __doc__)  # --help answers here, before the imports below load torch

from osr import OSRError
from osr.config import load_params
from osr.data import check_arrays, split_classes
from osr.io import atomic_path, load_npz
from osr.paths import MANIFEST, RAW
from osr.split import make_manifest
from osr.validate import validate_manifest
from stages.common import diagnostic_rows, run, write_diagnostics


def main() -> None:
    p = load_params()
    s = p["split"]
    raw = load_npz(RAW, ("x_train", "y_train", "x_test", "y_test", "class_names"))
    check_arrays(raw, str(RAW), p["data"]["benchmark"])
    known, unknown = split_classes(p["data"]["benchmark"], s["index"], raw["y_test"])
    df = make_manifest(raw["y_train"], raw["y_test"], known, unknown, float(s["val_fraction"]), p["base"]["seed"],
                       s["train_per_class"], s["test_per_class"], tuple(raw["x_train"].shape[1:]),
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


if __name__ == "__main__":
    run(main)
