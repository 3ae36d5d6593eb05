"""Partitions: the split indices of a benchmark that hold the same classes count as one unit of replication.

A split's partition is its set of known classes (and of unknown classes, where the benchmark fixes them), as
osr/data.py lists them. The standard lists repeat some: CIFAR-10 splits 0 and 1 hold the same six known classes
in another order (so do SVHN's), so every mean, interval and p-value over splits first merges the runs of one
partition (`per_partition`: one value per seed) and then counts it once. A benchmark without fixed lists (the
folder benchmark, or a name osr/data.py does not know) has one partition per index.
"""
from __future__ import annotations

import re
from functools import cache

import numpy as np

from osr.data import BENCHMARKS


def _registry_name(benchmark: str) -> str | None:
    """The osr.data entry a report's benchmark label stands for: `tinyimagenet32` (downsampled) is `tinyimagenet`."""
    if benchmark in BENCHMARKS:
        return benchmark
    base = re.sub(r"\d+$", "", benchmark)
    return base if base in BENCHMARKS else None


@cache
def partition(benchmark: str, split: int | None) -> int | None:
    """The split that stands for `split`'s partition: the first index of `benchmark` with the same known (and
    unknown, where fixed) classes; `split` itself where the benchmark has no fixed lists or does not list it."""
    b = BENCHMARKS.get(_registry_name(benchmark) or "")
    if b is None or b.pick_known or not isinstance(split, int) or not 0 <= split < len(b.known):
        return split

    def classes(i: int) -> tuple:
        return frozenset(b.known[i]), frozenset(b.unknown[i]) if b.unknown else None

    return next(i for i in range(len(b.known)) if classes(i) == classes(split))


def per_partition(benchmark: str, runs) -> dict:
    """(split, seed, value) of each run -> partition (keyed by its first split) -> [value per seed]: the runs of one
    seed on splits that hold the same classes are one value, their mean (the seed draws the same images for them);
    a run without a seed is a seed of its own."""
    seeds: dict = {}
    for split, seed, value in runs:
        by_seed = seeds.setdefault(partition(benchmark, split), {})
        by_seed.setdefault(object() if seed is None else seed, []).append(value)
    return {p: [float(np.mean(v)) for v in seeds[p].values()] for p in sorted(seeds, key=lambda p: (p is None, p))}


def same_classes(benchmark: str, splits) -> list[list[int]]:
    """The groups of two or more of `splits` that hold one partition, e.g. [[0, 1]] for CIFAR-10 splits 0-4."""
    groups: dict = {}
    for s in sorted(set(splits)):
        groups.setdefault(partition(benchmark, s), []).append(s)
    return [g for g in groups.values() if len(g) > 1]


def alike(groups: list[list[int]]) -> str:
    """`0 and 1 hold the same classes` for same_classes' groups ('' for none)."""
    return "; ".join(", ".join(map(str, g[:-1])) + f" and {g[-1]}" for g in groups) + \
        (" hold the same classes" if groups else "")
