"""Stage export: the deployable open-set classifier (data/export: model.pt, model.onnx and card.json, a DVC model
artifact).

The run's teacher and student are the candidates; among those whose threshold rejects pure-noise images (at most
evaluate.noise_limit of them accepted), the one of highest validation accuracy ships (`osr.deploy.choose`,
validation data and generated noise only). The card records each candidate's validation figures and the reason;
the shipped model's score is evaluate.deploy_score (any registered score: a kNN score carries a feature bank of at
most evaluate.deploy_bank known training images, a seeded per-class share, in both model files), its threshold
accepts evaluate.known_tpr of the validation knowns, and its test figures at that threshold come from the shipped
classifier itself (also reports/export.json), with the share of pure-noise images it accepts.

The artifact keeps the shipped classifier's validation and test scores (`osr.calibration`), so that `osr predict
--known-tpr` moves the threshold without retraining; the calibration report shows them: reports/calibration.png
(score densities of validation knowns, test knowns and test unknowns, the threshold drawn) and
reports/calibration.json (a DVC plot: one row per known TPR from 0.80 to 0.99 with its threshold, test knowns
accepted, known accuracy among them and unknowns rejected)."""
from __future__ import annotations

from stages import answer_help

answer_help(__name__, __spec__, __doc__)  # --help answers here, before the imports below load torch

from typing import TYPE_CHECKING

from osr.calibration import Calibration
from osr.deploy import choose, operating_point, validated, write_artifact
from osr.evaluate import feature_bank
from osr.graph import Deployed, bounded_bank, outputs
from osr.io import write_json
from osr.models import load_model
from osr.paths import EXPORT, REPORTS, STUDENT, TEACHER, benchmark_label
from osr.pixels import noise_images
from osr.plots import calibration_plot
from osr.roles import load_split
from osr.scores import SCORES
from osr.train import resolve_device

if TYPE_CHECKING:  # main is handed the validated params by the runner
    from osr.config import Params

CANDIDATES = {"student": STUDENT, "teacher": TEACHER}  # in order of preference on a tie
NOISE_IMAGES = 1000


def main(p: Params) -> None:
    e = p.evaluate
    name, tpr = e.deploy_score, e.known_tpr
    settings = SCORES[name].settings_from(e)
    device = resolve_device(p.base.device)
    data = load_split(device, ("train", "val", "test") if SCORES[name].needs_bank else ("val", "test"))
    _, channels, height, _ = data.x["val"].shape
    noise = noise_images(NOISE_IMAGES, channels, height, p.base.seed)
    candidates, shipped = {}, {}
    for role, path in CANDIDATES.items():
        model, meta = load_model(path, device)
        bank = (bounded_bank(feature_bank(model, data, e.batch_size), e.deploy_bank, e.knn_k,
                             p.base.seed) if SCORES[name].needs_bank else None)
        shipped[role] = Deployed(model, name, settings, 0.0, bank), meta
        candidates[role] = validated(shipped[role][0], data.x["val"], data.y["val"].cpu().numpy(), noise, tpr,
                                     e.batch_size)
    role, why = choose(candidates, e.noise_limit)
    chosen = candidates[role]
    deployed, meta = shipped[role]
    deployed.with_threshold(chosen["threshold"])
    test = outputs(deployed, data.x["test"], e.batch_size)
    y = data.y["test"].cpu().numpy()
    known = y >= 0
    calibration = Calibration(chosen["val_scores"], test["score"][known], test["score"][~known],
                              test["class_index"][known] == y[known])
    figures = operating_point(calibration.test_known, calibration.test_known_correct, calibration.test_unknown,
                              chosen["threshold"])
    validation = {r: {k: c[k] for k in ("val_acc", "threshold", "noise_accepted")} for r, c in candidates.items()}
    card = {"classes": data.names, "image_size": int(height), "channels": int(channels),
            "normalisation": {"mean": meta["mean"], "std": meta["std"], "inside_model": True},
            "model": meta, "role": role, "chosen_because": why, "candidates": validation,
            "score": name, "score_settings": settings, "threshold": chosen["threshold"],
            **({"bank": {"images": len(deployed.bank_labels), "of": len(data.y["train"]),
                         "limit": e.deploy_bank}} if deployed.bank is not None else {}),
            "known_tpr": tpr, "noise_accepted": chosen["noise_accepted"], "test": figures,
            "expected_unknown_share": calibration.expected_unknown_share(chosen["threshold"]),
            "source": {"benchmark": benchmark_label(p.data.benchmark, p.data.image_size),
                       "split": p.split.index, "profile": p.base.profile, "seed": p.base.seed}}
    write_artifact(EXPORT, deployed, meta, card, calibration.as_lists())
    write_json(REPORTS / "calibration.json", calibration.table())
    calibration_plot({"validation knowns": calibration.val_known, "test knowns": calibration.test_known,
                      "test unknowns": calibration.test_unknown}, chosen["threshold"], REPORTS / "calibration.png",
                     f"{role} {name}, {card['source']['benchmark']} split {p.split.index}")
    write_json(REPORTS / "export.json", {"role": role, "chosen_because": why, "candidates": validation,
                                         "threshold": chosen["threshold"], "known_tpr": tpr, "score": name,
                                         "noise_accepted": chosen["noise_accepted"], "test": figures})
    print(f"export: the {role} ({why}); {name} >= {chosen['threshold']:.4f} accepts {tpr:.0%} of validation knowns "
          f"and {chosen['noise_accepted']:.1%} of noise images; test: known accuracy among accepted "
          f"{figures['known_accuracy_accepted']:.3f}, unknown rejected {figures['unknown_rejected']:.3f} -> {EXPORT}")


if __name__ == "__main__":  # the runner is not among the stage's deps (stages/common.py)
    from stages.common import run

    run(main)
