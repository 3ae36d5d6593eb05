"""The statistics of a claim row: a 95 % Student-t interval, the two-sided p-value against the claim's margin, the
verdict the interval gives and the verdict after Holm's step-down correction over a family of rows.

The raw verdict reads the interval (holds / fails when it lies wholly on the claimed / the other side of the
margin); p < 0.05 is the same event, so the Holm-adjusted verdict is the raw verdict with p replaced by p_holm.
"""
from __future__ import annotations

from scipy import stats

ALPHA = 0.05
NOT_MEASURED = "noise not measured"  # the verdict of a difference whose noise no experiment measured


def t_interval(mean: float, se: float, df: int) -> list[float]:
    h = float(stats.t.ppf(1 - ALPHA / 2, df)) * se
    return [mean - h, mean + h]


def p_value(mean: float, se: float, df: int, margin: float) -> float:
    """Two-sided p of "the true difference equals `margin`" for a t statistic (mean - margin) / se."""
    if se == 0:
        return 0.0 if mean != margin else 1.0
    return float(2 * stats.t.sf(abs(mean - margin) / se, df))


def verdict(ci95: list[float] | None, direction: str, margin: float) -> str:
    if ci95 is None:
        return "inconclusive"
    lo, hi = ci95
    above, below = lo > margin, hi < margin
    if direction == "up":
        return "holds" if above else "fails" if below else "inconclusive"
    return "holds" if below else "fails" if above else "inconclusive"


def holm(pvalues: list[float | None], m: int | None = None) -> list[float | None]:
    """Holm-adjusted p-values, in input order: the i-th smallest p times (m - i), made non-decreasing, at most 1.
    `m` is the family's size (default: the p-values given); a hypothesis not tested yet (None) stays None and
    counts in `m` as the largest p would."""
    order = sorted((i for i, p in enumerate(pvalues) if p is not None), key=lambda i: pvalues[i])
    m = max(m or 0, len(order))
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def holm_verdict(p_holm: float | None, mean: float, direction: str, margin: float) -> str:
    """holds / fails when the Holm-adjusted p is below ALPHA (on the side the mean lies), else inconclusive."""
    if p_holm is None or p_holm >= ALPHA:
        return "inconclusive"
    return "holds" if (mean > margin) == (direction == "up") else "fails"
