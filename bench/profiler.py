"""torch.profiler over student distill steps (`python -m bench.throughput --profile`): results/profile_<device>.txt."""
from __future__ import annotations

import torch

from bench.common import load_known, resident, sync
from bench.variants import StudentCached
from osr.io import atomic_path
from osr.machine import device_name


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
