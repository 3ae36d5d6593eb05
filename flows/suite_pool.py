"""The benchmark grid on several machines: one suite cell per work-pool flow run, each in its own clone.

    python -m flows.deploy --pool grid                              # registers suite-cell/pool (and tune-asym/pool)
    prefect worker start --pool grid --limit 1                      # on every machine: one cell at a time
    python -m flows.suite_pool --profile paper --splits 0-4 --recipes ce-none,asym-cutmix \\
        --git-remote git@host:osr.git --dvc-remote s3://bucket/osr

`suite-cell` (on a worker; one flow run = one cell of `study/grid.py`): `git clone` the git remote into a fresh
temporary folder, check out the grid's commit, `dvc exp run --pull -n <cell> -S ...` (`--pull`: the DVC remote's
run-cache first, and any missing data from the remote), then `dvc exp push --run-cache`: the experiment to the
git remote, its outputs and the run-cache to the DVC remote. A cell whose teacher another cell of the grid
trained starts from that cell's dvc.lock (`seed_from`), so its teacher is pulled, not retrained. A table
artifact `cell-<name>` says which stages ran, came from the run-cache, or were pulled.

`suite-grid` (here, on the report side, in this checkout): submits the cells that the git remote does not hold
yet (`dvc exp list <remote>`, so a rerun resumes the grid and never runs a cell twice) to `suite-cell/pool` in
two waves: first one cell per teacher (cells that share profile, benchmark, split, seed and teacher settings
share it), then the rest, each seeded from its teacher's cell; then `dvc exp pull` of the finished cells and
`python -m study.report`. Without `--dvc-remote` the repository's default DVC remote is used; with it, the URL
becomes the default remote of each clone (and of this checkout) through `dvc remote add --local`.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

if __package__ in (None, ""):  # loaded by a worker as flows/suite_pool.py: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cli.tools import dvc, git  # noqa: E402
from osr import OSRError  # noqa: E402
from study.grid import DEFAULT_SEED, Cell, grid  # noqa: E402
from study.suite import add_grid_args, cell_env, grid_spec  # noqa: E402

DEPLOYMENT = "suite-cell/pool"
REMOTE = "suite"  # the DVC remote name `--dvc-remote` is added under (local config, default remote)
STUDENT_SIDE = ("distill.", "augment.", "relabel.", "student.", "evaluate.")  # overrides a teacher never reads
POLL = 5.0


def use_dvc_remote(repo: Path, url: str | None) -> None:
    """Make `url` the default DVC remote of `repo` (machine-local config, never committed); None keeps the repo's."""
    if url:
        dvc(["remote", "add", "--local", "--default", "--force", REMOTE, url], repo)


def teacher_key(cell: Cell) -> tuple[str, ...]:
    """Cells with the same key train the same teacher."""
    return tuple(o for o in cell.overrides if not o.startswith(STUDENT_SIDE))


def waves(cells: list[Cell]) -> list[list[tuple[Cell, str | None]]]:
    """[one cell per teacher, the rest], each cell with the first-wave cell whose teacher it reuses (or None)."""
    first: dict[tuple[str, ...], Cell] = {}
    for c in cells:
        first.setdefault(teacher_key(c), c)
    rest = [(c, first[teacher_key(c)].name) for c in cells if c not in first.values()]
    return [w for w in ([(c, None) for c in first.values()], rest) if w]


def seed_from(repo: Path, git_remote: str, rev: str, name: str) -> None:
    """Put experiment `name`'s (of baseline `rev`) dvc.lock and reports/ into the clone's workspace.

    `dvc exp run --pull` then pulls every stage the lock records unchanged (download, split, the teacher) from
    the DVC remote instead of running it, and the stages that differ rewrite their reports/ files. Unlike a
    run-cache restore, this needs only the teacher cell's pushed outputs, not its pushed run-cache."""
    git(["fetch", "-q", git_remote, f"refs/exps/{rev[:2]}/{rev[2:]}/{name}"], repo)
    git(["checkout", "FETCH_HEAD", "--", "dvc.lock", "reports"], repo)


def cell_key(name: str) -> str:
    """The artifact key of a cell (keys are lowercase letters, digits and dashes): `cell-<name>`."""
    return "cell-" + re.sub(r"[^a-z0-9-]+", "-", name.lower())


def stages_of(output: str) -> dict[str, list[str]]:
    """The stages `dvc exp run` ran, restored from the run-cache, and pulled as the seeded dvc.lock has them."""
    return {"ran": re.findall(r"Running stage '([^']+)'", output),
            "from_run_cache": re.findall(r"Stage '([^']+)' is cached - skipping run", output),
            "pulled": re.findall(r"Pulling data for stage: '([^']+)'", output)}


@flow(name="suite-cell", log_prints=True)
def suite_cell(profile: str, benchmark: str, split: int, recipe: str, git_remote: str, rev: str,
               seed: int = DEFAULT_SEED, dvc_remote: str | None = None, workdir: str | None = None,
               teacher_from: str | None = None) -> dict:
    """One grid cell as a DVC experiment in a fresh clone, pushed to the git and DVC remotes; `teacher_from`:
    a pushed experiment of `rev` with the same teacher, whose outputs this cell reuses (`seed_from`)."""
    cell, env, t0 = Cell(profile, benchmark, split, recipe, seed), cell_env(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="osr-cell-", dir=workdir) as tmp:
        repo = Path(tmp) / "repo"
        git(["clone", "-q", git_remote, str(repo)], Path(tmp))
        try:
            git(["checkout", "-q", rev], repo)
        except OSRError:
            raise OSRError(f"rev {rev}: not in {git_remote}; push it before running the grid") from None
        use_dvc_remote(repo, dvc_remote)
        if teacher_from:
            seed_from(repo, git_remote, rev, teacher_from)
        out = dvc(["exp", "run", "--pull", "-n", cell.name, *[a for s in cell.overrides for a in ("-S", s)]],
                  repo, env=env)
        dvc(["exp", "push", "--run-cache", git_remote, cell.name], repo, env=env)
    stages = stages_of(out)
    row = {"cell": cell.name, "baseline": rev, "teacher_from": teacher_from or "",
           **{k: " ".join(v) for k, v in stages.items()}, "seconds": round(time.perf_counter() - t0, 1)}
    create_table_artifact([row], key=cell_key(cell.name),
                          description=f"suite cell {cell.name}: stages run, restored and pulled")
    print(f"cell {cell.name}: {'; '.join(f'{k} {v}' for k, v in stages.items() if v)}; pushed to {git_remote} "
          f"in {row['seconds']} s")
    return row


def remote_experiments(repo: Path, git_remote: str) -> set[str]:
    """Names of the experiments the git remote holds (of every baseline commit)."""
    return set(dvc(["exp", "list", git_remote, "--all-commits", "--name-only"], repo).split())


def pool_of(deployment: str) -> tuple[str, int]:
    """(work pool of `deployment`, how many of its workers are online); one line if it is not registered."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import WorkerFilter, WorkerFilterStatus
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_deployment_by_name(deployment).work_pool_name
        except ObjectNotFound:
            raise OSRError(f"deployment {deployment} not found: run `make deploy POOL=<pool>` first") from None
        online = client.read_workers_for_work_pool(pool, worker_filter=WorkerFilter(
            status=WorkerFilterStatus(any_=["ONLINE"])))
    return pool, len(online)


def wait_for(runs: dict[str, object], poll: float = POLL) -> dict[str, str]:
    """Cell name -> final state name of each submitted flow run."""
    from prefect.client.orchestration import get_client

    states: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        while len(states) < len(runs):
            for name, run_id in runs.items():
                state = client.read_flow_run(run_id).state
                if name not in states and state is not None and state.is_final():
                    states[name] = state.name
            if len(states) < len(runs):
                time.sleep(poll)
    return states


@flow(name="suite-grid", log_prints=True)
def suite_grid(profile: str, benchmarks: list[str], splits: list[int], recipes: list[str], seeds: list[int],
               git_remote: str, dvc_remote: str | None = None, deployment: str = DEPLOYMENT,
               workdir: str | None = None, repo: str = ".", report: bool = True) -> dict[str, str]:
    """Run the grid's missing cells on the work pool behind `deployment`, pull them and build the report."""
    from prefect.deployments import run_deployment

    log, project = get_run_logger(), Path(repo).resolve()
    if git_remote in git(["remote"], project).split():  # a remote's name (origin): workers need its URL
        git_remote = git(["remote", "get-url", git_remote], project).strip()
    if "://" not in git_remote and ":" not in git_remote and (project / git_remote).exists():
        git_remote = str((project / git_remote).resolve())  # a local path, as the workers' clones see it
    rev = git(["rev-parse", "HEAD"], project).strip()
    if rev not in git(["ls-remote", git_remote], project).split():
        raise OSRError(f"HEAD {rev[:10]} of {project} is no branch or tag tip of {git_remote}: push it first")
    pool, online = pool_of(deployment)
    if not online:
        log.warning("suite-grid: no worker of work pool %r is online; the cells wait until one starts "
                    "(`make worker POOL=%s`)", pool, pool)
    cells = grid(profile, benchmarks, splits, recipes, seeds)
    done = remote_experiments(project, git_remote)
    todo = [c for c in cells if c.name not in done]
    log.info("suite-grid: %d cells, %d already on %s, running %d on %s", len(cells), len(cells) - len(todo),
             git_remote, len(todo), deployment)
    states: dict[str, str] = {}
    for wave in waves(todo):
        runs = {c.name: run_deployment(deployment, timeout=0, flow_run_name=c.name, parameters={
            "profile": c.profile, "benchmark": c.benchmark, "split": c.split, "recipe": c.recipe, "seed": c.seed,
            "git_remote": git_remote, "rev": rev, "dvc_remote": dvc_remote, "workdir": workdir,
            "teacher_from": t if states.get(t) == "Completed" else None}).id for c, t in wave}
        states |= wait_for(runs)
    finished = sorted(n for n in {c.name for c in cells} if n in done or states.get(n) == "Completed")
    if report and finished:
        use_dvc_remote(project, dvc_remote)
        dvc(["exp", "pull", git_remote, *finished], project)
        res = subprocess.run([sys.executable, "-m", "study.report"], cwd=project, capture_output=True, text=True,
                             env=cell_env())
        if res.returncode:
            raise OSRError(f"study.report failed: {(res.stderr or res.stdout).strip().splitlines()[-1:]}")
        print(res.stdout.strip())
    failed = sorted(n for n, s in states.items() if s != "Completed")
    if failed:
        raise OSRError(f"{len(failed)} cells did not complete ({', '.join(failed)}); see their flow runs' logs")
    return states


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flows.suite_pool", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_grid_args(ap)
    ap.add_argument("--git-remote", required=True, help="git remote (URL or path) the workers clone and push to")
    ap.add_argument("--dvc-remote", default=None, help="DVC remote URL (default: the repository's default remote)")
    ap.add_argument("--deployment", default=DEPLOYMENT)
    ap.add_argument("--workdir", default=None, help="where workers make their clones (default: the temp folder)")
    ap.add_argument("--no-report", action="store_true", help="run the cells only: no dvc exp pull, no report")
    args = ap.parse_args(argv)
    try:
        suite_grid(*grid_spec(args), args.git_remote, args.dvc_remote, args.deployment, args.workdir,
                   report=not args.no_report)
    except OSRError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
