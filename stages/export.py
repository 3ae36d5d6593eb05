"""Stage export: the deployable open-set classifier (data/export: model.pt + card.json, a DVC model artifact).

The run's teacher and student are the candidates; among those whose threshold rejects pure-noise images (at most
evaluate.noise_limit of them accepted), the one of highest validation accuracy ships (`osr.deploy.choose`,
validation data and generated noise only). The card records each candidate's validation figures and the reason;
the shipped model's score is evaluate.deploy_score, its threshold accepts evaluate.known_tpr of the validation
knowns, and its test figures at that threshold come from the evaluate stage's scores (also reports/export.json),
with the share of pure-noise images it accepts."""
from stages import answer_help

answer_help(__name__, __spec__, __doc__)  # --help answers here, before the imports below load torch

from osr.augment import noise_images
from osr.config import load_params
from osr.data import benchmark_label
from osr.deploy import choose, operating_point, threshold_for_tpr, write_artifact
from osr.io import load_npz, write_json
from osr.metrics import accuracy
from osr.models import load_model
from osr.paths import EXPORT, REPORTS, SCORES_OUT, STUDENT, TEACHER
from osr.scores import SCORES
from osr.split import load_split
from osr.train import predict, resolve_device
from stages.common import run

CANDIDATES = {"student": STUDENT, "teacher": TEACHER}  # in order of preference on a tie
NOISE_IMAGES = 1000


def validated(path, data, e: dict, seed: int, device) -> dict:
    """A candidate's validation accuracy, its deploy-score threshold, and the share of noise images it accepts."""
    model, meta = load_model(path, device)
    score = SCORES[e["deploy_score"]]
    settings = score.settings_from(e)
    z = predict(model, data.x["val"], e["batch_size"])
    threshold = threshold_for_tpr(score(z, **settings).cpu().numpy(), e["known_tpr"])
    _, channels, size, _ = data.x["val"].shape
    noise = score(predict(model, noise_images(NOISE_IMAGES, channels, size, seed).to(device), e["batch_size"]),
                  **settings)
    return {"val_acc": accuracy(data.y["val"].cpu().numpy(), z.argmax(1).cpu().numpy()), "threshold": threshold,
            "noise_accepted": float((noise >= threshold).float().mean()), "meta": meta}


def main() -> None:
    p = load_params()
    e = p["evaluate"]
    name, tpr = e["deploy_score"], e["known_tpr"]
    device = resolve_device(p["base"]["device"])
    data = load_split(device, ("val",))
    candidates = {role: validated(path, data, e, p["base"]["seed"], device) for role, path in CANDIDATES.items()}
    role, why = choose(candidates, e["noise_limit"])
    chosen = candidates[role]
    test = load_npz(SCORES_OUT, ("label", f"{role}_pred", f"{role}_{name}"))
    s, y, known = test[f"{role}_{name}"], test["label"], test["label"] >= 0
    figures = operating_point(s[known], test[f"{role}_pred"][known] == y[known], s[~known], chosen["threshold"])
    _, channels, height, _ = data.x["val"].shape
    validation = {r: {k: c[k] for k in ("val_acc", "threshold", "noise_accepted")} for r, c in candidates.items()}
    card = {"classes": data.names, "image_size": int(height), "channels": int(channels),
            "normalisation": {"mean": chosen["meta"]["mean"], "std": chosen["meta"]["std"], "inside_model": True},
            "model": chosen["meta"], "role": role, "chosen_because": why, "candidates": validation,
            "score": name, "score_settings": SCORES[name].settings_from(e), "threshold": chosen["threshold"],
            "known_tpr": tpr, "noise_accepted": chosen["noise_accepted"], "test": figures,
            "source": {"benchmark": benchmark_label(p["data"]["benchmark"], p["data"]["image_size"]),
                       "split": p["split"]["index"], "profile": p["base"]["profile"], "seed": p["base"]["seed"]}}
    write_artifact(EXPORT, CANDIDATES[role], card)
    write_json(REPORTS / "export.json", {"role": role, "chosen_because": why, "candidates": validation,
                                         "threshold": chosen["threshold"], "known_tpr": tpr, "score": name,
                                         "noise_accepted": chosen["noise_accepted"], "test": figures})
    print(f"export: the {role} ({why}); {name} >= {chosen['threshold']:.4f} accepts {tpr:.0%} of validation knowns "
          f"and {chosen['noise_accepted']:.1%} of noise images; test: known accuracy among accepted "
          f"{figures['known_accuracy_accepted']:.3f}, unknown rejected {figures['unknown_rejected']:.3f} -> {EXPORT}")


if __name__ == "__main__":
    run(main)
