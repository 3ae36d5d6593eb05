"""The tune-asym flow as it is deployed and scaled: a real Prefect server + `flows.serve`, two workers sharing a
PostgreSQL study, and a worker killed mid-trial then resumed.

Every flow here runs against one module-scoped local Prefect server (PREFECT_API_URL), so no process pays for
its own ephemeral server. PostgreSQL tests skip where the server binaries are absent (`initdb` on PATH or under
/usr/lib/postgresql/*/bin); as root the throw-away cluster runs as an unprivileged user (`runuser`), since
postgres refuses to run as root.
"""
from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import clone, needs_mirror, venv_env

pytestmark = [needs_mirror, pytest.mark.slow]

SERVER_TIMEOUT = 300  # s: `prefect server start` until /api/health answers (took > 120 s on a loaded 2-core box)
FLOW_TIMEOUT = 300  # s: one flow run of a few tiny trials, process start-up included


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except (urllib.error.URLError, OSError):
        return 0, ""


def _popen(args: list[str], cwd: Path, env: dict, log: Path) -> subprocess.Popen:
    """A background process in its own process group (so teardown can end it and its children), output to `log`."""
    with open(log, "wb") as f:
        return subprocess.Popen(args, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, wait: float = 20.0) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
            proc.wait(wait)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)


def _tail(log: Path, n: int = 3000) -> str:
    return log.read_text(errors="replace")[-n:] if log.exists() else "(no log)"


def _wait(cond, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None,
          every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: process exited ({proc.returncode}) first:\n{_tail(log) if log else ''}")
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s:\n{_tail(log) if log else ''}")


# --------------------------------------------------------------------------------------------------------------
# fixtures: a local Prefect server, a throw-away PostgreSQL cluster


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """`prefect server start` on a free loopback port with its own PREFECT_HOME; yields the env to talk to it."""
    home = tmp_path_factory.mktemp("prefect_home")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = venv_env(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.pop("PREFECT_API_URL", None)
    log = home / "server.log"
    prefect = str(Path(sys.executable).parent / "prefect")
    proc = _popen([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--analytics-off"],
                  home, env, log)
    try:
        _wait(lambda: _get(f"{api}/health")[0] == 200, SERVER_TIMEOUT, "prefect server /api/health", proc, log)
        yield venv_env(PREFECT_API_URL=api, PREFECT_HOME=str(home))
    finally:
        _stop(proc)


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
                   if p.split("/")[4].isdigit() else 0)
    return Path(cands[-1]).parent if cands else None


def _pg_user() -> str | None:
    """As root: an unprivileged user to run the cluster as (`postgres` if present, else one created once)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "osr-pgtest"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            pass
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "osr-pgtest"],
                   capture_output=True)  # idempotent: a concurrent creation is fine, checked below
    try:
        pwd.getpwnam("osr-pgtest")
    except KeyError:
        pytest.skip("running as root and could not create an unprivileged user for PostgreSQL")
    return "osr-pgtest"


@pytest.fixture
def pg_url():
    """A throw-away PostgreSQL cluster (trust auth, loopback only, socket in its temp dir) with one database."""
    bindir = _pg_bin()
    if bindir is None or not (bindir / "pg_ctl").exists():
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin")
    pytest.importorskip("psycopg2", reason="psycopg2 (psycopg2-binary, dev extra) is needed for postgresql URLs")
    import psycopg2

    user = _pg_user()
    if user is not None and not shutil.which("runuser"):
        pytest.skip("running as root without `runuser` to start PostgreSQL as an unprivileged user")
    prefix = ["runuser", "-u", user, "--"] if user else []
    base = Path(tempfile.mkdtemp(prefix="osr-pg-"))
    if user:
        pw = pwd.getpwnam(user)
        os.chown(base, pw.pw_uid, pw.pw_gid)
    os.chmod(base, 0o700)
    data, sock, log = base / "data", base / "sock", base / "server.log"
    port = _free_port()

    def pg(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run([*prefix, *args], cwd=base, capture_output=True, text=True, timeout=120)
        if check and res.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}\n"
                                 f"{_tail(log) if os.access(log, os.R_OK) else ''}")
        return res

    started = False
    try:
        pg("mkdir", "-p", str(sock))
        pg(str(bindir / "initdb"), "-D", str(data), "-U", "osr", "-A", "trust", "--no-sync", "-E", "UTF8")
        # trust on the unix socket (in `base`, mode 700) and on IPv4 loopback only; listen on loopback only
        pg("sh", "-c", f"printf 'local all all trust\\nhost all all 127.0.0.1/32 trust\\n' > {data}/pg_hba.conf")
        pg(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
           f"-h 127.0.0.1 -p {port} -k {sock} -c fsync=off -c max_connections=50", "start")
        started = True
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="osr", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE osr_tune")
        conn.close()
        yield f"postgresql+psycopg2://osr@127.0.0.1:{port}/osr_tune"
    finally:
        if started:
            pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------------------------------------------
# 1. serve the deployment, trigger it through the API, check the study


def test_served_deployment_runs_on_a_real_server(tiny_repro, tmp_path, prefect_server):
    proj = clone(tiny_repro, tmp_path / "proj")
    env = prefect_server
    api = env["PREFECT_API_URL"]
    log = tmp_path / "serve.log"
    serve = _popen([sys.executable, "-m", "flows.serve"], proj, env, log)
    try:
        _wait(lambda: _get(f"{api}/deployments/name/tune-asym/local")[0] == 200, 120,
              "deployment tune-asym/local", serve, log)
        prefect = str(Path(sys.executable).parent / "prefect")
        res = subprocess.run([prefect, "deployment", "run", "tune-asym/local", "-p", "n_trials=2",
                              "-p", "proxy_size=50", "-p", f"project_dir={proj}", "--watch"],
                             cwd=proj, env=env, capture_output=True, text=True, timeout=FLOW_TIMEOUT)
        out = res.stdout + res.stderr
        assert res.returncode == 0, f"{out[-3000:]}\n--- serve log ---\n{_tail(log)}"
        assert "Completed" in out, out[-3000:]
        rc, _, out = _submit(proj, env)  # `make tune`: one more trial; prints the artifacts and the best command
        assert rc == 0 and "artifacts: " in out and "tune-asym-trials (table)" in out, f"{out}\n{_tail(log)}"
        assert "best: dvc exp run -n tune-asym-best -S " in out, out
    finally:
        _stop(serve)
    # the artifacts of the last run, read back from the real server: one table row per trial, the best command
    table, best = _artifact(api, "tune-asym-trials"), _artifact(api, "tune-asym-best")
    assert [r["number"] for r in json.loads(table["data"])] == [0, 1, 2]
    assert "dvc exp run -n tune-asym-best -S " in best["data"]
    journal = proj / "reports/tuning/tune-asym.journal"
    assert journal.exists(), sorted(str(p) for p in (proj / "reports/tuning").rglob("*"))
    from flows.tune_asym import make_storage

    study = optuna.load_study(study_name="tune-asym", storage=make_storage(None, "tune-asym", proj))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    assert json.loads((proj / "reports/tuning/tune-asym.json").read_text())["n_trials_by_state"] == {"COMPLETE": 3}
    assert study.metric_names == ["proxy AUROC"]


def _artifact(api: str, key: str) -> dict:
    """The newest artifact under `key` (POST /artifacts/filter of the Prefect REST API)."""
    body = json.dumps({"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 1}).encode()
    req = urllib.request.Request(f"{api}/artifacts/filter", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        found = json.loads(r.read())
    assert found, f"no artifact {key!r}"
    return found[0]


# --------------------------------------------------------------------------------------------------------------
# 2. two workers on one PostgreSQL study

WORKER = """
import json, sys
from flows.tune_asym import tune_asym
a = json.loads(sys.argv[1])
r = tune_asym(study_name=a["study"], n_trials=a["n"], storage=a["storage"], proxy_size=50, project_dir=a["proj"])
print("WORKER-DONE", r["n_trials"])
"""


def test_two_workers_share_a_postgresql_study(tiny_repro, tmp_path, prefect_server, pg_url):
    study_name = "pg"
    # create once before fanning out (concurrent create_study races on the schema / the study row)
    optuna.create_study(study_name=study_name, storage=pg_url, direction="maximize")
    procs = []
    for i in range(2):
        proj = clone(tiny_repro, tmp_path / f"proj{i}")
        arg = json.dumps({"study": study_name, "n": 2, "storage": pg_url, "proj": str(proj)})
        log = tmp_path / f"worker{i}.log"
        procs.append((_popen([sys.executable, "-c", WORKER, arg], proj, prefect_server, log), log))
    try:
        for p, log in procs:
            p.wait(FLOW_TIMEOUT)
            assert p.returncode == 0 and "WORKER-DONE" in _tail(log), _tail(log)
    finally:
        for p, _ in procs:
            _stop(p, signal.SIGKILL)
    study = optuna.load_study(study_name=study_name, storage=pg_url)
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == [0, 1, 2, 3] and len(set(numbers)) == 4  # none lost, none duplicated
    assert all(t.state == TrialState.COMPLETE for t in study.trials), [t.state for t in study.trials]
    assert len({t._trial_id for t in study.trials}) == 4
    # each worker ran its two trials in its own clone
    dirs = sorted(p.name for i in range(2) for p in (tmp_path / f"proj{i}/data/tune/pg").iterdir())
    assert dirs == ["trial_0", "trial_1", "trial_2", "trial_3"]


# --------------------------------------------------------------------------------------------------------------
# 3. SIGKILL mid-trial, then resume with the same study name and storage

# trial 1 of the first run hangs (OSR_HANG_TRIAL), so the kill always lands with trial 0 COMPLETE and trial 1
# RUNNING; without the hook the window between two ~1 s trials is too short to hit reliably.
KILLABLE = """
import json, os, sys, time
from osr import tuning
real = tuning.run_trial
hang = os.environ.get("OSR_HANG_TRIAL")

def run_trial(td, settings, trial_dir, on_epoch=None):
    if hang is not None and trial_dir.endswith("trial_" + hang):
        time.sleep(3600)
    return real(td, settings, trial_dir, on_epoch)

tuning.run_trial = run_trial
from flows.tune_asym import tune_asym
a = json.loads(sys.argv[1])
r = tune_asym(study_name=a["study"], n_trials=a["n"], storage=a["storage"], proxy_size=50, project_dir=a["proj"])
print("WORKER-DONE", r["n_trials"])
"""


def test_killed_flow_resumes_without_losing_or_duplicating_trials(tiny_repro, tmp_path, prefect_server):
    from flows.tune_asym import make_storage

    proj = clone(tiny_repro, tmp_path / "proj")
    journal = tmp_path / "kill.journal"
    arg = lambda n: json.dumps({"study": "k", "n": n, "storage": str(journal), "proj": str(proj)})  # noqa: E731

    def snapshot():
        if not journal.exists():
            return None
        try:
            return optuna.load_study(study_name="k", storage=make_storage(str(journal), "k", proj)).trials
        except KeyError:  # study not created yet
            return None

    def killable():
        trials = snapshot()
        if trials is None:
            return None
        done = sum(t.state == TrialState.COMPLETE for t in trials)
        running = [t for t in trials if t.state == TrialState.RUNNING]
        return trials if 1 <= done < 3 and running else None

    log = tmp_path / "first.log"
    first = _popen([sys.executable, "-c", KILLABLE, arg(3)], proj, {**prefect_server, "OSR_HANG_TRIAL": "1"}, log)
    try:
        _wait(killable, FLOW_TIMEOUT, "1 COMPLETE trial and 1 RUNNING", first, log, every=0.3)
    finally:
        _stop(first, signal.SIGKILL)  # the whole process group, no clean-up
    assert first.returncode == -signal.SIGKILL
    before = snapshot()
    done_before = {t.number: t.params for t in before if t.state == TrialState.COMPLETE}
    running_before = [t.number for t in before if t.state == TrialState.RUNNING]
    assert len(done_before) >= 1 and running_before == [max(t.number for t in before)]

    log2 = tmp_path / "second.log"
    second = _popen([sys.executable, "-c", KILLABLE, arg(2)], proj, prefect_server, log2)
    try:
        second.wait(FLOW_TIMEOUT)
    finally:
        _stop(second, signal.SIGKILL)
    assert second.returncode == 0 and "WORKER-DONE" in _tail(log2), _tail(log2)

    after = snapshot()
    numbers = [t.number for t in after]
    assert numbers == list(range(len(before) + 2)) and len(set(numbers)) == len(numbers)
    by_number = {t.number: t for t in after}
    for n, params in done_before.items():  # finished work survives the kill unchanged
        assert by_number[n].state == TrialState.COMPLETE and by_number[n].params == params
    # The trial killed mid-run stays RUNNING: journal storage has no heartbeat, so Optuna cannot tell a dead
    # worker from a slow one, and the flow deliberately does not fail RUNNING trials at start (with several
    # workers on one study they may belong to a live worker). Clean-up of such zombies is manual.
    for n in running_before:
        assert by_number[n].state == TrialState.RUNNING
    done_after = [t for t in after if t.state == TrialState.COMPLETE]
    assert len(done_after) == len(done_before) + 2
    assert all(t.number >= len(before) for t in done_after if t.number not in done_before)
    report = json.loads((proj / "reports/tuning/k.json").read_text())
    assert report["n_trials_by_state"] == {"COMPLETE": len(done_before) + 2, "RUNNING": len(running_before)}


# --------------------------------------------------------------------------------------------------------------
# `make tune` (flows.submit): one-line errors instead of tracebacks and endless waits


def _submit(proj: Path, env: dict, *args: str) -> tuple[int, str, str]:
    res = subprocess.run([sys.executable, "-m", "flows.submit", "-p", "n_trials=1", "-p", "proxy_size=50",
                          "-p", f"project_dir={proj}", *args], cwd=proj, env=env, capture_output=True, text=True,
                         timeout=FLOW_TIMEOUT)
    out = res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    return res.returncode, lines[-1] if lines else "", out


def test_submit_fails_in_one_line_without_a_server_a_worker_or_a_valid_mode(tiny_repro, tmp_path, prefect_server):
    proj = clone(tiny_repro, tmp_path / "proj")
    env = prefect_server
    rc, last, out = _submit(proj, {**env, "PREFECT_API_URL": f"http://127.0.0.1:{_free_port()}/api"})
    assert rc == 1 and last.startswith("error: no Prefect server answers at") and "prefect server start" in last, out
    assert "Traceback" not in out
    rc, last, out = _submit(proj, env, "--deployment", "tune-asym/nowhere")
    assert rc == 1 and "deployment not found" in last and "make serve" in last, out
    log = tmp_path / "serve.log"
    serve = _popen([sys.executable, "-m", "flows.serve"], proj, env, log)
    try:
        _wait(lambda: _get(f"{env['PREFECT_API_URL']}/deployments/name/tune-asym/local")[0] == 200, 120,
              "deployment tune-asym/local", serve, log)
        rc, last, out = _submit(proj, env, "-p", "mode=both")
        assert rc == 1 and last.startswith("error: the Prefect server refused the run") and "mode" in last, out
        assert "submitted flow run" not in out  # refused at submission, not in the serve log
    finally:
        _stop(serve)
    rc, last, out = _submit(proj, env, "--late-timeout", "3")  # registered, but nothing serves it now
    assert rc == 1 and "nothing serves tune-asym/local" in last and "make serve" in last, out
    assert "Traceback" not in out
