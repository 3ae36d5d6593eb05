"""What the benchmarks share: the data they time (split 0's known-class CIFAR-10 training images), the models and
optimiser built as the stages build them, and the timed block."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from osr.config import load_params
from osr.data import CIFAR10_KNOWN, decode_jpegs
from osr.io import load_npz
from osr.machine import rss_mib
from osr.models import build, model_meta
from osr.paths import mirror_dir
from osr.train import make_optimizer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PARAMS = load_params(ROOT / "params.yaml")  # the default composition: what `make run` trains
MIRROR = mirror_dir(ROOT) / "cifar10_jpeg.npz"
KNOWN = CIFAR10_KNOWN[0]                     # split 0: [0, 6, 4, 9, 1, 7]
MEAN, STD = PARAMS.data.mean, PARAMS.data.std
SEED = 0


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
    return make_optimizer(model, PARAMS.student, args.batch, steps, steps)

def maybe_compile(model, backend: str | None):
    """Compile the trunk as `osr.train.fit` does (CifarResNet.compile_trunk: static shapes, one graph per batch size,
    the same graphs and inductor cache as the stages); `backend` None: eager."""
    if backend:
        model.compile_trunk(backend)
    return model


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
        rss = max(rss, rss_mib())
    sync(dev)
    dt = time.perf_counter() - t0
    if hasattr(v, "end"):
        v.end()
    gpu = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else float("nan")
    return seen / dt, rss, gpu


def resident(x_np: np.ndarray, y_np: np.ndarray, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 NCHW and labels on `dev`, as the stages hold them."""
    return torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous().to(dev), torch.from_numpy(y_np).to(dev)
