"""The exported classifier of `make run`, the recipe before against the recipe after, side by side in one run:
each through `dvc repro` on CIFAR-10 split 0 in a temporary repository (bench/pipeline.py).

    python -m bench.recipes [--out bench/results/recipes]

- before: the quick profile with AD as published (profile adpaper: plain teacher, fresh student, last weights, no
  test-time flip), each network trained a fixed 8 + 6 epochs, and the student exported whatever its validation
  said;
- after: the quick profile as shipped (best-validated epochs, test-time flip, the study's best AD variant, the
  export choosing teacher or student on validation);
- and any other variant named with --variant NAME=OVERRIDE[,OVERRIDE...] (e.g. fresh=student.init=), each a run
  of its own from scratch.

For each: the shipped model's test accuracy and MLS AUROC, and at the threshold accepting 95 % of the validation
knowns the unknowns rejected and the known accuracy among accepted, and the minutes `dvc repro` took.
Writes <out>.json and <out>.png.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bench.pipeline import project, repro  # noqa: E402
from osr.deploy import operating_point  # noqa: E402
from osr.io import write_json  # noqa: E402
from osr.machine import cpu_name  # noqa: E402

# main's quick profile before: AD as published (profile adpaper) at 8 + 6 epochs, no step minimum
BEFORE = ["profile=adpaper", "teacher.epochs=8", "student.epochs=6", "teacher.min_steps=0", "student.min_steps=0"]


def shipped(ran: dict, proj: Path, role: str | None = None) -> dict:
    """The figures of the exported model, or of `role` at its own validation threshold (the export before chose
    the student whatever its validation said)."""
    export = ran["export"]
    role = role or export["role"]
    if role == export["role"]:
        point = export["test"]
    else:
        with np.load(proj / "data/eval/scores.npz") as z:
            s, y, pred = z[f"{role}_mls"], z["label"], z[f"{role}_pred"]
        known = y >= 0
        point = operating_point(s[known], pred[known] == y[known], s[~known], export["candidates"][role]["threshold"])
    model = ran["models"][role]
    return {"shipped": role, "acc": model["acc"], "auroc": model["mls"]["auroc"],
            "unknown_rejected": point["unknown_rejected"],
            "known_accuracy_accepted": point["known_accuracy_accepted"], "minutes": ran["minutes"],
            "epochs": ran["epochs"], "candidates": export["candidates"]}


def run(variants: dict[str, list[str]], out: Path) -> dict:
    rows = {}
    for name, overrides in {"before": BEFORE, "after": [], **variants}.items():
        with tempfile.TemporaryDirectory(prefix="recipes-") as tmp:
            proj = project(Path(tmp) / "proj", overrides)
            rows[name] = {"overrides": overrides, **shipped(repro(proj), proj, "student" if name == "before" else None)}
        print(name, {k: round(v, 4) if isinstance(v, float) else v for k, v in rows[name].items()
                     if k != "candidates"}, flush=True)
    result = {"benchmark": "cifar10", "split": 0, "profile": "quick", "cpu": cpu_name(), "rows": rows}
    write_json(out.with_suffix(".json"), result)
    plot(rows, out.with_suffix(".png"))
    return result


def plot(rows: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, key, label in ((axes[0], "auroc", "test AUROC (MLS)"), (axes[1], "unknown_rejected", "unknowns rejected"),
                           (axes[2], "known_accuracy_accepted", "known accuracy among accepted")):
        for name, r in rows.items():
            ax.scatter(r["minutes"], r[key], label=f"{name} ({r['shipped']})")
        ax.set_xlabel("minutes, dvc repro end to end")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("make run's exported classifier, CIFAR-10 split 0 (at 95 % validation-known TPR)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def variant(text: str) -> tuple[str, list[str]]:
    name, _, overrides = text.partition("=")
    return name, overrides.split(",")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.recipes", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench/results/recipes"))
    ap.add_argument("--variant", type=variant, action="append", default=[], metavar="NAME=OVERRIDE[,OVERRIDE]")
    args = ap.parse_args(argv)
    run(dict(args.variant), args.out)


if __name__ == "__main__":
    main()
