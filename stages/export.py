"""Stage export: the student as a deployable open-set classifier (data/export: model.pt + card.json, a DVC model
artifact): the score evaluate.deploy_score, its threshold accepting evaluate.known_tpr of the validation knowns,
and the test figures at that threshold from the evaluate stage's scores (also reports/export.json)."""
from stages import answer_help

answer_help(__name__, __spec__, __doc__)  # --help answers here, before the imports below load torch

from osr.config import load_params
from osr.data import benchmark_label
from osr.deploy import operating_point, threshold_for_tpr, write_artifact
from osr.io import load_npz, write_json
from osr.models import load_model
from osr.paths import EXPORT, REPORTS, SCORES_OUT, STUDENT
from osr.scores import SCORES
from osr.split import load_split
from osr.train import predict, resolve_device
from stages.common import run


def main() -> None:
    p = load_params()
    e = p["evaluate"]
    name, tpr = e["deploy_score"], e["known_tpr"]
    device = resolve_device(p["base"]["device"])
    data = load_split(device, ("val",))
    model, meta = load_model(STUDENT, device)
    score = SCORES[name]
    settings = score.settings_from(e)
    threshold = threshold_for_tpr(score(predict(model, data.x["val"], e["batch_size"]), **settings).cpu().numpy(),
                                  tpr)
    test = load_npz(SCORES_OUT, ("label", "student_pred", f"student_{name}"))
    s, y, known = test[f"student_{name}"], test["label"], test["label"] >= 0
    figures = operating_point(s[known], test["student_pred"][known] == y[known], s[~known], threshold)
    _, channels, height, _ = data.x["val"].shape
    card = {"classes": data.names, "image_size": int(height), "channels": int(channels),
            "normalisation": {"mean": meta["mean"], "std": meta["std"], "inside_model": True},
            "model": meta, "score": name, "score_settings": settings, "threshold": threshold,
            "known_tpr": tpr, "test": figures,
            "source": {"benchmark": benchmark_label(p["data"]["benchmark"], p["data"]["image_size"]),
                       "split": p["split"]["index"], "profile": p["base"]["profile"], "seed": p["base"]["seed"]}}
    write_artifact(EXPORT, STUDENT, card)
    write_json(REPORTS / "export.json", {"threshold": threshold, "known_tpr": tpr, "score": name, "test": figures})
    print(f"export: {name} >= {threshold:.4f} accepts {tpr:.0%} of validation knowns; test: "
          f"known accuracy among accepted {figures['known_accuracy_accepted']:.3f}, unknown rejected "
          f"{figures['unknown_rejected']:.3f} -> {EXPORT}")


if __name__ == "__main__":
    run(main)
