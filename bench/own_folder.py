"""The quick profile on a small folder of one's own images, as a new user runs it, against the floor a shipped
model must clear: a logistic regression on the raw pixels of the same split.

    python -m bench.own_folder [--per-class 200] [--known zero,one,two,three,four,five] [--profile quick]
                               [--compare distill.noise_exposure=0] [--out reports/own-folder]

Writes an ImageFolder tree of PNGs from the MNIST mirror (`--per-class` images of each digit), copies the project's
code into a temporary git + DVC repository whose params.yaml is the composition `dvc exp run -S benchmark=folder
-S data.root=<tree> -S split.known=[...] -S profile=<profile>` would write, runs `dvc repro` there and keeps
<out>.json: the export's card figures (what was shipped, why, test figures at the threshold), both models' test
accuracy and AUROC, the minutes the run took, and the floor's figures (its threshold, like the export's, accepts
95 % of the validation knowns, on its maximum class probability). With `--compare`, the same repository then
reruns with those overrides added (the recipe the profile replaces; DVC reruns only the stages they change) and
<out>.json also keeps that run's figures under `compared`, side by side with the profile's.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from bench.pipeline import ROOT, compose_params, project, repro
from osr.deploy import operating_point, threshold_for_tpr
from osr.io import write_json
from osr.paths import mirror_dir

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def write_folder(root: Path, per_class: int) -> Path:
    """root/<digit>/<i>.png: the first `per_class` MNIST training images of each digit."""
    with np.load(mirror_dir(ROOT) / "mnist.npz") as z:
        x, y = z["x_train"], z["y_train"]
    for c, name in enumerate(DIGITS):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i, j in enumerate(np.flatnonzero(y == c)[:per_class]):
            Image.fromarray(x[j]).save(root / name / f"{i:03d}.png")
    return root


def floor(proj: Path, known_tpr: float) -> dict:
    """Logistic regression on raw pixels of the run's split: test known accuracy, AUROC of the maximum class
    probability, and the export's figures at the threshold accepting `known_tpr` of the validation knowns."""
    import pandas as pd

    from osr.roles import SplitTensors
    from osr.train import resolve_device

    with np.load(proj / "data/raw/dataset.npz") as z:
        raw = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    data = SplitTensors.from_arrays(raw, pd.read_csv(proj / "data/split/manifest.csv"), resolve_device("cpu"))
    flat = {r: data.x[r].reshape(len(data.x[r]), -1).numpy() / 255.0 for r in ("train", "val", "test")}
    y = {r: data.y[r].numpy() for r in ("train", "val", "test")}
    clf = LogisticRegression(max_iter=2000).fit(flat["train"], y["train"])
    p_val, p_test = clf.predict_proba(flat["val"]), clf.predict_proba(flat["test"])
    known = y["test"] >= 0
    s, pred = p_test.max(1), p_test.argmax(1)
    point = operating_point(s[known], pred[known] == y["test"][known], s[~known],
                            threshold_for_tpr(p_val.max(1), known_tpr))
    return {"model": "logistic regression on raw pixels (scikit-learn)",
            "test_acc": float((pred == y["test"])[known].mean()), "test_auroc_msp": float(roc_auc_score(known, s)),
            "test": point}


def command(overrides: list[str]) -> str:
    return "dvc exp run " + " ".join(f"-S '{o}'" for o in overrides)


def run(per_class: int, known: list[str], profile: str, compare: list[str], out: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="own-folder-") as tmp:
        tree = write_folder(Path(tmp) / "digits", per_class)
        overrides = ["benchmark=folder", f"data.root={tree}", f"split.known=[{','.join(known)}]", f"profile={profile}"]
        proj = project(Path(tmp) / "proj", overrides)
        ran = repro(proj)
        result = {"command": command(overrides),
                  "folder": f"{per_class} PNGs of each MNIST digit (training images), 28 x 28 grey",
                  "known": known, "profile": profile, **ran, "floor": floor(proj, ran["export"]["known_tpr"])}
        if compare:
            compose_params(proj, overrides + compare)
            result["compared"] = {"overrides": compare, "command": command(overrides + compare), **repro(proj)}
    write_json(out.with_suffix(".json"), result)
    return result


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.own_folder", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-class", type=int, default=200)
    ap.add_argument("--known", default=",".join(DIGITS[:6]))
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--compare", nargs="*", default=["distill.noise_exposure=0"],
                    help="overrides of the recipe the profile replaces, run after it in the same repository")
    ap.add_argument("--out", type=Path, default=Path("reports/own-folder"))
    args = ap.parse_args(argv)
    r = run(args.per_class, args.known.split(","), args.profile, args.compare, args.out)
    for name, ran in (("profile", r), ("compared", r.get("compared"))):
        if ran:
            e = ran["export"]
            print(f"own folder, {name}: shipped the {e['role']}; known accuracy among accepted "
                  f"{e['test']['known_accuracy_accepted']:.3f}, unknowns rejected {e['test']['unknown_rejected']:.3f}, "
                  f"noise accepted {e['noise_accepted']:.3f}; {ran['minutes']:.1f} min")
    print(f"floor {r['floor']['test']['known_accuracy_accepted']:.3f} / {r['floor']['test']['unknown_rejected']:.3f} "
          f"-> {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
