"""What a run ran on and how much memory it held: the run statistics that stages and benchmarks record."""
from __future__ import annotations

import os
import platform
import re
import resource
from pathlib import Path

import torch


def cpu_name() -> str:
    """The CPU model as Linux names it ("AMD EPYC", "Intel(R) Xeon(R) ..."), else what `platform` knows: run time
    and bf16 support depend on it, so run statistics record it."""
    cpuinfo = Path("/proc/cpuinfo")
    names = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M) if cpuinfo.exists() else []
    return names[0].strip() if names else platform.processor() or platform.machine()


def device_name(dev: torch.device) -> str:
    """The GPU's name, or the CPU's with its core count and torch's thread count."""
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"{cpu_name()} ({os.cpu_count()} cpus, {torch.get_num_threads()} threads)"


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    """Current resident memory of this process (MiB); NaN where /proc is missing."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")
