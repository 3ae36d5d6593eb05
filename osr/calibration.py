"""The scores behind a deployed threshold, and what moving it does.

An artifact keeps three sets of its own scores (`Calibration`): the validation knowns (the threshold is chosen on
them: `threshold_at`), the test knowns and the test unknowns (what a threshold costs and buys: `table`, and the
share of `unknown` answers to expect from live traffic: `expected_unknown_share`). Validation holds knowns only,
so the threshold never looks at an unknown image; the test scores only describe its consequences.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from osr import OSRError
from osr.deploy import operating_point, threshold_for_tpr

TPRS = tuple(round(0.80 + 0.01 * i, 2) for i in range(20))  # the calibration table's rows: 0.80 ... 0.99
KEYS = ("val_known", "test_known", "test_unknown", "test_known_correct")


class Calibration(NamedTuple):
    val_known: np.ndarray       # scores of the validation images (known classes)
    test_known: np.ndarray      # scores of the test images of known classes
    test_unknown: np.ndarray    # scores of the test images of unknown classes
    test_known_correct: np.ndarray  # whether each test known's class index is right (0/1)

    @classmethod
    def of(cls, stored: dict, where: str) -> Calibration:
        """From an artifact's stored lists (`as_lists`); OSRError naming `where` when some are missing."""
        missing = [k for k in KEYS if k not in stored]
        if missing:
            raise OSRError(f"{where}: keeps no calibration scores ({', '.join(missing)}); export it again")
        return cls(*(np.asarray(stored[k], np.float64) for k in KEYS))

    def as_lists(self) -> dict[str, list[float]]:
        return {k: [float(v) for v in getattr(self, k)] for k in KEYS}

    def threshold_at(self, known_tpr: float) -> float:
        """The threshold accepting `known_tpr` of the validation knowns (as the export chose the card's)."""
        if not 0 < known_tpr <= 1:
            raise OSRError(f"known_tpr must be in (0, 1] (got {known_tpr})")
        return threshold_for_tpr(self.val_known, known_tpr)

    def table(self, tprs: tuple[float, ...] = TPRS) -> list[dict]:
        """One row per known TPR: the threshold it gives, and on the test set the share of knowns accepted, the
        accuracy among accepted knowns and the share of unknowns rejected."""
        rows = []
        for tpr in tprs:
            t = self.threshold_at(tpr)
            p = operating_point(self.test_known, self.test_known_correct.astype(bool), self.test_unknown, t)
            rows.append({"known_tpr": tpr, "threshold": t, "known_accepted": p["known_accepted"],
                         "known_accuracy": p["known_accuracy_accepted"], "unknown_rejected": p["unknown_rejected"]})
        return rows

    def expected_unknown_share(self, threshold: float) -> dict[str, float]:
        """The share of `unknown` answers at `threshold` when every input is a known (`low`: test knowns
        rejected) and when every input is an unknown (`high`: test unknowns rejected); live traffic of the test
        set's kind, in any mix, lands between them."""
        return {"low": float((self.test_known < threshold).mean()),
                "high": float((self.test_unknown < threshold).mean())}
