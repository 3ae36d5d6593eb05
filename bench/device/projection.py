"""The paper profile for a few epochs per model through the pipeline's stages, in a temporary project folder,
projected to the profile's 200 epochs. Download and split run without their mirror and great-expectations parts
(not installed on the GPU host); the training stages stop at their deadlines (bench/device/training.py)."""
from __future__ import annotations

import os
import statistics
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import yaml

from bench.common import ROOT, sync
from bench.device.plan import Clock
from bench.device.training import student_stage, teacher_stage
from osr.config import Params, read_yaml, validate
from osr.data import normalise, split_classes
from osr.io import atomic_path, load_npz, save_npz
from osr.machine import device_name
from osr.paths import MANIFEST, RAW
from osr.split import make_manifest
from osr.train import every_epochs

PAPER_EPOCHS = 200
STAGES = ("download", "split", "augment", "train_teacher", "relabel", "distill", "evaluate")
ROLES = {"train_teacher": "teacher", "distill": "student"}
TARGET_S = 480  # the performance goal: split 0 of the paper profile in 8 minutes
# every profile's composition and every benchmark's data section, kept equal to Hydra's by tests/test_config.py:
# the GPU host has no Hydra, so the check reads its profiles there
COMPOSITIONS = ROOT / "tests" / "golden" / "compositions.yaml"


def profile_params(name: str) -> dict:
    """Profile `name` on CIFAR-10, as Hydra composes it (`COMPOSITIONS`)."""
    golden = read_yaml(COMPOSITIONS)
    return {**golden["profiles"][name], "data": golden["benchmarks"]["cifar10"]}


def projection_json(profile: str) -> str:
    """paper (and tiny, its CPU rehearsal): paper_projection.json; another: <profile>_projection.json."""
    name = "paper" if profile in ("paper", "tiny") else profile
    return f"bench/results/{name}_projection.json"


@contextmanager
def inside(folder: Path):
    """Run with `folder` as the working directory (the stages use paths relative to the project root)."""
    old = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


def check_params(args, dev: torch.device, backend: str | None) -> Params:
    """The profile's params (`profile_params`) for the check: --epochs per model, the device, the compile
    backend, a validation and checkpoint after every epoch (the deadline is checked there) and no bootstrap
    intervals in evaluate; then --set overrides."""
    p = profile_params(args.profile)
    p["base"]["device"] = dev.type
    p["evaluate"]["bootstrap"] = 0
    for role in ("teacher", "student"):
        p[role].update(epochs=args.epochs, compile=backend or "off", checkpoint_every=1)
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


def write_manifest(p: Params) -> None:
    """The split stage without its great-expectations validation."""
    raw = load_npz(RAW)
    s = p.split
    known, unknown = split_classes(p.data.benchmark, s.index, raw["y_test"])
    df = make_manifest(raw["y_train"], raw["y_test"], known, unknown, s.val_fraction, p.base.seed,
                       s.train_per_class, s.test_per_class, tuple(raw["x_train"].shape[1:]),
                       str(raw["x_train"].dtype))
    with atomic_path(MANIFEST) as tmp:
        df.to_csv(tmp, index=False)


def stage_main(name: str):
    return __import__(f"stages.{name}", fromlist=["main"]).main


def stage_runner(name: str, args, p: Params, dev: torch.device, clock: Clock, end: float):
    """The callable that runs stage `name` now; the training stages get their deadline when they start."""
    if name == "download":
        return lambda: write_raw(args.data, args.per_class)
    if name == "split":
        return lambda: write_manifest(p)
    if name == "train_teacher":  # half of what is left: the student, relabel and evaluate share the rest
        return lambda: teacher_stage(p, dev, clock.t0 + clock.elapsed() + 0.5 * clock.left(end))
    if name == "distill":
        return lambda: student_stage(p, dev, clock.t0 + end - args.eval_reserve_s)
    main = stage_main(name)
    return lambda: main(p)


def run_stages(args, p: Params, dev: torch.device, clock: Clock, end: float, out: dict, save, every: dict) -> None:
    """Every stage in order until one would start with less than `reserve_s` left before `end` (seconds since
    the start); the rest are marked skipped. Rows: seconds, and for training stages the per-epoch times and the
    validations of a 200-epoch run (`every`: the profile's checkpoint_every per role)."""
    for i, name in enumerate(STAGES):
        if clock.left(end) < args.reserve_s:
            for rest in STAGES[i:]:
                out["stages"][rest] = {"skipped": "time budget"}
            save()
            return
        t0 = time.perf_counter()
        timings = stage_runner(name, args, p, dev, clock, end)()
        sync(dev)
        row = out["stages"][name] = {"seconds": time.perf_counter() - t0, **(timings or {})}
        role = ROLES.get(name)
        if role:
            row["validations_projected"] = len(due_epochs(PAPER_EPOCHS, every[role]))
        save()
        print(f"projection: {name} {row['seconds']:.1f}s", flush=True)


def projection(args, dev: torch.device, backend: str | None, work: Path, clock: Clock, end: float, out: dict,
               save) -> dict:
    """Run the stages (`run_stages`) and project what finished; returns the params it ran."""
    p = check_params(args, dev, backend)
    profile = profile_params(args.profile)
    out.update(profile=args.profile, epochs_asked={r: getattr(p, r).epochs for r in ROLES.values()},
               epochs_projected=PAPER_EPOCHS, teacher=f"{p.teacher.arch} w{p.teacher.width}",
               student=f"{p.student.arch} w{p.student.width}", batch=p.teacher.batch_size,
               device=device_name(dev), stages={})
    with inside(work):
        Path("params.yaml").write_text(yaml.safe_dump(asdict(p), sort_keys=False))
        run_stages(args, p, dev, clock, end, out, save, {r: profile[r]["checkpoint_every"] for r in ROLES.values()})
    out["projected_seconds"] = project(out["stages"], p.student.epochs)  # the plan's epochs
    total, partial = out["projected_seconds"]["total"], out["projected_seconds"]["missing"]
    out["target_split0_le_480s"] = {"projected_s": total, "met": None if partial else total <= TARGET_S}
    return p


def due_epochs(epochs: int, setting) -> list[int]:
    k = every_epochs(setting, epochs)
    return [e for e in range(epochs) if (e + 1) % k == 0 or e == epochs - 1]


def steady_and_first(seconds: list[float]) -> tuple[float, float]:
    """Steady per-call time (median after the first) and the first call's extra (compile, warm-up); from one call
    alone the steady time includes that extra (the projection is then an upper bound)."""
    steady = statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
    return steady, seconds[0] - steady


def project(stages: dict, n: int) -> dict:
    """Per finished stage, 200 epochs: training epochs and validations (as many as checkpoint_every gives) at their
    steady time plus the first one's extra once; the rest of the stage (data, model, checkpoints) once; the plan
    and the teacher pass (over a plan of `n` epochs) scale with the epochs; everything else once. `missing`:
    stages that did not run (the total is then a lower bound); `one_epoch_only`: training stages stopped after
    their first epoch (their share is an upper bound)."""
    res = {"missing": [n for n, row in stages.items() if "seconds" not in row], "one_epoch_only": []}
    for name, row in stages.items():
        if "seconds" not in row:
            continue
        if "epoch_seconds" in row:
            ep, cb = row["epoch_seconds"], row["callback_seconds"] or [0.0]
            rest = max(0.0, row["seconds"] - sum(ep) - sum(row["callback_seconds"]))
            (t_ep, x_ep), (t_cb, x_cb) = steady_and_first(ep), steady_and_first(cb)
            res[name] = PAPER_EPOCHS * t_ep + x_ep + row["validations_projected"] * t_cb + x_cb + rest
            if len(ep) == 1:
                res["one_epoch_only"].append(name)
        elif name in ("augment", "relabel"):
            res[name] = row["seconds"] * PAPER_EPOCHS / n
        else:
            res[name] = row["seconds"]
    res["total"] = sum(v for k, v in res.items() if k in STAGES)
    return res
