"""The prepared device check: one command on one GPU, within a wall-clock budget, the library in-process (no DVC,
Hydra, great-expectations or Prefect on the GPU host). Writes, under --out (the device tool's $OUT):

1. ``bench/results/gpu_h200.json``: throughput side by side at batch 128 and 512 (bench/device/throughput.py);
2. ``bench/results/paper_projection.json`` (``--profile paper_b512``: ``paper_b512_projection.json``): the paper
   profile for --epochs epochs per model through the stages, projected to 200 epochs
   (bench/device/projection.py), plus kill-and-resume of the teacher stage and CPU-vs-device augmentation views
   (bench/device/checks.py), pass/fail.

The time plan (bench/device/plan.py) shares the budget out so that no part overruns it, throughput first; the JSON
files are rewritten after every result; a failing part is recorded and the others still run; ``complete`` is
true only when every part ran in full. Exit status: 0 complete and passed, 1 otherwise, 2 the device is unusable,
3 the watchdog stopped the run. ``--tiny`` shrinks everything for the CPU rehearsal (tests/test_device_check.py).
Usage: docs/performance.md, "Device check".
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python bench/device_check.py` as well as `python -m bench.device_check`

import torch  # noqa: E402

from bench.device import first_line  # noqa: E402
from bench.device.checks import kill_and_resume, resume_estimate_s, views_match  # noqa: E402
from bench.device.limits import problems  # noqa: E402
from bench.device.plan import Clock, Watchdog  # noqa: E402
from bench.device.projection import projection, projection_json  # noqa: E402
from bench.device.startup import compile_backend, compile_smoke, cuda_problem  # noqa: E402
from bench.device.throughput import throughput  # noqa: E402
from osr.io import write_json  # noqa: E402
from osr.train import set_determinism  # noqa: E402

DATA = ROOT / "data_carry" / "cifar10_jpeg.npz"   # git-ignored; copied to the GPU machine with the tree
THROUGHPUT_JSON = "bench/results/gpu_h200.json"
PARTS = ("views", "throughput", "projection", "resume")
SIZES = dict(epochs=2, per_class=0, images=0, batches=[128, 512], width=64, student_arch="resnet18",
             teacher_arch="resnet50", randaugment=9, warmup=3, calib_steps=5, block_s=1.0, reps=3,
             reserve_s=60.0, eval_reserve_s=45.0, start_s=20.0)  # reserve_s: a stage or a variant (compile) starts
TINY = dict(profile="tiny", epochs=4, per_class=60, images=256, batches=[32, 64], width=8, warmup=1, calib_steps=2,
            block_s=0.05, reserve_s=0.0, eval_reserve_s=5.0, start_s=5.0)


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.device_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT)), help="results root ($OUT)")
    ap.add_argument("--data", type=Path, default=DATA, help="cifar10_jpeg.npz")
    ap.add_argument("--device", default="cuda", choices=["cpu", "cuda"], help="cuda (default) fails at once if "
                    "CUDA is unusable; cpu for a rehearsal")
    ap.add_argument("--budget-s", type=float, default=400.0, help="wall-clock budget of the whole check")
    ap.add_argument("--grace-s", type=float, default=30.0, help="the watchdog ends the run this long after the budget")
    ap.add_argument("--throughput-share", type=float, default=0.4, help="share of the budget throughput may use")
    ap.add_argument("--compile", default="auto", choices=["auto", "off", "inductor"],
                    help="auto: inductor on CUDA, eager on the CPU; inductor: forced (the rehearsal)")
    ap.add_argument("--epochs", type=int, help="epochs per model in the projection (default 2, --tiny 4)")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (the CPU rehearsal)")
    ap.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset (resume needs projection)")
    ap.add_argument("--profile", default="paper", choices=["paper", "paper_b512"],
                    help="profile of the projection (paper_b512: the batch-512 variant, a second run's choice)")
    ap.add_argument("--set", nargs=2, action="append", metavar=("KEY", "VALUE"), help="extra params override")
    args = ap.parse_args(argv)
    epochs = args.epochs
    for k, v in {**SIZES, **(TINY if args.tiny else {})}.items():
        setattr(args, k, v)
    args.epochs = epochs or args.epochs
    args.parts = args.parts.split(",")
    if set(args.parts) - set(PARTS):
        ap.error(f"--parts: unknown {sorted(set(args.parts) - set(PARTS))} (choose from {', '.join(PARTS)})")
    if not args.data.is_file():
        ap.error(f"--data: {args.data} not found (copy cifar10_jpeg.npz there: docs/performance.md, 'Device check')")
    return args


class Results:
    """The result files of the parts that run (a rerun of one part never blanks another's), rewritten after every
    result, atomically."""

    def __init__(self, args, clock: Clock):
        self.out, self.clock = args.out, clock
        self.thr, self.proj = {"complete": False}, {"complete": False}
        self.files = [(self.thr, THROUGHPUT_JSON)] if "throughput" in args.parts else []
        if set(args.parts) - {"throughput"}:
            self.files.append((self.proj, projection_json(args.profile)))

    def save(self) -> None:
        for obj, rel in self.files:
            obj["wall_s"] = self.clock.elapsed()
            write_json(self.out / rel, obj)


def start_up(args, dev: torch.device, res: Results) -> str | None:
    """The compile backend the check runs with: --compile's, unless its smoke test fails (then eager)."""
    backend = compile_backend(args.compile, dev)
    smoke = compile_smoke(dev, backend) if backend else None
    if smoke and not smoke["compile"]:
        print(f"compile smoke test failed, running eager: {smoke['error']}", flush=True)
        backend = None
    for obj, _ in res.files:
        obj.update(compile=backend is not None, compile_smoke=smoke, budget_s=args.budget_s)
    res.save()
    return backend


def resume_part(args, clock: Clock, watchdog: Watchdog, work: Path, proj: dict) -> dict:
    """Kill-and-resume, if the projection's teacher ran uninterrupted and its estimate fits in what is left."""
    teacher = proj.get("stages", {}).get("train_teacher", {})
    if "seconds" not in teacher or "stopped_after_epoch" in teacher:
        return {"pass": False, "skipped": "needs the projection's uninterrupted teacher run"}
    need = resume_estimate_s(teacher["seconds"], args.start_s)
    if clock.left() < need:
        return {"pass": False, "skipped": f"time budget: about {need:.0f}s needed, {clock.left():.0f}s left"}
    return kill_and_resume(work, clock, watchdog, teacher["seconds"], args.start_s)


def run_part(name: str, args, dev: torch.device, clock: Clock, watchdog: Watchdog, work: Path, res: Results) -> None:
    if name == "views":
        res.proj["views"] = views_match(args, dev)
    elif name == "throughput":  # first, within its share; the projection gets the rest
        set_determinism(0, dev, deterministic=False)
        end = clock.deadline_in(args.throughput_share) if "projection" in args.parts else clock.budget
        throughput(args, dev, clock, end, res.thr, res.save)
        set_determinism(0, dev)
    elif name == "projection":
        projection(args, dev, args.compile, work, clock, clock.budget, res.proj, res.save)
    else:
        res.proj["kill_and_resume"] = resume_part(args, clock, watchdog, work, res.proj)


def incomplete(args, res: Results) -> list[str]:
    """What did not run in full: errors, skipped or short throughput variants, skipped or stopped stages, and
    skipped checks."""
    why = [f"{part}: {e}" for obj in (res.thr, res.proj) for part, e in obj.get("errors", {}).items()]
    for batch, b in res.thr.get("batches", {}).items():
        why += [f"throughput {batch}/{n}: {r.get('short') or r.get('skipped') or r.get('error')}"
                for n, r in b["variants"].items() if "short" in r or "skipped" in r or "error" in r]
    for name, row in res.proj.get("stages", {}).items():
        if "skipped" in row or "stopped_after_epoch" in row:
            why.append(f"projection {name}: " + (row.get("skipped") or f"stopped after epoch "
                                                 f"{row['stopped_after_epoch']} by the time budget"))
    why += [f"{k}: {res.proj[k]['skipped']}" for k in ("views", "kill_and_resume") if "skipped" in res.proj.get(k, {})]
    return why


def report(args, res: Results, clock: Clock) -> int:
    """Mark `complete`, save, print the verdict and any return-limit problem of $OUT; the exit status."""
    why = incomplete(args, res)
    for obj, _ in res.files:
        obj.update(complete=not why, incomplete=why)
    res.save()
    checks = [res.proj.get(k, {}).get("pass") for k, part in (("kill_and_resume", "resume"), ("views", "views"))
              if part in args.parts]
    ok = not why and all(checks)
    for line in why:
        print(f"incomplete: {line}")
    print(f"device check {'passed' if ok else 'FAILED'} in {clock.elapsed():.0f}s; wrote "
          + " and ".join(str(args.out / rel) for _, rel in res.files), flush=True)
    if args.out.resolve() != ROOT:
        for line in problems(args.out):
            print(f"$OUT: {line}")
    return 0 if ok else 1


def main(argv=None) -> int:
    args = parse(argv)
    if args.device == "cuda" and (problem := cuda_problem()):
        print(f"device check: {problem}; --device cpu runs the CPU rehearsal", file=sys.stderr)
        return 2
    dev, clock = torch.device(args.device), Clock(args.budget_s)
    watchdog, res = Watchdog(clock, args.grace_s), Results(args, clock)
    work = Path(tempfile.mkdtemp(prefix="osr_device_check_"))
    try:
        set_determinism(0, dev)
        args.compile = start_up(args, dev, res)
        for name in (p for p in PARTS if p in args.parts):
            t0 = time.perf_counter()
            try:
                run_part(name, args, dev, clock, watchdog, work, res)
            except Exception as e:  # recorded; the remaining parts still run
                (res.thr if name == "throughput" else res.proj).setdefault("errors", {})[name] = first_line(e)
                print(f"{name} failed: {first_line(e)}", flush=True)
            print(f"{name}: {time.perf_counter() - t0:.1f}s", flush=True)
            res.save()
    finally:
        watchdog.cancel()
        shutil.rmtree(work, ignore_errors=True)
    return report(args, res, clock)


if __name__ == "__main__":
    sys.exit(main())
