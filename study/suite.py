"""Run a benchmark grid (profile x benchmark x split x recipe x seed) as queued DVC experiments.

    python -m study.suite --profile quick --benchmark cifar10 --splits 0-4 --recipes ce-none,ce-cutmix,asym-cutmix
    python -m study.suite --profile claims --splits 0 --seeds 230-232 --recipes asym-cutmix,asym-cutmix+no_jmi
    python -m study.suite --study conf/study/confirmatory.yaml --jobs 2
    python -m study.suite --ablation --jobs 2

Recipes and experiment names: study/grid.py; ablation variants, each profile's default recipes and the ablation
grid: conf/study/grid.yaml. Each cell becomes one
``dvc exp run --queue`` named after it; cells whose experiment already exists (or is queued) are skipped, so a
rerun resumes an interrupted grid. The queue runs with ``dvc queue start -j <jobs>``; teachers are shared
between recipes of one split and seed through DVC's run-cache. ``python -m study.report`` turns the finished
experiments into ``reports/suite.md``.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil
from tqdm import tqdm

from cli import fail
from cli.tools import dvc, dvc_executable
from osr import OSRError
from osr.paths import MIRROR_ENV, mirror_dir
from study import spec as study_spec
from study.grid import DEFAULT_SEED, SUITES, Cell, grid


def parse_ints(text: str, flag: str = "--splits") -> list[int]:
    """`0-4` or `0,2,3`."""
    if re.fullmatch(r"\d+-\d+", text):
        lo, hi = map(int, text.split("-"))
        return list(range(lo, hi + 1))
    if re.fullmatch(r"\d+(,\d+)*", text):
        return [int(s) for s in text.split(",")]
    raise OSRError(f"{flag} {text!r}: expected a range like 0-4 or a list like 0,2")


def existing_experiments(repo: Path) -> set[str]:
    return {line.strip() for line in dvc(["exp", "list", "--all-commits", "--name-only"], repo).splitlines()
            if line.strip()}


def parse_queue_status(text: str) -> tuple[dict[str, str], int]:
    """(experiment name -> Queued/Running/Success/Failed, live workers: active + idle) from `dvc queue status`'s
    output. A cell queued again after a killed or failed attempt is listed twice (DVC keeps the old task): its live
    entry wins, or a rerun would be read as failed and queued a second time."""
    states, workers = {}, 0
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3 and parts[-1] in {"Queued", "Running", "Success", "Failed"}:
            if states.get(parts[1]) not in {"Queued", "Running"}:
                states[parts[1]] = parts[-1]
        elif m := re.match(r"Worker status: (\d+) active, (\d+) idle", line):
            workers = int(m.group(1)) + int(m.group(2))
    return states, workers


def queue_state(repo: Path) -> tuple[dict[str, str], int]:
    return parse_queue_status(dvc(["queue", "status"], repo))


def cell_env(root: Path = Path()) -> dict[str, str]:
    """The environment of the DVC commands that run experiment cells. A cell's stages run as `python -m stages.*`
    in a workspace DVC makes elsewhere (a queued experiment's copy under .dvc/tmp/exps, a work-pool worker's clone
    in a temporary folder): this interpreter's bin folder comes first on PATH, so `python` and `dvc` are the
    project's, and the dataset mirror is made absolute from `root` (the checkout; default: the working directory),
    since a relative one would not resolve from that workspace."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            MIRROR_ENV: str(mirror_dir(root).resolve())}


def start_workers(repo: Path, jobs: int) -> None:
    """`dvc queue start -j <jobs>`: DVC names its workers 1..jobs and starts only the missing ones, so this tops
    the pool up to ``jobs``. The workers run in `cell_env`."""
    env = cell_env(repo)
    # several workers: split the cores between them (2 cores: 2 workers x 1 thread trained ~1.5x the images/s
    # of 1 process x 2 threads; README, "Benchmark suite and report")
    if jobs > 1:
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // jobs)))
    # the workers stay running detached: do not wait on their inherited output pipes
    subprocess.run([dvc_executable(), "queue", "start", "-j", str(jobs)], cwd=repo, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)


def queue_state_retried(repo: Path, tries: int = 3, pause: float = 10.0) -> tuple[dict[str, str], int]:
    """`queue_state`, tried again after a pause: `dvc queue status` can fail while another dvc command holds the
    queue (e.g. beside a `dvc queue remove`), and a grid should not stop on that."""
    for _ in range(tries - 1):
        try:
            return queue_state(repo)
        except OSRError:
            time.sleep(pause)
    return queue_state(repo)


def short_of_workers(states: dict[str, str], workers: int, jobs: int) -> bool:
    """Whether to start workers: cells wait and fewer than `jobs` workers are seen (dvc's workers can exit after
    one task). Under load `dvc queue status` can miss a busy worker (and a second worker would start beside it), so
    the running cells count as workers too."""
    running = sum(s == "Running" for s in states.values())
    return max(workers, running) < jobs and "Queued" in states.values()


def archived_names(repo: Path) -> set[str]:
    """The cells archived in reports/experiments/ (committed): finished in another checkout, so a fresh clone
    resumes the grid instead of running them again."""
    return {p.stem for p in (repo / "reports" / "experiments").glob("*.json")}


def clean_broker(repo: Path) -> None:
    """`dvc exp clean`. Each `dvc queue status` beside live workers leaves the queries it sent them (`active`,
    `reserved`) in DVC's task broker (.dvc/tmp/exps/celery/broker/processed), and every later `dvc queue status` and
    `dvc exp show` reads them one by one: a grid polled for hours left 17 000 of them, and `dvc exp show` went from
    40 s to more than half an hour. A grid cleans when it starts and once per finished cell, which keeps the broker
    small; a failed clean is left for the next one."""
    dvc(["exp", "clean"], repo, check=False)


WORKER_PIDS = ".dvc/tmp/exps/celery"  # dvc-exp-worker-<n>.pid: what `dvc queue start` wrote for each worker


def live_workers(repo: Path) -> list[int]:
    """Process ids of DVC's queue workers still running. Unlike `dvc queue status`, which counts only the workers
    that answer its one-second query (a busy or exiting one may not), a worker's process is seen until it exits."""
    alive = []
    for pid_file in (repo / WORKER_PIDS).glob("dvc-exp-worker-*.pid"):
        try:
            pid = int(pid_file.read_text())
            if "queue-worker" in psutil.Process(pid).cmdline():
                alive.append(pid)
        except (ValueError, OSError, psutil.Error):  # unreadable, stale or reused pid: no worker
            continue
    return alive


def clean_broker_after_workers(repo: Path, wait: float) -> None:
    """The grid's last `clean_broker`, once DVC's workers have exited (they do about 10 s after the queue empties;
    at most `wait` seconds are spent waiting). A live worker files the status queries sent to it only when it reads
    them, which can be after a clean, so only a clean after every worker process has exited leaves none behind."""
    deadline = time.monotonic() + wait
    while live_workers(repo) and time.monotonic() < deadline:
        time.sleep(1.0)
    clean_broker(repo)


def run_suite(repo: Path, cells: list[Cell], jobs: int, poll: float = 10.0) -> dict[str, str]:
    clean_broker(repo)
    pending = {n for n, state in queue_state(repo)[0].items() if state in {"Queued", "Running"}}
    done = existing_experiments(repo) | archived_names(repo) | pending
    todo = [c for c in cells if c.name not in done]
    print(f"suite: {len(cells)} cells, {len(cells) - len(todo)} already finished or queued, queueing {len(todo)}")
    for c in todo:
        dvc(["exp", "run", "--queue", "-n", c.name, *[a for s in c.overrides for a in ("-S", s)]], repo)
    names = {c.name for c in todo} | {c.name for c in cells if c.name in pending}  # a rerun waits for its queue
    if not names:
        return {}
    with tqdm(total=len(names), desc="suite", unit="exp") as bar:
        while True:
            time.sleep(poll)
            all_states, workers = queue_state_retried(repo, pause=poll)
            states = {n: s for n, s in all_states.items() if n in names}
            finished = sum(s in {"Success", "Failed"} for s in states.values())
            newly_finished = finished - bar.n
            bar.update(newly_finished)
            bar.refresh()  # the elapsed time, every poll (tqdm skips a zero update once a cell has finished)
            if finished == len(names) or not any(s in {"Queued", "Running"} for s in states.values()):
                break
            if newly_finished:  # the grid's end cleans after its workers exit instead
                clean_broker(repo)
            if short_of_workers(all_states, workers, jobs):
                start_workers(repo, jobs)
    clean_broker_after_workers(repo, wait=max(60.0, 6 * poll))
    return states


def add_grid_args(ap: argparse.ArgumentParser) -> None:
    """The grid's flags, shared by `study.suite` and `flows.suite_pool`."""
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--benchmark", default="cifar10", help="comma-separated benchmark names")
    ap.add_argument("--splits", default="0-4")
    ap.add_argument("--recipes", default=None, help="comma-separated recipes (default: the profile's suite)")
    ap.add_argument("--seeds", default=str(DEFAULT_SEED), help="base.seed values, e.g. 230-232")


def grid_spec(args: argparse.Namespace) -> tuple[str, list[str], list[int], list[str], list[int]]:
    """(profile, benchmarks, splits, recipes, seeds) from the flags of `add_grid_args`: `grid`'s arguments."""
    recipes = args.recipes.split(",") if args.recipes else SUITES.get(args.profile, SUITES["quick"])
    return (args.profile, args.benchmark.split(","), parse_ints(args.splits), recipes,
            parse_ints(args.seeds, "--seeds"))


def study_cells(path: Path, jobs: int) -> list[Cell]:
    """The grid of a study file (conf/study/*.yaml: profile, partitions, recipes), `jobs` partitions at a time:
    within a group of `jobs` partitions the recipes alternate between them, so workers side by side train
    different teachers and a group's partitions finish (every recipe) before the next group starts."""
    study = study_spec.load(path, ("profile", "partitions", "recipes"))
    try:
        parts = [(b, s) for b, splits in study["partitions"].items() for s in splits]
        groups = [parts[i:i + max(1, jobs)] for i in range(0, len(parts), max(1, jobs))]
        return [Cell(study["profile"], b, s, r) for g in groups for r in study["recipes"] for b, s in g]
    except (TypeError, AttributeError) as e:
        raise OSRError(f"{path}: partitions must map benchmarks to lists of splits, recipes must be a list "
                       f"({type(e).__name__}: {e})") from None


def ablation_cells() -> list[Cell]:
    """The split-0 ablation of conf/study/grid.yaml: the seed-noise recipes at every noise seed, then one seed of
    every other recipe."""
    spec = study_spec.grid_spec()["ablation"]
    place = (spec["profile"], [spec["benchmark"]], [spec["split"]])
    cells = grid(*place, spec["noise_recipes"], spec["noise_seeds"]) + grid(*place, spec["recipes"])
    return list(dict.fromkeys(cells))  # a noise recipe listed again among the others runs once


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m study.suite", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_grid_args(ap)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--poll", type=float, default=10.0,
                    help="seconds between `dvc queue status` checks; each costs a DVC start-up, so on a 2-core "
                         "machine running CPU-bound cells a long poll (60-120) leaves them the cores")
    ap.add_argument("--repo", type=Path, default=Path.cwd())
    ap.add_argument("--study", type=Path, default=None,
                    help="a study file (conf/study/*.yaml): its profile, partitions and recipes replace the grid flags")
    ap.add_argument("--ablation", action="store_true",
                    help="the split-0 ablation of conf/study/grid.yaml instead of the grid flags")
    args = ap.parse_args(argv)
    if args.poll <= 0:
        return fail(f"--poll {args.poll}: expected a positive number of seconds")
    try:
        cells = (study_cells(args.study, args.jobs) if args.study else ablation_cells() if args.ablation
                 else grid(*grid_spec(args)))
        states = run_suite(args.repo, cells, args.jobs, poll=args.poll)
    except OSRError as err:
        return fail(err)
    failed = sorted(n for n, s in states.items() if s == "Failed")
    if failed:
        return fail(f"{len(failed)} experiments failed ({', '.join(failed)}); see `dvc queue logs <name>`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
