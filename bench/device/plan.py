"""The device check's time plan: one wall-clock budget for the whole command, shared out so that no part can
overrun it.

- Throughput runs first, within its share of the budget (`--throughput-share`): it is the number the performance
  target needs. A variant starts only with `reserve_s` of that share left (its warm-up holds the compile); a
  repetition starts only with three blocks' time left; variants that got fewer repetitions are marked `short`.
- The projection gets what throughput left. Its training stages stop after the epoch that crosses their deadline
  (bench/device/training.py): the teacher's is half of what is left when it starts, the student's leaves
  `eval_reserve_s` for evaluate. The other stages start only with `reserve_s` left; the projection is computed
  from whatever stages finished.
- Kill-and-resume runs only if its estimate (one and a half teacher runs and two process starts) fits in what is
  left; its wait for the first checkpoint and its rerun are bounded by the time left.
- A watchdog ends the process `grace_s` after the budget, whatever runs then (the result JSONs were written after
  every result), so the command's time is bounded by start-up + budget + grace.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time


class Clock:
    """Seconds since the check started, and what is left of its budget or of a part's deadline."""

    def __init__(self, budget_s: float):
        self.t0, self.budget = time.perf_counter(), budget_s

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self, deadline: float | None = None) -> float:
        """Seconds to `deadline` (seconds since the start), by default to the end of the budget."""
        return (self.budget if deadline is None else min(deadline, self.budget)) - self.elapsed()

    def deadline_in(self, share: float) -> float:
        """The deadline `share` of the way from now to the end of the budget."""
        return self.elapsed() + share * max(0.0, self.left())


class Watchdog:
    """Ends the process `grace_s` after the budget: kills the child processes it was given, prints one line and
    exits with status 3, so the command returns before the device tool's timeout."""

    def __init__(self, clock: Clock, grace_s: float):
        self.children: list[subprocess.Popen] = []
        self.timer = threading.Timer(max(0.0, clock.left()) + grace_s, self.fire, args=(clock,))
        self.timer.daemon = True
        self.timer.start()

    def fire(self, clock: Clock) -> None:
        for child in self.children:
            if child.poll() is None:
                child.kill()
        print(f"device check: hard stop at {clock.elapsed():.0f}s (budget {clock.budget:.0f}s + grace); the result "
              "files hold everything measured until the last result", file=sys.stderr, flush=True)
        os._exit(3)

    def cancel(self) -> None:
        self.timer.cancel()
