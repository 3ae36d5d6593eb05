"""Start-up checks of the device check: fail fast when the asked-for device is unusable, and degrade to eager
when the compiler is."""
from __future__ import annotations

import time

import torch
from torch import nn

from bench.common import sync
from bench.device import first_line
from osr.train import autocast, native_bf16


def cuda_problem() -> str | None:
    """Why CUDA cannot run here (one line), or None: no device seen, or the first kernel fails (driver mismatch)."""
    if not torch.cuda.is_available():
        return f"CUDA is not usable: torch {torch.__version__} (CUDA build {torch.version.cuda}) sees no device"
    try:
        torch.ones(1, device="cuda").add_(1).item()
    except Exception as e:  # e.g. a driver older than the build: any failure of the first kernel
        return f"CUDA is not usable: {first_line(e)}"
    return None


def compile_backend(setting: str, dev: torch.device) -> str | None:
    """`--compile`: auto = inductor on CUDA and eager (None) on the CPU, as the stages' `compile: auto`."""
    if setting == "auto":
        return "inductor" if dev.type == "cuda" else None
    return None if setting == "off" else setting


def compile_smoke(dev: torch.device, backend: str) -> dict:
    """One training step of a small conv net compiled by `backend` (forward and backward, channels_last, autocast
    as the stages run it): whether the compiler works here, and how long its first compile took."""
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    net = net.to(dev, memory_format=torch.channels_last)
    x = torch.rand(8, 3, 32, 32, device=dev).contiguous(memory_format=torch.channels_last)
    t0 = time.perf_counter()
    try:
        step = torch.compile(net, backend=backend, dynamic=False)
        with autocast(dev, native_bf16(dev)):
            loss = step(x).float().logsumexp(1).mean()
        loss.backward()
        sync(dev)
        return {"compile": True, "backend": backend, "seconds": time.perf_counter() - t0}
    except Exception as e:  # any compiler failure: the check runs eager instead of failing every part
        return {"compile": False, "backend": backend, "seconds": time.perf_counter() - t0, "error": first_line(e),
                "fallback": "eager (teacher.compile and student.compile off, throughput uncompiled)"}
    finally:
        torch._dynamo.reset()
