"""The device check's pass/fail checks: kill-and-resume of the teacher stage on the device, and the same
augmentation views on the CPU and on the device."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from bench.common import ROOT, load_known
from bench.device.plan import Clock, Watchdog
from bench.device.projection import inside
from osr.augment import BaseAug
from osr.io import load_torch
from osr.paths import TEACHER, TEACHER_CKPT

CMD = [sys.executable, "-m", "stages.train_teacher"]


def resume_estimate_s(teacher_s: float, start_s: float) -> float:
    """What kill-and-resume costs: a run to its first checkpoint and a rerun of the rest (together about one and a
    half teacher runs, the compiles coming from the inductor cache) and two process starts."""
    return 1.5 * teacher_s + 2 * start_s


def start_teacher(env: dict, watchdog: Watchdog, **kw) -> subprocess.Popen:
    proc = subprocess.Popen(CMD, env=env, **kw)
    watchdog.children.append(proc)
    return proc


def kill_after_first_checkpoint(env: dict, watchdog: Watchdog, wait_s: float) -> float | None:
    """Start the teacher stage, SIGKILL it once its first checkpoint is written; seconds to that checkpoint, or
    None when it finished (or did not checkpoint) within `wait_s`."""
    proc = start_teacher(env, watchdog, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # no pipe to fill
    t0 = time.perf_counter()
    while not TEACHER_CKPT.exists() and proc.poll() is None and time.perf_counter() - t0 < wait_s:
        time.sleep(0.01)
    seen = time.perf_counter() - t0
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return seen if TEACHER_CKPT.exists() and not TEACHER.exists() else None


def kill_and_resume(work: Path, clock: Clock, watchdog: Watchdog, teacher_s: float, start_s: float) -> dict:
    """SIGKILL the teacher stage after its first checkpoint, rerun it, compare with the uninterrupted weights
    (the projection's teacher, same params). The wait for the checkpoint leaves a teacher run's time for the
    rerun; the rerun is bounded by what is left of the budget."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OSR_PROGRESS": "0"}
    with inside(work):
        ref = load_torch(TEACHER)["state"]
        TEACHER.unlink()
        TEACHER_CKPT.unlink()
        wait_s = max(1.0, clock.left() - teacher_s - start_s)
        seen = kill_after_first_checkpoint(env, watchdog, wait_s)
        if seen is None:
            return {"pass": False, "first_checkpoint_wait_s": wait_s,
                    "reason": f"no checkpoint within {wait_s:.0f}s, or the run finished before the kill"}
        done = load_torch(TEACHER_CKPT)["epoch"] + 1
        rerun = start_teacher(env, watchdog, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            log = rerun.communicate(timeout=max(1.0, clock.left()))[0]
        except subprocess.TimeoutExpired:
            rerun.kill()
            return {"pass": False, "seconds_to_first_checkpoint": seen, "reason": "the rerun ran out of budget"}
        if rerun.returncode != 0:
            return {"pass": False, "reason": f"rerun exited {rerun.returncode}: {log.strip().splitlines()[-1:]}"}
        got = load_torch(TEACHER)["state"]
    diff = max(float((got[k].float() - ref[k].float()).abs().max()) for k in ref)
    resumed = f"resuming from {TEACHER_CKPT} after epoch {done}" in log
    return {"pass": resumed and all(got[k].shape == ref[k].shape for k in ref), "resumed_after_epoch": done,
            "seconds_to_first_checkpoint": seen, "first_checkpoint_wait_s": wait_s, "resume_message_seen": resumed,
            "max_abs_weight_diff_vs_uninterrupted": diff, "bit_identical": diff == 0.0}


def views_match(args, dev: torch.device) -> dict:
    """One seed, the same raw views on the CPU and the device (crop/flip exact; RandAugment ops may round)."""
    x = torch.from_numpy(load_known(256, path=args.data)[0]).permute(0, 3, 1, 2).contiguous()
    res = {}
    for m in (0, args.randaugment):
        a, b = BaseAug(randaugment=m)(x, 7), BaseAug(randaugment=m)(x.to(dev), 7).cpu()
        res[f"randaugment_{m}"] = {"identical": bool(torch.equal(a, b)),
                                   "max_abs_diff": int((a.int() - b.int()).abs().max()),
                                   "fraction_differing": float((a != b).float().mean())}
    res["pass"] = res["randaugment_0"]["identical"]
    return res
