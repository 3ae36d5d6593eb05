"""Work-pool deployments for real: `python -m flows.deploy` (make deploy), a `process` work pool on a local Prefect
server and two `prefect worker start --limit 1` processes, each picking up its own flow runs.

1. tune-asym/pool: two flow runs of one Optuna study on a throw-away PostgreSQL, one per worker.
2. suite-cell/pool: the suite grid (flows/suite_pool.py) of four tiny cells, each run once in a clone of a bare
   git remote, pushed there and to a local-folder DVC remote, then pulled and reported here.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from test_deployment import _artifact, _popen, _stop, _tail, pg_url, prefect_server  # noqa: F401  (fixtures)

from conftest import clone, make_project, needs_mirror, sh

pytestmark = [needs_mirror, pytest.mark.slow]

PREFECT = str(Path(sys.executable).parent / "prefect")
SUBMITTED = re.compile(r"submitting flow run '([0-9a-f-]{36})'")
ABORTED = re.compile(r"Aborted submission of flow run '([0-9a-f-]{36})'")  # another worker got it first


def deploy(proj: Path, env: dict, pool: str, flows: str) -> None:
    out = sh([sys.executable, "-m", "flows.deploy", "--pool", pool, "--source", str(proj), "--flows", flows],
             proj, env=env).stdout
    assert f"to work pool '{pool}'" in out, out


@contextmanager
def workers(pool: str, cwd: Path, env: dict, logs: Path, n: int = 2):
    """`n` process workers on `pool`, one flow run at a time each (`--limit 1`), polling every second; yields
    their log files. Always stopped (the whole process group) on exit."""
    env = {**env, "PREFECT_WORKER_QUERY_SECONDS": "1", "OMP_NUM_THREADS": "1"}
    procs = []
    try:
        for i in range(n):
            log = logs / f"{pool}-worker{i}.log"
            procs.append((_popen([PREFECT, "worker", "start", "--pool", pool, "--limit", "1", "--name",
                                  f"{pool}-w{i}"], cwd, env, log), log))
        yield [log for _, log in procs]
    finally:
        for p, _ in procs:
            _stop(p)


def picked_up(logs: list[Path]) -> list[set[str]]:
    """Per worker, the ids of the flow runs it ran (submitted, and not aborted because another worker won)."""
    texts = [_tail(log, 10**7) for log in logs]
    return [set(SUBMITTED.findall(t)) - set(ABORTED.findall(t)) for t in texts]


def flow_runs(deployment: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    flow_name, name = deployment.split("/")
    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name(deployment)
        assert dep.name == name
        return [r for r in client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(
            any_=[name]))) if r.deployment_id == dep.id]


@pytest.fixture
def api(prefect_server):  # noqa: F811
    """This process's Prefect client talks to the test server too (settings read when prefect was imported, maybe
    by another test module, so an environment variable set now would not reach it)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: prefect_server["PREFECT_API_URL"]}):
        yield prefect_server


# --------------------------------------------------------------------------------------------------------------
# 1. tune-asym/pool: two workers, one PostgreSQL study


def test_tuning_deployment_runs_on_two_workers_of_a_process_pool(tiny_repro, tmp_path, api, pg_url):  # noqa: F811
    from prefect.client.orchestration import get_client

    from flows.suite_pool import wait_for

    projs = [clone(tiny_repro, tmp_path / f"proj{i}") for i in range(2)]  # one checkout per machine
    deploy(projs[0], api, "tune", "tune-asym")
    optuna.create_study(study_name="pool", storage=pg_url, direction="maximize")  # once, before fanning out
    with workers("tune", projs[0], api, tmp_path) as logs:
        with get_client(sync_client=True) as client:
            dep = client.read_deployment_by_name("tune-asym/pool")
            runs = {f"run{i}": client.create_flow_run_from_deployment(dep.id, parameters={
                "study_name": "pool", "n_trials": 2, "storage": pg_url, "proxy_size": 50, "seed": i,
                "project_dir": str(proj)}).id for i, proj in enumerate(projs)}
        states = wait_for(runs, poll=1.0)
    assert states == {"run0": "Completed", "run1": "Completed"}, "\n".join(_tail(log) for log in logs)
    # each worker took exactly one of the two runs: the pool, not a serving process, ran them
    assert sorted(map(len, picked_up(logs))) == [1, 1] and set.union(*picked_up(logs)) == {
        str(i) for i in runs.values()}
    assert {r.work_pool_name for r in flow_runs("tune-asym/pool")} == {"tune"}
    study = optuna.load_study(study_name="pool", storage=pg_url)
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]  # none lost, none duplicated
    assert all(t.state == TrialState.COMPLETE for t in study.trials), [t.state for t in study.trials]
    params = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(params)) == 4  # the per-run seeds: no two runs proposed the same point
    ran = sorted(p.name for proj in projs for p in (proj / "data/tune/pool").iterdir())
    assert ran == ["trial_0", "trial_1", "trial_2", "trial_3"]


# --------------------------------------------------------------------------------------------------------------
# 2. suite-cell/pool: four cells, two workers, a bare git remote and a local DVC remote

CELLS = ["tiny-cifar10-s0-ce-none", "tiny-cifar10-s1-ce-none", "tiny-cifar10-s0-asym-cutmix",
         "tiny-cifar10-s1-asym-cutmix"]


def test_suite_grid_runs_each_cell_once_on_two_workers_and_reports_what_was_pushed(tmp_path, api):
    from flows.suite_pool import cell_key

    proj = make_project(tmp_path / "proj")
    remote, store = tmp_path / "remote.git", tmp_path / "dvc-store"
    sh(["git", "init", "-q", "--bare", str(remote)], tmp_path)
    sh(["git", "remote", "add", "origin", str(remote)], proj)
    sh(["git", "push", "-q", "origin", "HEAD"], proj)
    deploy(proj, api, "grid", "suite-cell")
    grid = [sys.executable, "-m", "flows.suite_pool", "--profile", "tiny", "--splits", "0-1", "--recipes",
            "ce-none,asym-cutmix", "--git-remote", str(remote), "--dvc-remote", str(store)]
    t0 = time.monotonic()
    with workers("grid", proj, api, tmp_path) as logs:
        res = subprocess.run(grid, cwd=proj, env=api, capture_output=True, text=True, timeout=2400)
        out = res.stdout + res.stderr
        assert res.returncode == 0, out[-4000:] + "\n".join(_tail(log) for log in logs)
        print(f"grid of 4 tiny cells on 2 workers: {time.monotonic() - t0:.0f} s")
        # a rerun finds every cell on the remote and submits nothing
        rerun = sh([*grid, "--no-report"], proj, env=api)
    assert "report: 4 experiments" in out, out[-3000:]
    # each cell ran exactly once: one completed flow run per cell, the runs spread over both workers
    runs = flow_runs("suite-cell/pool")
    assert sorted(r.name for r in runs) == sorted(CELLS), [r.name for r in runs]
    assert all(r.state.is_completed() for r in runs), [(r.name, r.state.name) for r in runs]
    per_worker = picked_up(logs)
    assert all(per_worker) and set.union(*per_worker) == {str(r.id) for r in runs}
    assert sum(map(len, per_worker)) == 4
    on_remote = sh(["dvc", "exp", "list", str(remote), "--all-commits", "--name-only"], proj).stdout.split()
    assert sorted(on_remote) == sorted(CELLS)
    assert "4 cells, 4 already on" in rerun.stdout + rerun.stderr and len(flow_runs("suite-cell/pool")) == 4
    # the teachers: trained by the first wave (one cell per split), pulled from the DVC remote by the second
    cells = {n: json.loads(_artifact(api["PREFECT_API_URL"], cell_key(n))["data"])[0] for n in CELLS}
    for n in CELLS[:2]:
        assert "train_teacher" in cells[n]["ran"].split() and not cells[n]["teacher_from"], cells[n]
    for n, teacher in zip(CELLS[2:], CELLS[:2], strict=True):
        row = cells[n]
        assert row["teacher_from"] == teacher and "train_teacher" not in row["ran"].split(), row
        assert "train_teacher" in row["pulled"].split() + row["from_run_cache"].split(), row
        assert {"augment", "relabel", "distill", "evaluate"} <= set(row["ran"].split()), row
    assert (store / "files" / "md5").is_dir() and (store / "runs").is_dir()
    # the report was built from the pulled experiments
    archive = sorted(p.stem for p in (proj / "reports/experiments").glob("*.json"))
    assert archive == sorted(CELLS)
    md = (proj / "reports/suite.md").read_text()
    assert all(f"| {n} " in md for n in CELLS), md[:2000]
