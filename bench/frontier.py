"""Quality against CPU minutes: the quick profile's teacher recipe before and after the fast-training settings,
trained side by side in one run on the pipeline's split (run `dvc repro split` first).

    python -m bench.frontier [--budgets 8 12] [--out bench/results/frontier]

Each budget (epochs) trains one teacher with params.yaml's teacher section at that length, keeping its
best-validated epoch, and is read twice: without test-time flip (the recipe before: a model as the quick profile
trained it) and with it (`flip_tta`). For each point: test accuracy, MLS AUROC, unknowns rejected and known accuracy
among accepted at the threshold accepting 95 % of validation knowns, and the minutes of training and evaluation
on this machine. Writes <out>.json and <out>.png (AUROC and unknowns rejected against minutes).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from osr.config import load_params  # noqa: E402
from osr.deploy import operating_point, threshold_for_tpr  # noqa: E402
from osr.io import write_json  # noqa: E402
from osr.machine import cpu_name  # noqa: E402
from osr.metrics import accuracy, open_set_metrics  # noqa: E402
from osr.paths import MANIFEST, RAW  # noqa: E402
from osr.roles import load_split  # noqa: E402
from osr.scores import mls  # noqa: E402
from osr.teacher import train_teacher  # noqa: E402
from osr.train import predict, resolve_device, set_determinism, val_accuracy  # noqa: E402

KNOWN_TPR = 0.95


def read_model(model, data, tta: bool) -> dict:
    """Test figures of `model` read with or without test-time flip, and the seconds the reading took."""
    model.flip_tta = tta
    t0 = time.perf_counter()
    z_val, z_test = predict(model, data.x["val"]), predict(model, data.x["test"])
    y = data.y["test"].cpu().numpy()
    known = y >= 0
    s, pred = mls(z_test).cpu().numpy(), z_test.argmax(1).cpu().numpy()
    threshold = threshold_for_tpr(mls(z_val).cpu().numpy(), KNOWN_TPR)
    point = operating_point(s[known], pred[known] == y[known], s[~known], threshold)
    open_set = open_set_metrics(s[known], pred[known] == y[known], s[~known])
    return {"acc": accuracy(y[known], pred[known]), "auroc": open_set["auroc"],
            "unknown_rejected": point["unknown_rejected"],
            "known_accuracy_accepted": point["known_accuracy_accepted"], "eval_seconds": time.perf_counter() - t0}


def run(budgets: list[int], out: Path) -> dict:
    params = load_params()
    device = resolve_device(params.base.device)
    data = load_split(device, ("train", "val", "test"))
    rows, ckpts = [], Path(tempfile.mkdtemp(prefix="frontier-"))
    for epochs in budgets:
        p = replace(params, teacher=replace(params.teacher, epochs=epochs, keep="best", flip_tta=False, min_steps=0))
        set_determinism(p.base.seed, device)
        t0 = time.perf_counter()
        model, _, history = train_teacher(data, p, ckpt_path=ckpts / f"e{epochs}.pt",
                                          inputs=(RAW, MANIFEST), device=device, on_epoch_end=val_accuracy(data))
        train_s = time.perf_counter() - t0
        for recipe, tta in (("before", False), ("after", True)):
            r = read_model(model, data, tta)
            rows.append({"recipe": recipe, "epochs": epochs, "kept_epoch": history[-1].get("kept_epoch", epochs),
                         "flip_tta": tta, "train_seconds": train_s,
                         "minutes": (train_s + r["eval_seconds"]) / 60, **r})
            print({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}, flush=True)
    result = {"what": "teacher of the quick profile, CIFAR-10 split 0 unless params.yaml says otherwise",
              "benchmark": params.data.benchmark, "split": params.split.index,
              "arch": f"{params.teacher.arch}-w{params.teacher.width}", "cpu": cpu_name(),
              "threads": torch.get_num_threads(), "known_tpr": KNOWN_TPR, "rows": rows}
    write_json(out.with_suffix(".json"), result)
    plot(rows, out.with_suffix(".png"))
    return result


def plot(rows: list[dict], path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "auroc", "test AUROC (MLS)"),
                           (axes[1], "unknown_rejected", f"unknowns rejected at {KNOWN_TPR:.0%} known TPR")):
        for recipe, marker in (("before", "o"), ("after", "s")):
            pts = sorted((r["minutes"], r[key], r["epochs"]) for r in rows if r["recipe"] == recipe)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, label=recipe)
            for m, v, e in pts:
                ax.annotate(f"{e} ep", (m, v), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("minutes (train + evaluate)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Quick-profile teacher: quality against CPU minutes")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.frontier", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budgets", type=int, nargs="+", default=[8, 12], help="teacher epochs, one run each")
    ap.add_argument("--out", type=Path, default=Path("bench/results/frontier"))
    args = ap.parse_args(argv)
    run(args.budgets, args.out)


if __name__ == "__main__":
    main()
