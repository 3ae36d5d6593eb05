"""reports/ablation.md: per profile, benchmark and split, each recipe's means and its difference from the reference,
and the best AD variant (`python -m study.report` writes it; the studies come from study/ablation.py)."""
from __future__ import annotations

from study.ablation import ACC_TOLERANCE
from study.claims import NOISE_NOT_MEASURED, diff_text
from study.grid import OURS, VARIANTS, recipe_variants
from study.stats import ALPHA, NOT_MEASURED
from study.suite_page import generated_line, pm


def _delta(e: dict, key: str, reference: str) -> str:
    """The difference and its interval, * when it survives Holm's correction over the study, "reference" on the
    reference's own row, a dash where there is nothing to compare with."""
    d = e[key]
    if not d:
        return "reference" if e["recipe"] == reference else "–"
    if d["interval"] == NOISE_NOT_MEASURED:
        return f"{diff_text(d)} ({NOT_MEASURED})"
    return diff_text(d) + (" *" if d.get("p_holm", 1.0) < ALPHA else "")


def _scale(e: dict) -> str:
    """Mean max logit on known / unknown test images (means over seeds), the scale that MLS reads."""
    k, u = e["max_logit_known"], e["max_logit_unknown"]
    return f"{k['mean']:.1f} / {u['mean']:.1f}" if k and u else "–"


def _best_rule(s: dict) -> str:
    """How the best AD variant of a study was chosen, in words."""
    ref = f"`{s['reference']}`"
    if not s["reference_ran"]:
        return f"{ref} has not run here, so no Δ and no accuracy tolerance; highest AUROC"
    if s["best_ad_within_tolerance"]:
        return f"highest AUROC among AD recipes within {ACC_TOLERANCE:g} pt of {ref}'s accuracy"
    return f"no AD recipe is within {ACC_TOLERANCE:g} pt of {ref}'s accuracy; highest AUROC"


def study_lines(s: dict) -> list[str]:
    lines = [f"## {s['profile']} / {s['benchmark']} / split {s['split']}", "",
             f"Means over seeds (± sample std where n > 1); Δ = recipe − `{s['reference']}` in points with its "
             "95 % t-interval against the split's seed noise (`study/claims.py`); * = differs from 0 after Holm's "
             "correction over every Δ of this table.", "",
             "| recipe | n seeds | acc | AUROC (MLS) | OSCR (MLS) | Δ acc | Δ AUROC | AUROC (kNN) | max logit K / U |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in s["entries"]:
        n = (e["acc"] or {}).get("n", 0)
        cells = [pm(e["acc"]), pm(e["auroc_mls"]), pm(e["oscr_mls"]), _delta(e, "d_acc", s["reference"]),
                 _delta(e, "d_auroc_mls", s["reference"]), pm(e["auroc_knn"]), _scale(e)]
        lines.append(f"| `{e['recipe']}` | {n} | " + " | ".join(cells) + " |")
    if s["best_ad"]:
        rule = _best_rule(s)
        ours = " [ours]" if recipe_variants(s["best_ad"]) & OURS else ""
        lines += ["", f"Best AD variant: **`{s['best_ad']}`**{ours} ({rule})."]
    return lines + [""]


def ablation_markdown(studies: list[dict], source: str) -> str:
    """`reports/ablation.md`: one section per study."""
    n = sum(e["acc"]["n"] for s in studies for e in s["entries"] if e["acc"])
    lines = ["# Ablation study", "", generated_line(source, n), ""]
    used = sorted({v for s in studies for e in s["entries"] for v in recipe_variants(e["recipe"])})
    legend = ["## Variants", "", "A recipe `<distill.method>-<augment.method>+<variant>` adds the variant's overrides "
              "(`conf/study/grid.yaml`); [ours] = not in the reference code or the paper.", ""]
    legend += [f"- `{v}`{' [ours]' if v in OURS else ''}: " + ", ".join(f"`{o}`" for o in VARIANTS[v])
               for v in used if v in VARIANTS]
    return "\n".join(lines + [line for s in studies for line in study_lines(s)] + legend) + "\n"
