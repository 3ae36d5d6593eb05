"""`make deploy`: register the project's flows as work-pool deployments, so `prefect worker start` runs them.

    python -m flows.deploy --pool gpu [--source DIR_OR_GIT_URL] [--name pool] [--flows tune-asym,suite-cell]
    prefect worker start --pool gpu                     # on every machine that should run flow runs
    prefect deployment run tune-asym/pool -p n_trials=20 -p seed=1

`flows.serve` (`make serve`) runs `tune-asym/local` inside the serving process and never reaches a worker; these
deployments instead go to the work pool `--pool` (created as a `process` pool if missing), where any worker
polling it picks their runs up. The code comes from `--source`: by default this checkout (each flow run starts
in that directory, so every worker machine needs the checkout at the same path, with its DVC outputs pulled);
a git URL instead makes every flow run clone it first. Deployments are `<flow>/<name>`: `tune-asym/pool`
(flows/tune_asym.py) and `suite-cell/pool` (flows/suite_pool.py: one benchmark cell per flow run).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from osr import OSRError

ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINTS = {"tune-asym": "flows/tune_asym.py:tune_asym", "suite-cell": "flows/suite_pool.py:suite_cell"}


def ensure_pool(pool: str) -> None:
    """Create `pool` as a `process` work pool (its default job template) unless it exists; any other type stays."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process",
                                                   base_job_template=ProcessWorker.get_default_base_job_template()))
            print(f"created process work pool {pool!r}")


def deploy(pool: str, source: str, name: str = "pool", flows: list[str] | None = None) -> list[str]:
    """Deploy `flows` (default all of ENTRYPOINTS) from `source` to `pool`; returns the deployment names."""
    from prefect import Flow

    flows = flows or list(ENTRYPOINTS)
    unknown = sorted(set(flows) - set(ENTRYPOINTS))
    if unknown:
        raise OSRError(f"--flows: unknown flow(s) {unknown} (choose from {sorted(ENTRYPOINTS)})")
    if "://" not in source and not source.startswith("git@") and not (Path(source) / "dvc.yaml").exists():
        raise OSRError(f"--source {source}: not a project checkout (no dvc.yaml) and not a git URL")
    ensure_pool(pool)
    names = []
    for flow_name in flows:
        f = Flow.from_source(source=source, entrypoint=ENTRYPOINTS[flow_name])
        f.deploy(name=name, work_pool_name=pool, print_next_steps=False, ignore_warnings=True)
        names.append(f"{f.name}/{name}")
    return names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flows.deploy", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", required=True, help="work pool name (created as a process pool if missing)")
    ap.add_argument("--source", default=str(ROOT), help="project checkout or git URL the flow runs load (default: "
                                                        "this checkout)")
    ap.add_argument("--name", default="pool", help="deployment name: <flow>/<name> (default pool)")
    ap.add_argument("--flows", default=",".join(ENTRYPOINTS), help="comma-separated flows to deploy")
    args = ap.parse_args(argv)
    try:
        names = deploy(args.pool, args.source, args.name, args.flows.split(","))
    except OSRError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001  (no server, refused deployment: one line, not a traceback)
        print(f"error: deploying to work pool {args.pool!r} failed ({type(e).__name__}: {' '.join(str(e).split())});"
              " is a Prefect server answering at PREFECT_API_URL?", file=sys.stderr)
        return 1
    print(f"deployed {', '.join(names)} to work pool {args.pool!r}; start workers with "
          f"`prefect worker start --pool {args.pool}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
