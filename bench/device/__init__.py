"""The parts of the device check (`python -m bench.device_check`): its time plan (plan.py), start-up checks
(startup.py), throughput side by side (throughput.py), the paper-profile projection (projection.py and its
budgeted training stages, training.py), the pass/fail checks (checks.py) and the device tool's return limits
(limits.py)."""


def first_line(e: BaseException) -> str:
    """An exception as one line for the result JSON: its type and the first line of its message."""
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"
