"""Training-throughput benchmark: the seed papers' per-sample DataLoader loop vs the project's batched paths.

Variants (same device, same network, after warm-up, interleaved round-robin over several repetitions):

1. ``typical_w0`` / ``typical_w2``: torch ``Dataset`` over uint8 HWC numpy images, PIL + torchvision.transforms
   (RandomCrop(32, 4), RandomHorizontalFlip, ToTensor, Normalize) per sample, ``DataLoader`` with 0 / 2 workers,
   fp32, contiguous (NCHW) memory format;
2. ``teacher``: uint8 tensors resident on the device, ``osr.augment.BaseAug`` batched augmentation, channels_last,
   bf16 autocast, the library's step and optimiser (``osr.train.train_step``, ``make_optimizer``;
   ``torch.compile`` on CUDA only); ``teacher_fp32`` (2b): the same step without autocast;
3. ``student_cached``: asym distillation step fed by ``osr.distill.student_batches`` over a CutMix plan
   (``osr.augment.make_plan``) with cached teacher logits (random, of the right shape);
4. ``student_live``: the same step but the teacher runs on the raw and mixed views every step
   (``torch.inference_mode`` + autocast, as ``osr.relabel.teacher_outputs``), each mixed step relabelled by
   ``osr.relabel.relabel_targets``;
5. ``student_gradmix``: the plain (ce) student over a GradMix plan (half of the steps masked: LayerCAM of the
   clean forward, noise box, second forward), to measure what attribution-guided masking costs per image.

The variants are in bench/variants.py. Modes: default (throughput table -> bench/results/<device>.json),
``--scale`` (teacher-step epoch time on 10/50/100% of the split-0 known-class training images ->
scale_<device>.json/.png, bench/scale.py), ``--profile`` (torch.profiler over ~10 student distill steps ->
profile_<device>.txt, bench/profiler.py).
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import PARAMS, RESULTS, SEED, load_known, resident, sync, time_block
from bench.variants import StudentCached, StudentGradMix, StudentLive, Teacher, Typical
from osr.io import write_json
from osr.machine import device_name, peak_rss_mib
from osr.train import native_bf16

RATIOS = {"teacher/typical_w0 (2/1)": ("teacher", "typical_w0"),
          "teacher/typical_dp (data path only: same dtype, layout, compile)": ("teacher", "typical_dp"),
          "typical_dp/typical_w0 (numerics only)": ("typical_dp", "typical_w0"),
          "teacher_fp32/teacher (2b/2, precision only: fp32 vs bf16 autocast)": ("teacher_fp32", "teacher"),
          "student_cached/teacher (3/2)": ("student_cached", "teacher"),
          "student_live/student_cached (4/3)": ("student_live", "student_cached"),
          "student_gradmix/student_cached (5/3)": ("student_gradmix", "student_cached"),
          "student_cached/student_live (3/4, cache speed-up)": ("student_cached", "student_live"),
          "teacher/typical_w2 (2/1, 2 workers)": ("teacher", "typical_w2"),
          "typical_w2/typical_w0": ("typical_w2", "typical_w0")}


def ratios_of(rows: dict, pairs: dict[str, tuple[str, str]]) -> dict:
    """Median of per-repetition ratios (variants of one repetition ran back to back: robust to drift), for every
    pair whose two variants both have timings so far."""
    out = {}
    for key, (a, b) in pairs.items():
        ra, rb = rows.get(a, {}).get("images_per_s"), rows.get(b, {}).get("images_per_s")
        if ra and rb:
            per = [pa / pb for pa, pb in zip(ra, rb)]
            out[key] = {"median": statistics.median(per), "per_rep": per,
                        "of_medians": statistics.median(ra) / statistics.median(rb)}
    return out


def summarise_rows(rows: dict) -> None:
    for row in rows.values():
        if row["images_per_s"]:
            row["median_images_per_s"] = statistics.median(row["images_per_s"])
            row["min_images_per_s"], row["max_images_per_s"] = min(row["images_per_s"]), max(row["images_per_s"])


def cpu_targets(ratios: dict) -> dict:
    if "teacher/typical_w0 (2/1)" not in ratios or "student_cached/teacher (3/2)" not in ratios:
        return {"note": "incomplete run"}
    r21 = ratios["teacher/typical_w0 (2/1)"]["median"]
    r21_best = min(r21, ratios.get("teacher/typical_w2 (2/1, 2 workers)", {"median": r21})["median"])
    r32 = ratios["student_cached/teacher (3/2)"]["median"]
    return {"cpu_2_over_1_ge_2x": {"value_vs_w0": r21, "value_vs_best_typical": r21_best, "met": r21_best >= 2.0},
            "cpu_3_over_2_ge_0.9x": {"value": r32, "met": r32 >= 0.9}}


def variant_makers(x_np: np.ndarray, y_np: np.ndarray, x: torch.Tensor, y: torch.Tensor, args,
                   dev: torch.device) -> dict[str, Callable[[], Any]]:
    """Variant name -> its constructor, in the order the variants are warmed up and first timed; the DataLoader
    variants read the numpy images (`x_np`, `y_np`), the others the resident tensors (`x`, `y`)."""
    makers = {"typical_w0": lambda: Typical(x_np, y_np, args, dev, 0),
              "typical_dp": lambda: Typical(x_np, y_np, args, dev, 0, project_numerics=True)}
    if args.workers2:
        makers["typical_w2"] = lambda: Typical(x_np, y_np, args, dev, 2)
    makers.update(teacher=lambda: Teacher(x, y, args, dev), teacher_fp32=lambda: Teacher(x, y, args, dev, amp=False),
                  student_cached=lambda: StudentCached(x, y, y_np, args, dev),
                  student_live=lambda: StudentLive(x, y, y_np, args, dev),
                  student_gradmix=lambda: StudentGradMix(x, y, y_np, args, dev))
    return makers


THROUGHPUT_NOTES = (
    "typical_*: each timed block starts a fresh DataLoader iterator and waits for its first batch before the clock "
    "starts, and shuts the workers down after it stops (so prefetching never runs into another variant's block). "
    "rss_mb = max RSS sampled after each step of that variant (process-wide, so it includes the other variants' "
    "resident state); typical_w2 workers' memory is not in it. Ratios are the median over repetitions of "
    "per-repetition ratios. Written after every block: 'complete' is false until the last one.")


class ThroughputRun:
    """One throughput run's state: the variants built so far, their timings and errors, and the result JSON
    (`out`), rewritten (atomically) after every block so that a crash or a timeout still leaves what was measured;
    a variant that fails is recorded and dropped, so it cannot cost the others' numbers."""

    def __init__(self, args, dev: torch.device, images: int, names: list[str], t0: float):
        self.args, self.dev, self.t0 = args, dev, t0
        self.rows = {n: {"images_per_s": [], "rss_mb": 0.0, "device_peak_mb": 0.0} for n in names}
        self.errors: dict[str, str] = {}
        self.variants: dict = {}
        self.path = args.out / f"{dev.type}{args.tag}.json"
        self.out = {"device": device_name(dev), "device_type": dev.type, "torch": torch.__version__,
                    "torchvision": __import__("torchvision").__version__, "python": platform.python_version(),
                    "threads": torch.get_num_threads(), "native_bf16": native_bf16(dev),
                    "arch": args.arch, "teacher_arch": args.teacher_arch,
                    "width": args.width, "batch": args.batch, "images": images, "steps_per_rep": args.steps,
                    "reps": args.reps, "warmup_steps": args.warmup, "compile": dev.type == "cuda",
                    "variants": self.rows, "errors": self.errors, "notes": THROUGHPUT_NOTES}

    def save(self, complete: bool) -> None:
        summarise_rows(self.rows)
        ratios = ratios_of(self.rows, RATIOS)
        self.out.update(ratios=ratios, targets=cpu_targets(ratios) if self.dev.type == "cpu" else
                        {"note": "GPU targets: see bench/device_check.py"}, complete=complete,
                        process_peak_rss_mb=peak_rss_mib(), wall_s=time.perf_counter() - self.t0)
        write_json(self.path, self.out)

    def attempt(self, name: str, work: Callable[[], None]) -> bool:
        """Run `work` for variant `name`; on an exception record it and drop the variant."""
        try:
            work()
            return True
        except Exception as e:  # a failing variant must not cost the others' numbers
            self.errors[name] = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            print(f"{name} failed: {self.errors[name]}", flush=True)
            self.variants.pop(name, None)
            return False

    def warm_up(self, makers: dict[str, Callable[[], Any]]) -> None:
        """Build every variant and run its untimed steps (worker start, allocator, autotuning, compile on CUDA)."""
        for name, make in makers.items():
            tw = time.perf_counter()

            def warm(name=name, make=make):
                self.variants[name] = v = make()
                for _ in range(self.args.warmup):
                    v.step()
                if hasattr(v, "end"):
                    v.end()
                sync(self.dev)
            if self.attempt(name, warm):
                print(f"warm-up {name}: {time.perf_counter() - tw:.1f}s", flush=True)
            self.save(False)

    def time_reps(self) -> None:
        """`--reps` repetitions of one timed block per variant, the order reversed on every other one."""
        reps = self.args.reps
        for r in range(reps):
            names = list(self.variants) if r % 2 == 0 else list(reversed(self.variants))
            for name in names:
                def block(name=name):
                    ips, rss, gpu = time_block(self.variants[name], self.args.steps, self.dev)
                    row = self.rows[name]
                    row["images_per_s"].append(ips)
                    row["rss_mb"] = max(row["rss_mb"], rss)
                    row["device_peak_mb"] = max(row["device_peak_mb"], gpu) if self.dev.type == "cuda" else None
                    print(f"rep {r + 1}/{reps} {name:>15}: {ips:8.1f} img/s  rss {rss:7.0f} MiB", flush=True)
                self.attempt(name, block)
                self.save(False)


def print_throughput(out: dict, path: Path) -> None:
    """The final table: median (min-max) images/s and RSS per variant, then the ratios and the targets."""
    print("\nvariant            median img/s   (min-max)      rss MiB")
    for n, row in out["variants"].items():
        if row["images_per_s"]:
            print(f"{n:>15}  {row['median_images_per_s']:10.1f}   ({row['min_images_per_s']:.0f}-"
                  f"{row['max_images_per_s']:.0f})   {row['rss_mb']:7.0f}")
    for k, v in out["ratios"].items():
        print(f"{k:>50}: {v['median']:.2f}x  (per rep {', '.join(f'{p:.2f}' for p in v['per_rep'])})")
    print(f"targets: {out['targets']}\nprocess peak RSS {out['process_peak_rss_mb']:.0f} MiB\nwrote {path}")


def throughput(args, dev: torch.device) -> dict:
    """Warm up, then time every variant round-robin (`ThroughputRun`); the result JSON as written."""
    t0 = time.perf_counter()
    x_np, y_np = load_known(args.subset)
    x, y = resident(x_np, y_np, dev)
    print(f"data: {len(x_np)} known-class images decoded in {time.perf_counter() - t0:.1f}s; "
          f"device {device_name(dev)}; torch {torch.__version__}", flush=True)
    makers = variant_makers(x_np, y_np, x, y, args, dev)
    run = ThroughputRun(args, dev, len(x_np), list(makers), t0)
    run.warm_up(makers)
    run.time_reps()
    run.save(True)
    print_throughput(run.out, run.path)
    return run.out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    student, teacher = PARAMS.student, PARAMS.teacher  # defaults from conf/, as `make run` trains
    ap.add_argument("--arch", default=student.arch, help="network of variants 1-3 and of the student")
    ap.add_argument("--teacher-arch", default=teacher.arch, help="live teacher of variant 4")
    ap.add_argument("--width", type=int, default=student.width)
    ap.add_argument("--batch", type=int, default=student.batch_size)
    ap.add_argument("--randaugment", type=int, default=student.randaugment,
                    help="RandAugment magnitude of the base views (0 = off)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per variant per repetition")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps per variant first")
    ap.add_argument("--subset", type=int, default=5000, help="known-class training images to load (0 = all 30k)")
    ap.add_argument("--no-workers2", dest="workers2", action="store_false", help="skip the 2-worker DataLoader")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = leave)")
    ap.add_argument("--tag", default="", help="suffix of the throughput result file: results/<device><tag>.json")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder of the result files")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--scale", action="store_true", help="teacher epoch time on 10/50/100%% of the known images")
    mode.add_argument("--profile", action="store_true", help="torch.profiler over student distill steps")
    ap.add_argument("--scale-steps", type=int, default=25, help="timed steps per fraction in --scale")
    ap.add_argument("--profile-steps", type=int, default=10)
    ap.add_argument("--profile-rows", type=int, default=25)
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device available")
    args.compile = "inductor" if args.device == "cuda" else None  # as `compile: auto` in the stages
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    torch.manual_seed(SEED)
    if dev.type == "cuda":  # osr.train.set_determinism's CUDA settings
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    if args.scale:
        from bench.scale import scale
        scale(args, dev)
    elif args.profile:
        from bench.profiler import profile
        profile(args, dev)
    else:
        throughput(args, dev)


if __name__ == "__main__":
    main()
