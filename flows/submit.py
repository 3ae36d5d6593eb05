"""`make tune`: submit a run of a served deployment and wait for it, with one-line errors.

    python -m flows.submit [-p key=value ...] [--late-timeout 120] [--deployment tune-asym/local]

`prefect deployment run … --watch` prints a long traceback when no server answers, and waits forever on a run
that nothing serves (it stays Late). This submits through the same API and stops with one line when no Prefect
server answers at PREFECT_API_URL (start `prefect server start`), when the deployment is not registered or the
run stays Scheduled/Late for `--late-timeout` seconds (nothing serves it: start `make serve`), when the server
refuses a parameter (the flow's typed signature is the deployment's parameter schema, so a wrong `mode` is
refused at submission), and when the run ends in any state other than Completed (its state message). A completed
run's artifact keys (`tune-asym-trials`, `tune-asym-best`) and best `dvc exp run` are printed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from cli import guarded
from osr import OSRError

WAITING = {"SCHEDULED", "PENDING"}  # Late is a SCHEDULED state
SERVE_HINT = "start `make serve` (python -m flows.serve) with the same PREFECT_API_URL"


def parse_parameters(pairs: list[str]) -> dict:
    """`key=value` pairs; a value is JSON when it parses as JSON (numbers, true, lists), else a string."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise OSRError(f"-p {pair!r}: expected key=value")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _api_error(e: Exception, api: str) -> OSRError:
    import httpx
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    if isinstance(e, ObjectNotFound):
        return OSRError(f"deployment not found on {api}: {SERVE_HINT}")
    if isinstance(e, PrefectHTTPStatusError):
        try:
            detail = e.response.json().get("detail", e.response.text)
        except ValueError:
            detail = e.response.text
        return OSRError(f"the Prefect server refused the run: {' '.join(str(detail).split())}")
    if isinstance(e, (httpx.HTTPError, OSError, RuntimeError)):
        return OSRError(f"no Prefect server answers at {api} ({type(e).__name__}); start `prefect server start "
                        "--host 127.0.0.1 --port 4200` and export PREFECT_API_URL")
    raise e


def print_artifacts(client, run_id) -> None:
    """The keys of the run's artifacts (the Prefect UI's Artifacts tab) and the best command from the markdown."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    arts = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
    if arts:
        print("artifacts: " + ", ".join(f"{a.key} ({a.type})" for a in arts if a.key), flush=True)
    for a in arts:
        if a.type == "markdown" and isinstance(a.data, str):
            for line in a.data.splitlines():
                if line.startswith("dvc exp run"):
                    print(f"best: {line}", flush=True)


def submit(deployment: str, parameters: dict, late_timeout: float, poll: float = 2.0) -> str:
    """Create a flow run of `deployment`, wait until it ends; returns its final state name or raises OSRError."""
    from prefect.client.orchestration import get_client

    api = os.environ.get("PREFECT_API_URL", "(PREFECT_API_URL unset: an ephemeral server)")
    try:
        with get_client(sync_client=True) as client:
            dep = client.read_deployment_by_name(deployment)
            run = client.create_flow_run_from_deployment(dep.id, parameters=parameters)
            print(f"submitted flow run {run.name} ({run.id}) of {deployment}", flush=True)
            since = time.monotonic()
            while True:
                state = client.read_flow_run(run.id).state
                kind = state.type.value if state else "SCHEDULED"
                if state and state.is_final():
                    break
                if kind in WAITING and time.monotonic() - since > late_timeout:
                    raise OSRError(f"flow run {run.name} is still {state.name if state else 'Scheduled'} after "
                                   f"{late_timeout:.0f} s: nothing serves {deployment}; {SERVE_HINT}")
                time.sleep(poll)
            if state.is_completed():
                print_artifacts(client, run.id)
    except OSRError:
        raise
    except Exception as e:  # noqa: BLE001  (classified by _api_error, re-raised if unknown)
        raise _api_error(e, api) from None
    if not state.is_completed():
        message = " ".join((state.message or "no message").split())
        raise OSRError(f"flow run {run.name} ended {state.name}: {message}")
    return state.name


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m flows.submit", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deployment", default="tune-asym/local")
    ap.add_argument("-p", "--param", action="append", default=[], help="flow parameter key=value (repeatable)")
    ap.add_argument("--late-timeout", type=float, default=120.0,
                    help="seconds a run may wait to be picked up (Scheduled/Late) before giving up")
    args = ap.parse_args()
    print(f"flow run {submit(args.deployment, parse_parameters(args.param), args.late_timeout)}")


if __name__ == "__main__":
    sys.exit(guarded(main))
