"""Stage evaluate: teacher and student on validation and test; ROC and histogram PNGs, and their data for DVC
plots, one row per point of every model's every score: reports/plots/roc.json ({curve, fpr, tpr}) and
reports/plots/score_hist.json ({curve, score, known, unknown}), where `curve` is "<role> <score>".

reports/metrics.json (the DVC metric) holds what a reviewer compares: per model the test accuracy and the
headline score's AUROC (with its 95 % interval), OSCR and FPR95, and the run's `info`. The headline score is
MLS, else the first of `evaluate.scores`. The other scores, AUPR, macro-F1, logit statistics, class separation,
counts and the Jacobian diagnostics go to reports/diagnostics/evaluate.json (rows; `stages.common.merged` with
`diagnostics_tree` gives the whole report back)."""
from __future__ import annotations

from stages import answer_help

answer_help(__name__, __spec__, __doc__)  # --help answers here, before the imports below load torch

from typing import TYPE_CHECKING

from osr.evaluate import evaluate_model
from osr.io import read_json, save_npz, write_json
from osr.models import check_model, load_model
from osr.paths import REPORTS, SCORES_OUT, STUDENT, TEACHER, benchmark_label
from osr.plots import histogram_rows, roc_curves, roc_points, score_histograms, training_curves
from osr.roles import load_split
from osr.scores import needs_bank
from osr.train import resolve_device, set_determinism
from stages.reports import write_report

if TYPE_CHECKING:  # main is handed the validated params by the runner
    from osr.config import Params

# the leaves of the report that go to reports/metrics.json (dotted names, a regex); {headline}: the headline score
QUALITY = r"info\..+|(teacher|student)\.test\.(acc|{headline}\.(auroc|auroc_ci95|oscr|fpr95))"


def main(p: Params) -> None:
    e = p.evaluate
    device = resolve_device(p.base.device)
    set_determinism(p.base.seed, device)
    data = load_split(device, ("train", "val", "test") if needs_bank(e.scores) else ("val", "test"))
    metrics, audit, curves, hists, series = {}, {}, {}, {}, {}
    headline = "mls" if "mls" in e.scores else e.scores[0]
    for role, path in (("teacher", TEACHER), ("student", STUDENT)):
        model, meta = load_model(path, device)
        check_model(meta, getattr(p, role), role, data.num_classes, str(path))
        metrics[role], raw = evaluate_model(model, data, e, p.base.seed, name=f"evaluate ({path})")
        metrics[role]["model"] = f"{meta['arch']}-w{meta['width']}"
        known = raw["label"] >= 0
        for name in e.scores:
            audit[f"{role}_{name}"] = raw[name]
            series[f"{role} {name}"] = (raw[name][known], raw[name][~known])
            curves[f"{role} {name} (AUROC {metrics[role]['test'][name]['auroc']:.3f})"] = \
                (raw[name][known], raw[name][~known])
        hists[f"{role} {headline}"] = (raw[headline][known], raw[headline][~known])
        audit["label"], audit[f"{role}_pred"] = raw["label"], raw["pred"]
    bench = benchmark_label(p.data.benchmark, p.data.image_size)
    metrics["info"] = {"benchmark": bench, "split": p.split.index,
                       "profile": p.base.profile, "method": p.distill.method,
                       "teacher_loss": p.teacher.loss,
                       "mixing": p.augment.method, "balanced_test": False}
    save_npz(SCORES_OUT, **audit)
    write_report("evaluate", "metrics.json", metrics, QUALITY.format(headline=headline))
    plots = REPORTS / "plots"
    title = f"{bench} split {p.split.index}"
    roc_curves(curves, plots / "roc.png", f"ROC, {title}")
    score_histograms(hists, plots / "score_hist.png", f"Known vs unknown scores, {title}")
    for chart, rows in (("roc", roc_points), ("score_hist", histogram_rows)):
        write_json(plots / f"{chart}.json",
                   [{"curve": curve, **row} for curve, (sk, su) in series.items() for row in rows(sk, su)])
    training_curves({r: read_json(plots / "history" / f"{r}.json") for r in ("teacher", "student")},
                    ["loss", "val_acc"], plots / "training.png")
    for role in ("teacher", "student"):
        t = metrics[role]["test"]
        print(f"evaluate: {role} acc {t['acc']:.4f} " + " ".join(
            f"{n}.auroc {t[n]['auroc']:.4f}" for n in e.scores)
              + f" oscr(mls) {t.get('mls', {}).get('oscr', 0):.4f}")


if __name__ == "__main__":  # the runner is not among the stage's deps (stages/common.py)
    from stages.common import run

    run(main)
