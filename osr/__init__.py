"""Open-set recognition library: data, models, augmentation, losses, scores, metrics, training."""


class OSRError(Exception):
    """A user-facing error: bad input, bad parameter or bad file. Its message is one line."""


def check_finite(values, what: str, limit: float = float("inf")) -> None:
    """Refuse NaN, inf and magnitudes above `limit` (what a narrower dtype can hold) in an array (numpy or anything
    `numpy.asarray` takes): one line naming `what`, since a silent inf turns every later number into noise."""
    import numpy as np

    values = np.asarray(values)
    finite = np.isfinite(values)
    bad = int((~finite).sum() + (np.abs(np.where(finite, values, 0)) > limit).sum())
    if bad:
        kind = "non-finite or beyond" if not finite.all() else "beyond"
        raise OSRError(f"{what}: {bad} of {values.size} values are {kind} +-{limit:g}")
