"""The prepared device check (issue 13): one command, <= 7 min on an H200, library in-process (no DVC, Hydra, GX,
Prefect on the GPU host). Writes, under --out (the device tool's $OUT), as the repository paths they belong at:

1. ``bench/results/gpu_h200.json``: throughput side by side in one process at batch 128 and 512 -- the plain
   compiled ResNet-18 step on a resident batch, the teacher step (ResNet-50), the student step with cached
   logits and with a live teacher (``bench.throughput``'s variants, compiled on CUDA) -- blocks of >= --block-s,
   medians of --reps repetitions, with the ratios;
2. ``bench/results/paper_projection.json``: the paper profile for --epochs epochs per model through the real
   stage functions (augment, train_teacher, relabel, distill, evaluate; download and split without their
   DVC/GX parts), seconds per stage and per epoch, extrapolated to the profile's 200 epochs;
   (``--profile paper_b512``: ``bench/results/paper_b512_projection.json``, the batch-512 variant [ours]),
   plus the kill-and-resume of the teacher stage on the device (SIGKILL after its first checkpoint, rerun, the
   weights compared with the uninterrupted run) and CPU-vs-device augmentation views, pass/fail in that JSON.

Parts run cheapest first and every JSON is rewritten as results come in, so a timeout still leaves them;
a part that fails is recorded (``error``) and the others still run. ``--tiny`` shrinks everything for the CPU
test (tests/test_device_check.py). Usage: bench/README.md, section "Device check".
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from argparse import Namespace
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python bench/device_check.py` as well as `python -m bench.device_check`

from bench.throughput import (  # noqa: E402
    Plain,
    StudentCached,
    StudentLive,
    Teacher,
    device_name,
    load_known,
    sync,
    time_block,  # noqa: E402
)
from osr.augment import BaseAug  # noqa: E402
from osr.compose import compose_conf  # noqa: E402
from osr.config import validate  # noqa: E402
from osr.data import normalise  # noqa: E402
from osr.io import atomic_path, load_npz, load_torch, read_json, save_npz, write_json  # noqa: E402
from osr.paths import MANIFEST, RAW, REPORTS, TEACHER, TEACHER_CKPT  # noqa: E402
from osr.split import make_manifest  # noqa: E402
from osr.train import every_epochs, set_determinism  # noqa: E402

DATA = ROOT / "data_carry" / "cifar10_jpeg.npz"   # git-ignored; travels with `run(carry=["data_carry"])`
THROUGHPUT_JSON, PROJECTION_JSON = "bench/results/gpu_h200.json", "bench/results/paper_projection.json"
PAPER_EPOCHS = 200


class Clock:
    """Wall-clock budget of the whole check: later parts shrink or are skipped, never overrun."""

    def __init__(self, budget_s: float):
        self.t0, self.budget = time.perf_counter(), budget_s

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float:
        return self.budget - self.elapsed()


def projection_json(profile: str) -> str:
    """paper (and --tiny, its CPU rehearsal): PROJECTION_JSON; another: bench/results/<profile>_projection.json."""
    return PROJECTION_JSON if profile in ("paper", "tiny") else f"bench/results/{profile}_projection.json"


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


# ------------------------------------------------------------------------------------------------ 1 throughput

def throughput(args, dev: torch.device, clock: Clock, out: dict, save) -> None:
    """Variants side by side per batch size: warm-up (compile), one calibration block, then round-robin blocks."""
    x_np, y_np = load_known(args.images, path=args.data)
    x = torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous().to(dev)
    y = torch.from_numpy(y_np).to(dev)
    out.update(device=device_name(dev), torch=torch.__version__, images=len(x_np), block_s=args.block_s,
               reps=args.reps, compile=dev.type == "cuda", student=f"{args.student_arch} w{args.width}",
               teacher=f"{args.teacher_arch} w{args.width}", randaugment=args.randaugment, batches={})
    for batch in args.batches:
        a = Namespace(batch=batch, width=args.width, arch=args.student_arch, teacher_arch=args.teacher_arch,
                      randaugment=args.randaugment)
        makers = {"plain": lambda: Plain(x, y, a, dev),
                  "teacher": lambda: Teacher(x, y, Namespace(**{**vars(a), "arch": args.teacher_arch}), dev),
                  "student_cached": lambda: StudentCached(x, y, y_np, a, dev),
                  "student_live": lambda: StudentLive(x, y, y_np, a, dev)}
        rows = out["batches"][str(batch)] = {n: {"images_per_s": [], "steps_per_block": 0} for n in makers}
        variants, v = {}, None
        for name, make in makers.items():
            if clock.left() < args.reserve_s:
                rows[name]["skipped"] = "time budget"
                continue
            try:
                tw = time.perf_counter()
                v = make()
                for _ in range(args.warmup):
                    v.step()
                sync(dev)
                rows[name]["warmup_s"] = time.perf_counter() - tw  # includes torch.compile on CUDA
                ips = time_block(v, args.calib_steps, dev)[0]
                rows[name]["steps_per_block"] = max(args.calib_steps, math.ceil(args.block_s * ips / batch))
                variants[name] = v
            except Exception as e:  # one variant's failure must not cost the others' numbers
                rows[name]["error"] = out.setdefault("errors", {})[f"{batch}/{name}"] = first_line(e)
            save()
        for r in range(args.reps):
            names = list(variants) if r % 2 == 0 else list(reversed(variants))
            for name in names:
                if clock.left() < args.block_s * 3:
                    break
                ips, _, mib = time_block(variants[name], rows[name]["steps_per_block"], dev)
                rows[name]["images_per_s"].append(ips)
                rows[name]["device_peak_mib"] = mib if dev.type == "cuda" else None
            save()
        for row in rows.values():
            if row["images_per_s"]:
                row["median_images_per_s"] = statistics.median(row["images_per_s"])
        out["batches"][str(batch)]["ratios"] = ratios(rows)
        del variants, v
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        save()
    out["target_student_cached_ge_0.9_plain"] = {
        b: r["ratios"].get("student_cached/plain") for b, r in out["batches"].items()}


def ratios(rows: dict) -> dict:
    pairs = {"student_cached/plain": ("student_cached", "plain"), "teacher/plain": ("teacher", "plain"),
             "student_live/student_cached": ("student_live", "student_cached"),
             "student_live/plain": ("student_live", "plain")}
    out = {}
    for key, (a, b) in pairs.items():
        if rows[a]["images_per_s"] and rows[b]["images_per_s"]:
            per = [pa / pb for pa, pb in zip(rows[a]["images_per_s"], rows[b]["images_per_s"])]
            out[key] = statistics.median(per)
    return out


# ------------------------------------------------------------------------------------------------ 2 projection

@contextmanager
def inside(folder: Path):
    """Run with `folder` as the working directory (the stages use paths relative to the project root)."""
    old = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


def paper_params(args, dev: torch.device) -> dict:
    """The profile's params.yaml (composed without Hydra), with --epochs per model and the device."""
    p = compose_conf(ROOT / "conf", profile=args.profile)
    p["base"]["device"] = dev.type
    for role in ("teacher", "student"):
        p[role]["epochs"] = args.epochs
    for dotted, value in args.set or []:
        node = p
        *path, leaf = dotted.split(".")
        for part in path:
            node = node[part]
        node[leaf] = yaml.safe_load(value)
    return validate(p, "device check params")


def write_raw(npz: Path, limit: int) -> None:
    """The download stage's output without its mirror/URL logic: decode (a class-balanced prefix of) the file."""
    z = load_npz(npz)
    parts = {}
    for role in ("train", "test"):
        y = z[f"y_{role}"]
        keep = np.sort(np.concatenate([np.flatnonzero(y == c)[:limit] for c in np.unique(y)])) if limit \
            else np.arange(len(y))
        off, buf = z[f"off_{role}"], z[f"jpeg_{role}"]
        chunks = [buf[off[i]:off[i + 1]] for i in keep]
        parts[f"jpeg_{role}"] = np.concatenate(chunks)
        parts[f"off_{role}"] = np.concatenate([[0], np.cumsum([len(c) for c in chunks])]).astype(np.int64)
        parts[f"y_{role}"] = y[keep]
    save_npz(RAW, **normalise("cifar10", {"cifar10": {**parts, "classes": z["classes"]}}))


def write_manifest(p: dict) -> None:
    """The split stage without its great-expectations validation (not installed on the GPU host)."""
    from osr.data import split_classes
    raw = load_npz(RAW)
    s = p["split"]
    known, unknown = split_classes(p["data"]["benchmark"], s["index"], raw["y_test"])
    df = make_manifest(raw["y_train"], raw["y_test"], known, unknown, float(s["val_fraction"]), p["base"]["seed"],
                       s["train_per_class"], s["test_per_class"], tuple(raw["x_train"].shape[1:]),
                       str(raw["x_train"].dtype))
    with atomic_path(MANIFEST) as tmp:
        df.to_csv(tmp, index=False)


def stage_main(name: str):
    return __import__(f"stages.{name}", fromlist=["main"]).main


def projection(args, dev: torch.device, work: Path, clock: Clock, out: dict, save) -> dict:
    p = paper_params(args, dev)
    out.update(profile=args.profile, epochs_run=args.epochs, epochs_projected=PAPER_EPOCHS,
               teacher=f"{p['teacher']['arch']} w{p['teacher']['width']}",
               student=f"{p['student']['arch']} w{p['student']['width']}", batch=p["teacher"]["batch_size"],
               device=device_name(dev), stages={})
    with inside(work):
        Path("params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
        steps = [("download", lambda: write_raw(args.data, args.per_class)), ("split", lambda: write_manifest(p))]
        steps += [(n, stage_main(n)) for n in ("augment", "train_teacher", "relabel", "distill", "evaluate")]
        for name, fn in steps:
            if clock.left() < args.reserve_s:
                out["stages"][name] = {"skipped": "time budget"}
                save()
                return p
            t0 = time.perf_counter()
            fn()
            sync(dev)
            row = out["stages"][name] = {"seconds": time.perf_counter() - t0}
            role = {"train_teacher": "teacher", "distill": "student"}.get(name)
            if role:
                history = read_json(REPORTS / "run" / f"{name}.json")["history"]
                row["epoch_seconds"] = [h["seconds"] for h in history]
                row["callback_seconds"] = [h["seconds_callback"] for h in history if "seconds_callback" in h]
                row["validations_projected"] = len(due_epochs(PAPER_EPOCHS, p[role]["checkpoint_every"]))
            save()
            print(f"projection: {name} {row['seconds']:.1f}s", flush=True)
    out["complete_stages"] = True
    out["projected_seconds"] = project(out["stages"], args.epochs)
    total = out["projected_seconds"]["total"]
    out["target_split0_le_480s"] = {"projected_s": total, "met": total <= 480}
    return p


def due_epochs(epochs: int, setting) -> list[int]:
    k = every_epochs(setting, epochs)
    return [e for e in range(epochs) if (e + 1) % k == 0 or e == epochs - 1]


def steady_and_first(seconds: list[float]) -> tuple[float, float]:
    """Steady per-call time (median after the first) and the first call's extra (compile, warm-up)."""
    steady = statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
    return steady, seconds[0] - steady


def project(stages: dict, n: int) -> dict:
    """Per stage, 200 epochs: training epochs and validations (as many as checkpoint_every gives) at their steady
    time plus the first one's extra once; the rest of the stage (data, model, checkpoints) once; the plan and the
    teacher pass scale with the epochs; everything else once."""
    f = PAPER_EPOCHS / n
    res = {}
    for name, row in stages.items():
        if "epoch_seconds" in row:
            ep, cb = row["epoch_seconds"], row["callback_seconds"] or [0.0]
            rest = max(0.0, row["seconds"] - sum(ep) - sum(row["callback_seconds"]))
            (t_ep, x_ep), (t_cb, x_cb) = steady_and_first(ep), steady_and_first(cb)
            res[name] = PAPER_EPOCHS * t_ep + x_ep + row["validations_projected"] * t_cb + x_cb + rest
        elif name in ("augment", "relabel"):  # the plan and the teacher pass are per epoch
            res[name] = row["seconds"] * f
        else:
            res[name] = row["seconds"]
    res["total"] = sum(res.values())
    return res


# ------------------------------------------------------------------------------------------------ 3 resume

def kill_and_resume(work: Path, clock: Clock, timeout_s: float) -> dict:
    """SIGKILL the teacher stage after its first checkpoint, rerun it, compare with the uninterrupted weights
    (the projection's teacher, same params)."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OSR_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "stages.train_teacher"]
    with inside(work):
        ref = load_torch(TEACHER)["state"]
        TEACHER.unlink()
        TEACHER_CKPT.unlink()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # no pipe to fill
        deadline = time.perf_counter() + timeout_s
        while not TEACHER_CKPT.exists() and proc.poll() is None and time.perf_counter() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_early = not TEACHER.exists() and TEACHER_CKPT.exists()
        if not killed_early:
            return {"pass": False, "reason": "the first run finished (or never checkpointed) before the kill"}
        done = load_torch(TEACHER_CKPT)["epoch"] + 1
        rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=max(10.0, clock.left()))
        log = rerun.stdout + rerun.stderr
        if rerun.returncode != 0:
            return {"pass": False, "reason": f"rerun exited {rerun.returncode}: {log.strip().splitlines()[-1:]}"}
        got = load_torch(TEACHER)["state"]
    diff = max(float((got[k].float() - ref[k].float()).abs().max()) for k in ref)
    resumed = f"resuming from {TEACHER_CKPT} after epoch {done}" in log
    return {"pass": resumed and all(got[k].shape == ref[k].shape for k in ref), "resumed_after_epoch": done,
            "resume_message_seen": resumed, "max_abs_weight_diff_vs_uninterrupted": diff,
            "bit_identical": diff == 0.0}


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


# ------------------------------------------------------------------------------------------------ main

def parse(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.device_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT)), help="results root ($OUT)")
    ap.add_argument("--data", type=Path, default=DATA, help="cifar10_jpeg.npz")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--budget-s", type=float, default=400.0, help="wall-clock budget of the whole check")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (the CPU test)")
    ap.add_argument("--parts", default="views,projection,resume,throughput",
                    help="comma-separated subset, in this order (resume needs projection)")
    ap.add_argument("--profile", default="paper", choices=["paper", "paper_b512"],
                    help="profile of the projection (paper_b512: the batch-512 variant, a second run's choice)")
    ap.add_argument("--set", nargs=2, action="append", metavar=("KEY", "VALUE"), help="extra params override")
    args = ap.parse_args(argv)
    sizes = dict(epochs=2, per_class=0, images=0, batches=[128, 512], width=64,
                 student_arch="resnet18", teacher_arch="resnet50", randaugment=9, warmup=3, calib_steps=5,
                 block_s=1.0, reps=3, reserve_s=60.0)  # a stage or a variant (compile) starts only with 60 s left
    if args.tiny:
        sizes.update(profile="tiny", epochs=4, per_class=60, images=256, batches=[32, 64], width=4, warmup=1,
                     calib_steps=2, block_s=0.05, reserve_s=0.0)
    for k, v in sizes.items():
        setattr(args, k, v)
    args.parts = args.parts.split(",")
    unknown = set(args.parts) - {"views", "projection", "resume", "throughput"}
    if unknown:
        ap.error(f"--parts: unknown {sorted(unknown)}")
    if not args.data.is_file():
        ap.error(f"--data: {args.data} not found (copy cifar10_jpeg.npz there: bench/README.md, 'Device check')")
    return args


def main(argv=None) -> int:
    args = parse(argv)
    dev = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                       "cpu" if args.device == "auto" else args.device)
    clock = Clock(args.budget_s)
    set_determinism(0, dev)
    thr, proj = {"complete": False}, {"complete": False}

    written = [(thr, THROUGHPUT_JSON)] if "throughput" in args.parts else []
    if set(args.parts) - {"throughput"}:
        written.append((proj, projection_json(args.profile)))

    def save():  # only the files of the parts that run: a rerun of one part never blanks the other's
        for obj, rel in written:
            obj["wall_s"] = clock.elapsed()
            write_json(args.out / rel, obj)

    work = Path(tempfile.mkdtemp(prefix="osr_device_check_"))
    parts = {"views": lambda: proj.update(views=views_match(args, dev)),
             "projection": lambda: projection(args, dev, work, clock, proj, save),
             "resume": lambda: proj.update(kill_and_resume=kill_and_resume(work, clock, 120.0)),
             "throughput": lambda: (set_determinism(0, dev, deterministic=False),
                                    throughput(args, dev, clock, thr, save))}
    try:
        for name, fn in parts.items():
            if name not in args.parts:
                continue
            if name == "resume" and not proj.get("complete_stages"):
                proj["kill_and_resume"] = {"pass": False, "reason": "needs the projection's teacher run"}
                continue
            t0 = time.perf_counter()
            try:
                fn()
            except Exception as e:  # recorded; the remaining parts still run
                (thr if name == "throughput" else proj).setdefault("errors", {})[name] = first_line(e)
                print(f"{name} failed: {first_line(e)}", flush=True)
            print(f"{name}: {time.perf_counter() - t0:.1f}s", flush=True)
            save()
        thr["complete"] = proj["complete"] = True
        save()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ok = all(proj.get(k, {}).get("pass") for k, part in (("kill_and_resume", "resume"), ("views", "views"))
             if part in args.parts) and not thr.get("errors") and not proj.get("errors")
    print(f"device check {'passed' if ok else 'FAILED'} in {clock.elapsed():.0f}s; wrote "
          + " and ".join(str(args.out / rel) for _, rel in written))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
