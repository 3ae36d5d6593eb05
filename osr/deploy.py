"""The deployable open-set classifier: its threshold, its figures, and the artifact (model + card) on disk.

An artifact is a folder holding ``model.pt`` (the model chosen on validation, `choose`, as this project stores
models: the state dict and the plain dict that rebuilds the architecture, `osr.models.build`, with the score and
threshold under "deploy": `osr.graph.Deployed.checkpoint`), ``model.onnx`` (the same classifier, score and decision
included, as an ONNX graph: osr/onnx_graph.py) and ``card.json``: what a user needs to use it (class names, image
size and channels, normalisation, the score and its threshold) and what to expect of it (the validation share
accepted, the test figures at that threshold). The card records both model files' SHA-256, so a model file that
is not the one the card describes is refused.

The threshold is chosen on validation knowns only: unknowns are, by definition, not available when deploying.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from osr import OSRError
from osr.graph import Deployed, outputs
from osr.io import atomic_dir, read_json, save_torch, sha256, write_json
from osr.metrics import accuracy

FORMAT = "osr-classifier/1"
MODEL_FILE, ONNX_FILE, CARD_FILE = "model.pt", "model.onnx", "card.json"
ENGINE_FILES = {"torch": MODEL_FILE, "onnx": ONNX_FILE}  # the model file each engine reads
HASH_KEYS = {MODEL_FILE: "model_sha256", ONNX_FILE: "onnx_sha256"}  # where the card records each file's SHA-256


def threshold_for_tpr(val_known_scores: np.ndarray, known_tpr: float) -> float:
    """The score threshold (accept when score >= it) that accepts ceil(known_tpr * n) of the n validation-known
    scores: exactly that many when the scores are distinct, the requested share or more with ties."""
    s = np.sort(np.asarray(val_known_scores, np.float64))[::-1]
    if not len(s) or not np.isfinite(s).all():
        raise OSRError("threshold: the validation-known scores are empty or not finite")
    k = min(len(s), max(1, math.ceil(round(known_tpr * len(s), 9))))
    return float(s[k - 1])


def operating_point(s_known: np.ndarray, correct_known: np.ndarray, s_unknown: np.ndarray, threshold: float
                    ) -> dict:
    """Test figures at `threshold`: the share of knowns accepted, the accuracy among accepted knowns, the share
    of unknowns rejected, and the OSCR point (correct classification rate = knowns accepted and correct over all
    knowns; false positive rate = unknowns accepted over all unknowns)."""
    acc_k, acc_u = s_known >= threshold, s_unknown >= threshold
    return {"known_accepted": float(acc_k.mean()),
            "known_accuracy_accepted": float(correct_known[acc_k].mean()) if acc_k.any() else 0.0,
            "unknown_rejected": float(1 - acc_u.mean()),
            "oscr_point": {"ccr": float((acc_k & correct_known).mean()), "fpr": float(acc_u.mean())},
            "n_known": int(len(s_known)), "n_unknown": int(len(s_unknown))}


def validated(deployed: Deployed, x_val, y_val: np.ndarray, noise, known_tpr: float, batch_size: int) -> dict:
    """A candidate's validation figures: its accuracy, the threshold accepting `known_tpr` of the validation
    knowns (uint8 images `x_val`), the share of the `noise` images it accepts there, and the validation scores."""
    val = outputs(deployed, x_val, batch_size)
    threshold = threshold_for_tpr(val["score"], known_tpr)
    noise_scores = outputs(deployed, noise, batch_size)["score"]
    return {"val_acc": accuracy(y_val, val["class_index"]), "threshold": threshold,
            "noise_accepted": float((noise_scores >= threshold).mean()), "val_scores": val["score"]}


def choose(candidates: dict[str, dict], noise_limit: float) -> tuple[str, str]:
    """(the candidate to ship, why) from {name: validation figures with `val_acc` and `noise_accepted`}.

    A candidate whose threshold accepts more than `noise_limit` of pure-noise images fails the sanity check and
    ships only if every candidate fails it (then the one accepting the least noise). Among those that pass, the
    highest validation accuracy of the known classes wins, the first listed on a tie: validation holds knowns only,
    and closed-set accuracy is the open-set figure known before deployment that tracks AUROC best (Vaze et al.,
    ICLR 2022)."""
    passing = [n for n, c in candidates.items() if c["noise_accepted"] <= noise_limit]
    if not passing:
        name = min(candidates, key=lambda n: candidates[n]["noise_accepted"])  # min keeps the first of equals
        return name, (f"every candidate accepts more than {noise_limit:.0%} of noise images; {name} accepts the "
                      f"least ({candidates[name]['noise_accepted']:.1%})")
    name = max(passing, key=lambda n: candidates[n]["val_acc"])  # max keeps the first of equals
    others = ", ".join(f"{n} {c['val_acc']:.4f}" for n, c in candidates.items() if n in passing and n != name)
    failing = ", ".join(f"{n} ({c['noise_accepted']:.1%})" for n, c in candidates.items() if n not in passing)
    return name, (f"highest validation accuracy: {name} {candidates[name]['val_acc']:.4f}"
                  + (f" against {others}" if others else "")
                  + (f"; accepts over {noise_limit:.0%} of noise images: {failing}" if failing else ""))


def write_artifact(folder: Path, deployed: Deployed, meta: dict, card: dict, calibration: dict | None = None
                   ) -> dict:
    """The artifact folder, written whole or not at all: model.pt, model.onnx (the card's figures in its
    metadata) and the card, which gains the format tag and both files' SHA-256. `calibration` (the scores of
    `osr.calibration.Calibration.as_lists`) goes into both model files. Returns the card written."""
    from osr.onnx_graph import write_onnx

    card = {"format": FORMAT, **card}
    extra = {"calibration": calibration} if calibration else {}
    with atomic_dir(folder) as tmp:
        save_torch(tmp / MODEL_FILE, deployed.checkpoint(meta, calibration))
        write_onnx(deployed, tmp / ONNX_FILE, card["channels"], card["image_size"], card | extra)
        card |= {key: sha256(tmp / name) for name, key in HASH_KEYS.items()}
        write_json(tmp / CARD_FILE, card)
    return card


CARD_KEYS = ("classes", "image_size", "channels", "score", "score_settings", "threshold")


def artifact_folder(path: str | Path) -> Path:
    """The artifact folder of `path`: the folder itself, or the folder of a card.json given directly."""
    path = Path(path)
    return path.parent if path.name == CARD_FILE else path


def read_card(folder: str | Path, engine: str = "torch") -> dict:
    """The card of an artifact folder (or of the folder of a card.json given directly), checked against the
    model file `engine` reads (`ENGINE_FILES`); a foreign or altered artifact is refused in one line."""
    folder = artifact_folder(folder)
    card_path, model_path = folder / CARD_FILE, folder / ENGINE_FILES[engine]
    if not card_path.is_file():
        raise OSRError(f"{folder}: not a classifier artifact (no {CARD_FILE}; export one with `dvc repro export`)")
    card = read_json(card_path)
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise OSRError(f"{card_path}: not a card of this project's classifier (format is not {FORMAT})")
    missing = [k for k in CARD_KEYS if k not in card]
    if missing:
        raise OSRError(f"{card_path}: card lacks {missing}")
    if not model_path.is_file():
        raise OSRError(f"{model_path}: file not found (the artifact is incomplete)")
    if sha256(model_path) != card.get(HASH_KEYS[model_path.name]):
        raise OSRError(f"{model_path}: SHA-256 differs from the card's (altered, or not the model it describes)")
    return card
