"""Throughput on the device, side by side in one process per batch size: the plain step on one resident batch
(the floor), the teacher step, the student step with cached logits and with a live teacher (bench/variants.py),
each warmed up (compile), calibrated to blocks of >= block_s, then timed round-robin for `reps` repetitions."""
from __future__ import annotations

import math
import statistics
import time
from argparse import Namespace

import torch

from bench.common import load_known, resident, sync, time_block
from bench.device import first_line
from bench.device.plan import Clock
from bench.throughput import ratios_of
from bench.variants import Plain, StudentCached, StudentLive, Teacher
from osr.machine import device_name

VARIANTS = ("plain", "teacher", "student_cached", "student_live")
RATIOS = {"student_cached/plain": ("student_cached", "plain"), "teacher/plain": ("teacher", "plain"),
          "student_live/student_cached": ("student_live", "student_cached"),
          "student_live/plain": ("student_live", "plain")}


def makers(x, y, y_np, args, batch: int, dev: torch.device) -> dict:
    a = Namespace(batch=batch, width=args.width, arch=args.student_arch, teacher_arch=args.teacher_arch,
                  randaugment=args.randaugment, compile=args.compile)
    return {"plain": lambda: Plain(x, y, a, dev),
            "teacher": lambda: Teacher(x, y, Namespace(**{**vars(a), "arch": args.teacher_arch}), dev),
            "student_cached": lambda: StudentCached(x, y, y_np, a, dev),
            "student_live": lambda: StudentLive(x, y, y_np, a, dev)}


def warm_up(make, row: dict, args, batch: int, dev: torch.device):
    """Build a variant, run its warm-up steps (the compile) and one calibration block; the variant."""
    tw = time.perf_counter()
    v = make()
    for _ in range(args.warmup):
        v.step()
    sync(dev)
    row["warmup_s"] = time.perf_counter() - tw
    ips = time_block(v, args.calib_steps, dev)[0]
    row["steps_per_block"] = max(args.calib_steps, math.ceil(args.block_s * ips / batch))
    return v


def time_round_robin(variants: dict, rows: dict, args, dev: torch.device, clock: Clock, end: float, save) -> None:
    """`reps` repetitions, the order reversed on every other one; a repetition starts only with three blocks'
    time left before `end`."""
    for r in range(args.reps):
        names = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in names:
            if clock.left(end) < args.block_s * 3:
                return
            ips, _, mib = time_block(variants[name], rows[name]["steps_per_block"], dev)
            rows[name]["images_per_s"].append(ips)
            rows[name]["device_peak_mib"] = mib if dev.type == "cuda" else None
        save()


def mark_short(rows: dict, reps: int) -> list[str]:
    """Median per variant; a variant with fewer than `reps` repetitions is marked `short`. The short ones."""
    short = []
    for name, row in rows.items():
        got = len(row["images_per_s"])
        if got:
            row["median_images_per_s"] = statistics.median(row["images_per_s"])
        if got < reps:
            row["short"] = f"{got} of {reps} repetitions"
            short.append(name)
    return short


def one_batch(x, y, y_np, args, batch: int, dev: torch.device, clock: Clock, end: float, out: dict, save) -> None:
    """All variants at one batch size; a variant starts only with `reserve_s` left before `end`."""
    rows = {n: {"images_per_s": [], "steps_per_block": 0} for n in VARIANTS}
    out["batches"][str(batch)] = {"variants": rows}
    variants = {}
    for name, make in makers(x, y, y_np, args, batch, dev).items():
        if clock.left(end) < args.reserve_s:
            rows[name]["skipped"] = "time budget"
            continue
        try:
            variants[name] = warm_up(make, rows[name], args, batch, dev)
        except Exception as e:  # one variant's failure must not cost the others' numbers
            rows[name]["error"] = out.setdefault("errors", {})[f"{batch}/{name}"] = first_line(e)
        save()
    time_round_robin(variants, rows, args, dev, clock, end, save)
    out["batches"][str(batch)]["short"] = mark_short(rows, args.reps)
    out["batches"][str(batch)]["ratios"] = {k: v["median"] for k, v in ratios_of(rows, RATIOS).items()}
    del variants
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    save()


def throughput(args, dev: torch.device, clock: Clock, end: float, out: dict, save) -> None:
    """Every batch size in --batches order until `end` (seconds since the start); `complete` in `out` is false
    when a variant was skipped or short."""
    x_np, y_np = load_known(args.images, path=args.data)
    x, y = resident(x_np, y_np, dev)
    out.update(device=device_name(dev), torch=torch.__version__, images=len(x_np), block_s=args.block_s,
               reps=args.reps, student=f"{args.student_arch} w{args.width}",
               teacher=f"{args.teacher_arch} w{args.width}", randaugment=args.randaugment, batches={})
    for batch in args.batches:
        one_batch(x, y, y_np, args, batch, dev, clock, end, out, save)
    out["target_student_cached_ge_0.9_plain"] = {
        b: r["ratios"].get("student_cached/plain") for b, r in out["batches"].items()}
