"""Open-set recognition library: data, models, augmentation, losses, scores, metrics, training."""


class OSRError(Exception):
    """A user-facing error: bad input, bad parameter or bad file. Its message is one line."""
