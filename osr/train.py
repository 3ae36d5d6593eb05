"""One training loop for teacher and student: SGD + warm-up + schedule, bf16 autocast, checkpoint/resume.

A checkpoint is written atomically after every epoch with model, optimizer, scheduler, history and RNG
states, tagged with a fingerprint of everything that determines the run; a rerun with the same fingerprint
resumes after the last finished epoch and, because every epoch's batches are a pure function of
(seed, epoch), ends with exactly the weights of an uninterrupted run.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn
from tqdm import tqdm

from osr import OSRError
from osr.io import load_torch, save_torch
from osr.metrics import accuracy
from osr.pixels import to_float

if TYPE_CHECKING:  # annotations only: osr.config is not among the DVC deps of this code
    from osr.config import Network
    from osr.roles import SplitTensors

Objective = Callable[[nn.Module, torch.Tensor], torch.Tensor]  # (model, images) -> loss; see osr/objectives.py
Batch = tuple[torch.Tensor, Objective]  # (float images, objective)


def progress(iterable, **kw):
    """A tqdm bar that stays quiet under OSR_PROGRESS=0 (tests, CI logs)."""
    return tqdm(iterable, leave=False, mininterval=2.0, disable=os.environ.get("OSR_PROGRESS", "1") == "0", **kw)


class Pruned(Exception):
    """Raised by an epoch callback to stop a run early (tuning)."""


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise OSRError("base.device: 'cuda' requested but no CUDA device is available")
    return torch.device(name)


def set_determinism(seed: int, device: torch.device, deterministic: bool = True) -> None:
    """Seed torch; deterministic kernels (cuDNN autotuning off) unless `deterministic` is False (benchmarks)."""
    torch.manual_seed(seed)
    deterministic_kernels(device, deterministic)


def deterministic_kernels(device: torch.device, deterministic: bool = True) -> None:
    """Kernel choice only (stages with no randomness of their own, e.g. relabel): same inputs, same outputs."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic
        torch.set_float32_matmul_precision("high")
    else:
        torch.use_deterministic_algorithms(deterministic, warn_only=True)


def autocast(device: torch.device, enabled: bool = True):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bf16 in hardware: a CUDA GPU that supports it, a CPU with AVX512-BF16 or AMX.
    Elsewhere (an AVX2-only CPU) autocast still runs, but emulated: measured 13x slower than fp32 (bench/README.md,
    "Precision")."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    return device.type == "cpu" and any(getattr(cpu, f, lambda: False)()
                                        for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def precision(setting: bool | str, device: torch.device) -> str:
    """The precision of an `amp` parameter on `device`: "bf16" (autocast) or "fp32"; auto = bf16 where it is
    native (`native_bf16`). The same seed gives the same metrics only at the same precision: run statistics record
    it (`reports/run/<stage>.json`)."""
    return "bf16" if (native_bf16(device) if setting == "auto" else setting) else "fp32"


def lr_lambda(cfg: Network, total_steps: int, steps_per_epoch: int) -> Callable[[int], float]:
    """The lr factor of each step under a teacher/student section's warm-up and schedule."""
    warm = max(1, int(cfg.warmup_epochs * steps_per_epoch)) if cfg.warmup_epochs > 0 else 0
    marks = [int(m * total_steps) for m in cfg.milestones]

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if cfg.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total_steps - warm)))
        return cfg.gamma ** sum(step >= m for m in marks)
    return f


def fingerprint(params: dict, *files: Path) -> str:
    """Hash of the parameters and input files that determine a training run (guards checkpoint resume)."""
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for f in files:
        h.update(hashlib.sha256(Path(f).read_bytes()).digest())
    return h.hexdigest()


CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "epoch", "history", "fingerprint", "rng_cpu")
LOSS_LIMIT = 1e6  # an epoch's mean loss above this is divergence: every loss here is O(1)-O(100) when training works


def finite_state(model: nn.Module) -> bool:
    """Every weight and buffer (batch-norm statistics) finite: a finite mean loss does not imply it (an inf weight
    whose unit is dead, statistics that overflowed), and the model's outputs would carry it. One host sync."""
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    return bool(torch.stack([t.isfinite().all() for t in tensors]).all()) if tensors else True


def read_checkpoint(path: Path, desc: str) -> dict | None:
    """The resume checkpoint on the CPU, or None; an unreadable one is set aside (``*.corrupt``) with a warning.

    A checkpoint is only a resume cache, so a corrupt or foreign file must never block training.
    """
    if not path.exists():
        return None
    try:
        ck = load_torch(path, map_location="cpu")
        missing = [k for k in CHECKPOINT_KEYS if k not in ck] if isinstance(ck, dict) else ["all"]
        if missing:
            raise OSRError(f"{path}: not a training checkpoint (missing {', '.join(missing)})")
    except OSRError as e:
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        tqdm.write(f"warning: {desc}: unreadable checkpoint moved to {aside}, training starts over ({e})")
        return None
    return ck


COMPILE = ("auto", "off", "inductor", "aot_eager")


def compile_backend(setting: str, device: torch.device) -> str | None:
    """The torch.compile backend of a `compile` parameter: auto = inductor on CUDA, eager (None) elsewhere."""
    if setting not in COMPILE:
        raise OSRError(f"compile: unknown setting {setting!r} (choose from {list(COMPILE)})")
    if setting == "auto":
        return "inductor" if device.type == "cuda" else None
    return None if setting == "off" else setting


def every_epochs(setting: int | str, epochs: int) -> int:
    """Checkpoint/validation interval of a `checkpoint_every` parameter: auto = at most 20 per run."""
    return max(1, math.ceil(epochs / 20)) if setting == "auto" else int(setting)


def budget_epochs(section: Network, n_train: int) -> int:
    """The epochs a teacher/student section trains on `n_train` images: its `epochs`, or more when that many give
    fewer than `min_steps` optimiser steps. A budget in epochs alone starves small data: 900 images at batch 128
    are 7 steps an epoch, 42 steps in 6 epochs."""
    steps = max(1, n_train // section.batch_size)
    return max(section.epochs, math.ceil(section.min_steps / steps))


def fit_settings(section: Network, device: torch.device, epochs: int) -> dict:
    """fit's batch size, optimiser, precision, `compile`, `checkpoint_every` and `keep` from a teacher/student
    section, for a run of `epochs` (`budget_epochs`)."""
    return {"batch_size": section.batch_size, "optim": section, "amp": precision(section.amp, device) == "bf16",
            "compile": compile_backend(section.compile, device),
            "checkpoint_every": every_epochs(section.checkpoint_every, epochs), "keep_best": section.keep == "best"}


def make_optimizer(model: nn.Module, optim: Network, batch_size: int, total_steps: int,
                   steps_per_epoch: int) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LambdaLR]:
    """SGD with weight decay on weights only, lr scaled linearly from batch 128, and its per-step schedule."""
    params_decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    params_rest = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": params_decay, "weight_decay": optim.weight_decay},
                           {"params": params_rest, "weight_decay": 0.0}],
                          lr=optim.lr * batch_size / 128, momentum=optim.momentum, nesterov=False)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(optim, total_steps, steps_per_epoch))


def train_step(model: nn.Module, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler,
               x: torch.Tensor, objective: Objective, device: torch.device, amp: bool = True) -> torch.Tensor:
    """One optimisation step of `fit`; returns the loss (on the device, not synchronised)."""
    with autocast(device, amp):
        loss = objective(model, x)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    return loss


def resume(ckpt_path: Path, fingerprint: str, desc: str, epochs: int, model: nn.Module, opt: torch.optim.Optimizer,
           sched: torch.optim.lr_scheduler.LRScheduler) -> tuple[list[dict], int]:
    """(history, first epoch to run): from the checkpoint when its fingerprint matches, else a fresh start."""
    ck = read_checkpoint(ckpt_path, desc)
    if ck is None or ck["fingerprint"] != fingerprint:
        return [], 0
    model.load_state_dict(ck["model"])  # CPU tensors: copied into the model's device
    opt.load_state_dict(ck["optimizer"])  # state cast to each parameter's device
    sched.load_state_dict(ck["scheduler"])
    torch.set_rng_state(ck["rng_cpu"])  # must stay a CPU ByteTensor
    tqdm.write(f"{desc}: resuming from {ckpt_path} after epoch {ck['epoch'] + 1}/{epochs}")
    return ck["history"], ck["epoch"] + 1


def fit(model: nn.Module, batches: Callable[[int], Iterable[Batch]], *, epochs: int, steps_per_epoch: int,
        batch_size: int, optim: Network, ckpt_path: Path, fingerprint: str, desc: str,
        device: torch.device, amp: bool = True,
        on_epoch_end: Callable[[nn.Module, int], dict] | None = None, compile: str | None = None,
        checkpoint_every: int = 1, keep_best: bool = False) -> list[dict]:
    """Train `model` for `epochs`; `batches(epoch)` yields (images, objective) pairs. Returns per-epoch history.

    `compile`: a torch.compile backend for the model's trunk (None = eager; `compile_backend`). The callback
    and the checkpoint run every `checkpoint_every` epochs and after the last; a resumed run repeats the epochs
    after the last checkpoint, which (batches a pure function of seed and epoch) gives the same weights.
    `keep_best`: the model ends with the weights of the validated epoch of highest `val_acc` (the callback's; the
    earliest of equals), not the last; those weights travel in the checkpoint, so a resumed run keeps them too.
    """
    if compile:
        model.compile_trunk(compile)
    opt, sched = make_optimizer(model, optim, batch_size, epochs * steps_per_epoch, steps_per_epoch)
    # the resolved precision, not the `amp` setting: `auto` is bf16 on one machine and fp32 on another, and a run
    # resumed at the other precision would mix the two in one set of weights
    fingerprint = f"{fingerprint} {'bf16' if amp else 'fp32'}"
    history, start = resume(ckpt_path, fingerprint, desc, epochs, model, opt, sched)
    if keep_best and on_epoch_end is None:
        raise OSRError(f"{desc}: keep best needs a validation callback")
    best = read_best(best_path(ckpt_path), fingerprint) if keep_best and start else None
    for epoch in range(start, epochs):
        model.train()
        t0, total, n, seen = time.perf_counter(), torch.zeros((), device=device), 0, 0
        for x, objective in progress(batches(epoch), total=steps_per_epoch, desc=f"{desc} {epoch + 1}/{epochs}"):
            total += train_step(model, opt, sched, x, objective, device, amp).detach()
            n += 1
            seen += len(x)
        mean_loss = float(total) / max(1, n)  # the epoch's one host synchronisation
        if not math.isfinite(mean_loss) or abs(mean_loss) > LOSS_LIMIT:
            raise OSRError(f"{desc}: training diverged in epoch {epoch + 1} (mean loss {mean_loss:.4g}, limit "
                           f"{LOSS_LIMIT:.0e}); lower the lr or check the loss parameters (e.g. distill.tau)")
        if not finite_state(model):
            raise OSRError(f"{desc}: training diverged in epoch {epoch + 1} (non-finite weights or batch-norm "
                           "statistics); lower the lr")
        dt = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "loss": mean_loss, "lr": opt.param_groups[0]["lr"], "seconds": dt,
               "images_per_s": seen / dt}
        due = (epoch + 1) % checkpoint_every == 0 or epoch == epochs - 1
        if on_epoch_end is not None and due:
            tc = time.perf_counter()
            row.update(on_epoch_end(model, epoch))
            row["seconds_callback"] = time.perf_counter() - tc
        history.append(row)
        tqdm.write(f"{desc} epoch {epoch + 1}/{epochs}: " + ", ".join(
            f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"))
        if due and keep_best and (best is None or row["val_acc"] > best["val_acc"]):
            best = {"val_acc": row["val_acc"], "epoch": epoch + 1, "fingerprint": fingerprint,
                    "model": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}}
            save_torch(best_path(ckpt_path), best)  # before the checkpoint that may resume from it
        if due:
            save_torch(ckpt_path, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                   "scheduler": sched.state_dict(), "epoch": epoch, "history": history,
                                   "fingerprint": fingerprint, "rng_cpu": torch.get_rng_state()})
    if best is not None:
        model.load_state_dict(best["model"])
        tqdm.write(f"{desc}: keeping epoch {best['epoch']}'s weights (best val_acc {best['val_acc']:.4g})")
        history[-1]["kept_epoch"] = best["epoch"]
    return history


def best_path(ckpt_path: Path) -> Path:
    """Where `fit(keep_best=True)` keeps the best-validated weights beside the resume checkpoint."""
    return ckpt_path.with_name(ckpt_path.stem + ".best" + ckpt_path.suffix)


def read_best(path: Path, fingerprint: str) -> dict | None:
    """The best-validated weights of the run `fingerprint` names, or None (missing, or another run's)."""
    best = load_torch(path, map_location="cpu") if path.exists() else None
    return best if isinstance(best, dict) and best.get("fingerprint") == fingerprint else None


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512, amp: bool = False,
            features: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Logits (and optionally pooled features) of uint8 images [N, C, H, W], in eval mode, fp32 by default.

    A compiled model sees only full batches (the last one zero-padded, its padding dropped): no recompiles.
    """
    model.eval()
    device = x.device
    pad = getattr(model, "compiled", False)
    logits, feats = [], []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        n = len(xb)
        if pad and n < batch_size:
            xb = torch.cat([xb, xb.new_zeros((batch_size - n, *xb.shape[1:]))])
        with autocast(device, amp):
            f = model.features(to_float(xb))
            z = model.fc(f)
        logits.append(z[:n].float())
        feats.append(f[:n].float())
    z = torch.cat(logits) if logits else torch.zeros(0)
    return (z, torch.cat(feats)) if features else z


def val_accuracy(data: SplitTensors) -> Callable[[nn.Module, int], dict]:
    """Epoch callback for `fit`: closed-set accuracy on the validation role of a `SplitTensors`."""
    def callback(model: nn.Module, epoch: int) -> dict:
        pred = predict(model, data.x["val"]).argmax(1).cpu().numpy()
        return {"val_acc": accuracy(data.y["val"].cpu().numpy(), pred)}
    return callback
