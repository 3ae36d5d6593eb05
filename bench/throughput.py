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
   (``torch.inference_mode`` + autocast, as ``osr.relabel.teacher_outputs``), relabel targets computed on the fly;
5. ``student_gradmix``: the plain (ce) student over a GradMix plan (half of the steps masked: LayerCAM of the
   clean forward, noise box, second forward), to measure what attribution-guided masking costs per image.

Modes: default (throughput table -> bench/results/<device>.json), ``--scale`` (teacher-step epoch time on 10/50/100%
of the split-0 known-class training images -> scale_<device>.json/.png), ``--profile`` (torch.profiler over ~10
student distill steps -> profile_<device>.txt).
"""
from __future__ import annotations

import argparse
import itertools
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from osr.augment import BaseAug, make_plan, planned_steps, to_float
from osr.compose import compose_conf
from osr.data import CIFAR10_KNOWN, decode_jpegs
from osr.distill import student_batches
from osr.io import atomic_path, load_npz, write_json
from osr.losses import STEP_LOSSES, DistillConfig, Step, hard_mask, two_hot
from osr.models import build, model_meta
from osr.objectives import on_logits
from osr.paths import mirror_dir
from osr.relabel import relabel_targets
from osr.teacher import teacher_batches
from osr.train import OptimConfig, autocast, make_optimizer, native_bf16, train_step

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CONF = compose_conf(ROOT / "conf")  # the default composition: the bench measures what `make run` trains
MIRROR = mirror_dir(ROOT) / "cifar10_jpeg.npz"
KNOWN = CIFAR10_KNOWN[0]                     # split 0: [0, 6, 4, 9, 1, 7]
MEAN, STD = CONF["data"]["mean"], CONF["data"]["std"]
SEED = 0
RULE, THRESHOLD, SMOOTHING = (CONF["relabel"][k] for k in ("rule", "threshold", "smoothing"))


# ------------------------------------------------------------------------------------------------ helpers

def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cpus, {torch.get_num_threads()} threads)"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def rss_mb() -> float:
    """Current resident set size (MiB)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def peak_rss_mb() -> float:
    """Process peak RSS so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def load_known(subset: int, seed: int = SEED, path: Path = MIRROR) -> tuple[np.ndarray, np.ndarray]:
    """Decode (only) the needed known-class CIFAR-10 training JPEGs: uint8 [N, 32, 32, 3] and labels 0..5."""
    z = load_npz(path, ("jpeg_train", "off_train", "y_train"))
    y_all = z["y_train"].astype(np.int64)
    idx = np.flatnonzero(np.isin(y_all, KNOWN))
    if subset and subset < len(idx):
        idx = np.sort(np.random.default_rng(seed).choice(idx, subset, replace=False))
    buf, off = z["jpeg_train"], z["off_train"]
    parts = [buf[off[i]:off[i + 1]] for i in idx]
    new_off = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    x = decode_jpegs(np.concatenate(parts), new_off)
    remap = np.full(10, -1, np.int64)
    remap[KNOWN] = np.arange(len(KNOWN))
    return x, remap[y_all[idx]]


def new_model(arch: str, width: int, dev: torch.device, channels_last: bool = True, normalise: bool = True):
    mean, std = (MEAN, STD) if normalise else ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    m = build(**model_meta(arch, len(KNOWN), width, 3, mean, std))
    return m.to(dev, memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def optimizer(model: torch.nn.Module, args, images: int):
    """osr.train.fit's optimiser and schedule (`osr.train.make_optimizer`) with the student's settings from conf/
    (SGD, lr at batch 128 scaled linearly, momentum, weight decay on weights only), over one epoch of `images`."""
    steps = max(1, images // args.batch)
    return make_optimizer(model, OptimConfig.from_section(CONF["student"]), args.batch, steps, steps)


def maybe_compile(model, dev: torch.device):
    """On CUDA, compile the trunk as `osr.train.fit` does (CifarResNet.compile_trunk: static shapes, one graph
    per batch size, the same graphs and inductor cache as the stages)."""
    if dev.type == "cuda":
        model.compile_trunk()
    return model


# ------------------------------------------------------------------------------------------------ variants

class Typical:
    """Variant 1: per-sample PIL transforms through a torch DataLoader, fp32, NCHW; with `project_numerics` the
    same data path feeds the project's step (channels_last, bf16 autocast, compiled trunk on CUDA), so that
    teacher / typical_dp compares the data paths alone."""

    def __init__(self, x: np.ndarray, y: np.ndarray, args, dev: torch.device, workers: int,
                 project_numerics: bool = False):
        from PIL import Image
        from torch.utils.data import DataLoader, Dataset
        from torchvision import transforms as T

        tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])

        class Cifar(Dataset):  # what torchvision.datasets.CIFAR10.__getitem__ does
            def __len__(self):
                return len(x)

            def __getitem__(self, i):
                return tf(Image.fromarray(x[i])), int(y[i])

        self.dev = dev
        self.loader = DataLoader(Cifar(), batch_size=args.batch, shuffle=True, num_workers=workers, drop_last=True,
                                 pin_memory=dev.type == "cuda")
        # normalisation happens in the transform, so the model's own (mean, std) is the identity
        self.project = project_numerics
        self.model = new_model(args.arch, args.width, dev, channels_last=project_numerics, normalise=False)
        self.fwd = maybe_compile(self.model, dev) if project_numerics else self.model
        self.opt, self.sched = optimizer(self.model, args, len(x))
        self.it = None

    def begin(self) -> None:
        """Start the loader's workers and wait for the first batch (untimed)."""
        self.it = iter(self.loader)
        self.pending = next(self.it)

    def end(self) -> None:
        """Shut the workers down (untimed), so their prefetching cannot run into another variant's block."""
        self.it = None

    def step(self) -> int:
        if self.it is None:
            self.begin()
        if self.pending is not None:
            xb, yb = self.pending
            self.pending = None
        else:
            try:
                xb, yb = next(self.it)
            except StopIteration:
                self.it = iter(self.loader)
                xb, yb = next(self.it)
        xb, yb = xb.to(self.dev, non_blocking=True), yb.to(self.dev, non_blocking=True)
        if self.project:
            train_step(self.fwd, self.opt, self.sched, xb.contiguous(memory_format=torch.channels_last),
                       on_logits(lambda z: F.cross_entropy(z.float(), yb)), self.dev)
            return len(xb)
        loss = F.cross_entropy(self.model(xb), yb)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return len(xb)


class Plain:
    """The floor: fit's step on one resident batch (no augmentation, no indexing, no data movement)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, args, dev: torch.device):
        self.xb, self.dev = to_float(x[:args.batch]), dev
        self.objective = on_logits(lambda z, yy=y[:args.batch]: F.cross_entropy(z.float(), yy))
        self.model = new_model(args.arch, args.width, dev)
        self.opt, self.sched = optimizer(self.model, args, len(x))
        self.fwd = maybe_compile(self.model, dev)

    def step(self) -> int:
        train_step(self.fwd, self.opt, self.sched, self.xb, self.objective, self.dev)
        return len(self.xb)


class Teacher:
    """Variant 2: the teacher stage's batches (`osr.teacher.teacher_batches`, CE) and fit's step; `amp` False:
    the same in fp32 (variant 2b)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, args, dev: torch.device, amp: bool = True):
        self.x, self.y, self.bs, self.dev, self.amp = x, y, args.batch, dev, amp
        self.aug = BaseAug(randaugment=getattr(args, "randaugment", 0))
        self.model = new_model(args.arch, args.width, dev)
        self.opt, self.sched = optimizer(self.model, args, len(x))
        self.fwd = maybe_compile(self.model, dev)
        self.it = self._batches()

    def _batches(self):
        for epoch in itertools.count():
            yield from teacher_batches(self.x, self.y, epoch, SEED, self.bs, self.aug, STEP_LOSSES["ce"],
                                       DistillConfig.from_sections(CONF["distill"], CONF["movr"]))

    def step(self) -> int:
        xb, objective = next(self.it)
        train_step(self.fwd, self.opt, self.sched, xb, objective, self.dev, self.amp)
        return len(xb)


def random_cache(plan: dict, y_np: np.ndarray, k: int, seed: int = SEED) -> dict[str, np.ndarray]:
    """Cached teacher outputs of the plan's shape: random fp16 logits, relabel targets computed from them."""
    rng = np.random.default_rng(seed)
    e, s, b = plan["order"].shape
    t_raw = (3 * rng.standard_normal((e, s, b, k))).astype(np.float16)
    t_mixed = (3 * rng.standard_normal((e, s, b, k))).astype(np.float16)
    return {"t_raw": t_raw, "t_mixed": t_mixed,
            **relabel_targets(t_mixed, y_np[plan["order"]], plan, RULE, THRESHOLD, SMOOTHING)}


class StudentCached:
    """Variant 3: osr.distill.student_batches (asym, CutMix plan, cached logits) and fit's step."""
    method, mixer = "asym", "cutmix"

    def __init__(self, x: torch.Tensor, y: torch.Tensor, y_np: np.ndarray, args, dev: torch.device):
        self.x, self.y, self.dev = x, y, dev
        self.aug = BaseAug(randaugment=getattr(args, "randaugment", 0))
        self.cfg = DistillConfig.from_sections(CONF["distill"], CONF["movr"])
        self.plan = make_plan(len(x), args.batch, 1, SEED, self.mixer, 0.5, tuple(x.shape[-2:]))
        self.cache = random_cache(self.plan, y_np, len(KNOWN))
        self.model = new_model(args.arch, args.width, dev)
        self.opt, self.sched = optimizer(self.model, args, len(x))
        self.fwd = maybe_compile(self.model, dev)
        self.it = self._batches()

    def _batches(self):
        while True:  # a one-epoch plan, replayed
            yield from student_batches(self.x, self.y, self.plan, self.cache, 0, self.aug, self.method, self.cfg)

    def step(self) -> int:
        xb, objective = next(self.it)
        train_step(self.fwd, self.opt, self.sched, xb, objective, self.dev)
        return len(xb)


class StudentLive(StudentCached):
    """Variant 4: as 3, but a frozen teacher runs on the raw (+ mixed) views every step instead of the cache."""

    def __init__(self, x, y, y_np, args, dev):
        super().__init__(x, y, y_np, args, dev)
        self.teacher = new_model(args.teacher_arch, args.width, dev).eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.tfwd = maybe_compile(self.teacher, dev)

    def _batches(self):
        step_loss, k = STEP_LOSSES["asym"], len(KNOWN)
        while True:
            for st in planned_steps(self.x, self.y, self.plan, 0, self.aug):
                b, mixed = len(st.x_raw), st.x_mixed is not None
                with torch.inference_mode():  # as osr.relabel.teacher_outputs, but kept on the device
                    views = st.x_raw if not mixed else torch.cat([st.x_raw, st.x_mixed])
                    with autocast(self.dev, True):
                        z = self.tfwd(views).float()
                    hard = target = None
                    if mixed:  # osr.relabel.relabel_targets for this one step
                        hard = hard_mask(torch.softmax(z[b:], 1), st.y, st.y[st.partner], RULE, THRESHOLD)
                        target = two_hot(st.y, st.y[st.partner], st.lam, k, SMOOTHING)
                z = z.clone()  # leave inference mode: the loss saves these for backward
                step = Step(y=st.y, mixed=mixed, partner=st.partner, lam=st.lam, t_raw=z[:b],
                            t_mixed=z[b:] if mixed else None, hard=hard.clone() if mixed else None,
                            target=target.clone() if mixed else None)
                yield (st.x_mixed if mixed else st.x_raw), \
                    on_logits(lambda zz, step=step: step_loss(zz, step, self.cfg))


class StudentGradMix(StudentCached):
    """Variant 5: the plain student over a GradMix plan (masked steps: LayerCAM + noise box + second forward)."""
    method, mixer = "ce", "gradmix"


# ------------------------------------------------------------------------------------------------ modes

def time_block(v, n: int, dev: torch.device) -> tuple[float, float, float]:
    """Run n steps; (images/s, max sampled RSS MiB, peak device MiB)."""
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    if hasattr(v, "begin"):
        v.begin()
    sync(dev)
    t0, seen, rss = time.perf_counter(), 0, 0.0
    for _ in range(n):
        seen += v.step()
        rss = max(rss, rss_mb())
    sync(dev)
    dt = time.perf_counter() - t0
    if hasattr(v, "end"):
        v.end()
    gpu = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else float("nan")
    return seen / dt, rss, gpu


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


def resident(x_np: np.ndarray, y_np: np.ndarray, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 NCHW and labels on `dev`, as the stages hold them."""
    return torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous().to(dev), torch.from_numpy(y_np).to(dev)


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
                        process_peak_rss_mb=peak_rss_mb(), wall_s=time.perf_counter() - self.t0)
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


SCALE_FRACTIONS = (0.1, 0.5, 1.0)


def scale_row(x_all: torch.Tensor, y_all: torch.Tensor, frac: float, args, dev: torch.device) -> dict:
    """Teacher-step epoch time on a seeded `frac` of the images, timed over at most `--scale-steps` steps (the
    rest of the epoch extrapolated at the measured rate)."""
    n = int(round(frac * len(x_all)))
    sel = torch.from_numpy(np.sort(np.random.default_rng(SEED).choice(len(x_all), n, replace=False)))
    x, y = x_all[sel].to(dev), y_all[sel].to(dev)
    v = Teacher(x, y, args, dev)
    steps_epoch = n // args.batch
    for _ in range(args.warmup):
        v.step()
    measured = min(steps_epoch, args.scale_steps)
    ips, rss, gpu = time_block(v, measured, dev)
    epoch_s = steps_epoch * args.batch / ips
    print(f"{frac:4.0%} ({n} images): {ips:.0f} img/s, epoch {epoch_s:.1f}s "
          f"({'extrapolated from' if measured < steps_epoch else 'measured over'} {measured}/{steps_epoch} steps),"
          f" rss {rss:.0f} MiB", flush=True)
    return {"fraction": frac, "images": n, "steps_per_epoch": steps_epoch, "steps_measured": measured,
            "extrapolated": measured < steps_epoch, "images_per_s": ips,
            "s_per_image": 1.0 / ips, "epoch_s": epoch_s, "rss_mb": rss,
            "device_peak_mb": gpu if dev.type == "cuda" else None,
            "resident_uint8_mb": x.numel() / 2**20}


def scale_figure(rows: list[dict], args, dev: torch.device, png: Path) -> None:
    """Epoch time against training images (with the line linear from 10%) and images/s per fraction."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    n_img = [r["images"] for r in rows]
    a1.plot(n_img, [r["epoch_s"] for r in rows], "o-", label="teacher step")
    a1.plot([0, n_img[-1]], [0, n_img[-1] * rows[0]["s_per_image"]], "k:", lw=1, label="linear from 10%")
    for r in rows:
        a1.annotate("extrap." if r["extrapolated"] else "measured", (r["images"], r["epoch_s"]), fontsize=7,
                    textcoords="offset points", xytext=(4, -10))
    a1.set(xlabel="training images", ylabel="epoch time (s)", title=f"{args.arch} w{args.width}, batch {args.batch}")
    a1.legend(fontsize=8)
    a2.bar([f"{r['fraction']:.0%}" for r in rows], [r["images_per_s"] for r in rows])
    a2.set(ylabel="images / s", title=f"{dev.type}: {device_name(dev)[:40]}")
    a2.title.set_fontsize(8)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def scale(args, dev: torch.device) -> dict:
    """Teacher-step epoch time on 10/50/100% of the 30k split-0 known-class images (measured or extrapolated)."""
    x_all, y_all = resident(*load_known(0), torch.device("cpu"))  # each fraction's subset moves to `dev`
    rows = [scale_row(x_all, y_all, frac, args, dev) for frac in SCALE_FRACTIONS]
    out = {"device": device_name(dev), "device_type": dev.type, "torch": torch.__version__, "arch": args.arch,
           "width": args.width, "batch": args.batch, "split": 0, "known": KNOWN, "rows": rows,
           "process_peak_rss_mb": peak_rss_mb(),
           "note": "epoch_s = steps_per_epoch * batch / measured images_per_s (last partial batch dropped, as "
                   "osr.augment.epoch_order); train images = all 30k known-class images (the pipeline's val split "
                   "would take its fraction out)."}
    path, png = args.out / f"scale_{dev.type}.json", args.out / f"scale_{dev.type}.png"
    write_json(path, out)
    scale_figure(rows, args, dev, png)
    print(f"wrote {path} and {png}")
    return out


def profile(args, dev: torch.device) -> str:
    """torch.profiler over ~10 student distill steps (cached teacher logits); top operators by self CPU time."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as tprofile
    x_np, y_np = load_known(args.subset)
    x, y = resident(x_np, y_np, dev)
    v = StudentCached(x, y, y_np, args, dev)
    for _ in range(args.warmup):
        v.step()
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with tprofile(activities=acts, record_shapes=False) as prof:
        for _ in range(args.profile_steps):
            v.step()
        sync(dev)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.profile_rows)
    head = (f"# torch.profiler, {args.profile_steps} student distill steps (asym, cutmix plan, cached logits), "
            f"{args.arch} w{args.width} batch {args.batch}, {device_name(dev)}, torch {torch.__version__}\n"
            f"# sorted by self CPU time\n")
    path = args.out / f"profile_{dev.type}.txt"
    with atomic_path(path) as tmp:
        tmp.write_text(head + table + "\n")
    print(head + table)
    print(f"wrote {path}")
    return table


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    student, teacher = CONF["student"], CONF["teacher"]  # defaults from conf/, as `make run` trains
    ap.add_argument("--arch", default=student["arch"], help="network of variants 1-3 and of the student")
    ap.add_argument("--teacher-arch", default=teacher["arch"], help="live teacher of variant 4")
    ap.add_argument("--width", type=int, default=student["width"])
    ap.add_argument("--batch", type=int, default=student["batch_size"])
    ap.add_argument("--randaugment", type=int, default=student["randaugment"],
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
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    torch.manual_seed(SEED)
    if dev.type == "cuda":  # osr.train.set_determinism's CUDA settings
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    if args.scale:
        scale(args, dev)
    elif args.profile:
        profile(args, dev)
    else:
        throughput(args, dev)


if __name__ == "__main__":
    main()
