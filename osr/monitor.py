"""Watching a deployed classifier: the share of its answers that are `unknown`, against the range its test set
gives at the threshold in use (`osr.calibration.Calibration.expected_unknown_share`: from all inputs known, `low`,
to all inputs unknown, `high`).

Live traffic like the test set's, in any mix of knowns and unknowns, answers `unknown` within that range. A share
far outside it (beyond three binomial standard errors of the nearer end, after at least `MIN_ANSWERS` answers)
says the inputs differ from what the model was trained and tested on: another camera, another kind of image.
"""
from __future__ import annotations

import math
import threading

MIN_ANSWERS = 20  # fewer answers say too little to warn about


class UnknownWatch:
    """Running counts of answers and `unknown` answers (thread-safe: a service adds from several threads)."""

    def __init__(self, expected: dict | None):
        self.expected = expected  # {"low", "high"} or None (an artifact that states no range)
        self.answered = self.unknown = 0
        self._lock = threading.Lock()

    def add(self, answered: int, unknown: int) -> None:
        with self._lock:
            self.answered += answered
            self.unknown += unknown

    def summary(self) -> dict:
        """Counts, share, the expected range and whether the share is far outside it."""
        with self._lock:
            n, u = self.answered, self.unknown
        share = u / n if n else None
        return {"answered": n, "unknown": u, "unknown_share": share, "expected": self.expected,
                "far_outside": far_outside(share, n, self.expected)}

    def warning(self) -> str | None:
        """One line when the share is far outside the expected range, else None."""
        s = self.summary()
        if not s["far_outside"]:
            return None
        e = s["expected"]
        return (f"{s['unknown_share']:.0%} of {s['answered']} answers are unknown, far outside the "
                f"{e['low']:.0%}-{e['high']:.0%} the test set gives at this threshold: the inputs may differ from "
                "the images the model was trained and tested on")


def far_outside(share: float | None, n: int, expected: dict | None) -> bool:
    """Whether `share` of `n` answers lies beyond three binomial standard errors of the nearer end of
    `expected` ({"low", "high"}); False with fewer than `MIN_ANSWERS` answers or no range."""
    if share is None or expected is None or n < MIN_ANSWERS:
        return False
    lo, hi = expected["low"], expected["high"]
    edge = lo if share < lo else hi if share > hi else None
    if edge is None:
        return False
    margin = 3 * math.sqrt(max(edge * (1 - edge), 0.25 / n) / n)  # never zero, even at an edge of 0 or 1
    return abs(share - edge) > margin
