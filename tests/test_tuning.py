"""The tune-asym flow (Prefect + Optuna) on a clone of the tiny project: trials, failures, resume, no test role."""
import json
import math
import shlex
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState

from conftest import ROOT, clone, compose, composed, needs_mirror
from osr.config import load_params

pytestmark = [needs_mirror, pytest.mark.slow]

ALLOWED = ("data/tune/", "reports/tuning/")


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    skip = (".git/", ".dvc/tmp/", ".dvc/cache/")
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")
            if p.is_file() and not str(p.relative_to(root)).startswith(skip) and "__pycache__" not in p.parts}


def _study(proj: Path, name: str, storage: str | None = None) -> optuna.Study:
    from flows.tune_asym import make_storage

    return optuna.load_study(study_name=name, storage=make_storage(storage, name, proj))


def test_flow_runs_trials_on_val_only_and_writes_reports(tiny_repro, tmp_path, prefect_harness, monkeypatch):
    from flows.tune_asym import tune_asym
    from osr import tuning

    proj = clone(tiny_repro, tmp_path / "proj")
    seen = []
    real = tuning.SplitTensors.from_arrays.__func__

    def spy(cls, raw, manifest, device, roles=("train", "val", "test")):
        seen.append((set(raw), set(manifest.role), tuple(roles)))
        return real(cls, raw, manifest, device, roles)

    monkeypatch.setattr(tuning.SplitTensors, "from_arrays", classmethod(spy))
    before = _snapshot(proj)
    report = tune_asym(study_name="t", n_trials=2, proxy_size=100, project_dir=str(proj))

    # the test role is never loaded: no x_test array, no test rows, no test role requested
    assert seen and all("x_test" not in keys and roles <= {"train", "val"} and "test" not in req
                        for keys, roles, req in seen)
    manifest = pd.read_csv(proj / "data/split/manifest.csv")
    val_ids = set(manifest.loc[manifest.role == "val", "sample_id"])
    study = _study(proj, "t")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    for t in study.trials:
        assert 0.0 <= t.value <= 1.0 and 0.0 <= t.user_attrs["val_acc"] <= 1.0
        res = json.loads((proj / f"data/tune/t/trial_{t.number}/result.json").read_text())
        assert res["eval_roles"] == ["val"] and res["roles_loaded"] == ["train", "val"]
        assert set(res["eval_sample_ids"]) == val_ids and res["n_proxy"] == 100
        assert res["proxy_auroc"] == pytest.approx(t.value)

    written = json.loads((proj / "reports/tuning/t.json").read_text())
    assert written["n_trials_by_state"] == {"COMPLETE": 2} == report["n_trials_by_state"]
    assert set(written["best"]["params"]) == {"tau", "threshold", "smoothing"}
    assert written["best_command"].startswith("dvc exp run -n t-best -S ")
    assert "-S relabel.rule=threshold" in written["best_command"]
    assert written["proxy"]["source"] == "tinyimagenet-val"
    assert written["plots"] == ["reports/tuning/t/history.png", "reports/tuning/t/importances.png"]
    assert _replay(written["best_command"], proj) == _trial_config(proj, written["best"]["params"])
    assert all((proj / png).read_bytes()[:4] == b"\x89PNG" for png in written["plots"])
    # trials (and the flow) write nothing else into the workspace
    after = _snapshot(proj)
    changed = {p for p in after if before.get(p) != after[p]} | (set(before) - set(after))
    assert changed and all(p.startswith(ALLOWED) for p in changed), sorted(changed)
    trial_files = {p for p in changed if p.startswith("data/tune/t/")}
    assert all(p.split("/")[3].startswith("trial_") for p in trial_files)
    # plots and optuna-dashboard name the objective; the report says it too
    assert study.metric_names == ["proxy AUROC"] == written["metric_names"]
    # the result where Prefect users look: the trials table and the best command, read back through the API
    assert report["artifacts"] == {"trials": "t-trials", "best": "t-best"}
    table, markdown = _artifact("t-trials"), _artifact("t-best")
    assert table.type == "table" and markdown.type == "markdown"
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert [r["number"] for r in rows] == [t.number for t in study.trials]
    for r, t in zip(rows, study.trials, strict=True):
        assert r["state"] == "COMPLETE" and r["tau"] == pytest.approx(t.params["tau"], abs=1e-4)
        assert r["objective"] == pytest.approx(t.value, abs=1e-4)
        assert r["proxy_auroc"] == pytest.approx(t.user_attrs["proxy_auroc"], abs=1e-4)
        assert r["val_acc"] == pytest.approx(t.user_attrs["val_acc"], abs=1e-4)
    assert written["best_command"] in markdown.data and f"Best trial {written['best']['number']}" in markdown.data
    # every measured epoch went through the run logger (the task run's log in the UI)
    epochs = yaml.safe_load((proj / "params.yaml").read_text())["student"]["epochs"]
    assert {f"trial {t.number} epoch {epochs}/{epochs}" for t in study.trials} <= _logged_epoch_lines(), \
        sorted(_logged_epoch_lines())


def _artifact(key: str):
    """The newest artifact under `key` on the Prefect API (the test harness's ephemeral server)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                      sort=ArtifactSort.CREATED_DESC, limit=1)
    assert found, f"no artifact {key!r}"
    return found[0]


def _logged_epoch_lines() -> set[str]:
    """'trial <n> epoch <e>/<E>' of the log lines the runs sent to the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)  # logs are sent in batches by a background worker
    logs = []  # every page (the server's text search needs SQL concat(), which SQLite lacks)
    with get_client(sync_client=True) as client:
        while page := client.read_logs(limit=200, offset=len(logs)):
            logs += page
    return {" ".join(log.message.split(":")[0].split()[:4]) for log in logs if " epoch " in log.message}


def test_failing_trials_are_recorded_and_the_study_goes_on(tiny_repro, tmp_path, prefect_harness, monkeypatch):
    from flows.tune_asym import tune_asym
    from osr import OSRError, tuning

    proj = clone(tiny_repro, tmp_path / "proj")
    real = tuning.run_trial
    calls = []

    def flaky(td, settings, trial_dir, on_epoch=None):
        calls.append(trial_dir)
        if len(calls) == 1:
            raise OSRError("student: training diverged (loss nan) in epoch 1; lower the lr")
        if len(calls) == 2:
            return {"val_acc": float("nan"), "proxy_auroc": float("nan")}
        return real(td, settings, trial_dir, on_epoch)

    monkeypatch.setattr(tuning, "run_trial", flaky)
    report = tune_asym(study_name="f", n_trials=3, mode="multi", proxy_size=50, project_dir=str(proj))
    study = _study(proj, "f")
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    assert "training diverged" in study.trials[0].user_attrs["error"]
    assert all(0.0 <= v <= 1.0 for v in study.trials[2].values) and len(study.trials[2].values) == 2
    assert report["n_trials_by_state"] == {"COMPLETE": 1, "FAIL": 2}
    assert report["best"]["number"] == 2 and report["pareto"][0]["number"] == 2
    assert json.loads((proj / "reports/tuning/f.json").read_text())["n_trials_by_state"] == {"COMPLETE": 1, "FAIL": 2}
    assert not (proj / "reports/tuning/f/importances.png").exists()  # < 2 complete trials: skipped
    assert study.metric_names == ["val accuracy", "proxy AUROC"] == report["metric_names"]
    rows = json.loads(_artifact("f-trials").data)
    assert [r["state"] for r in rows] == ["FAIL", "FAIL", "COMPLETE"] and "training diverged" in rows[0]["error"]
    assert "objective" not in rows[2] and rows[2]["proxy_auroc"] == pytest.approx(study.trials[2].values[1], abs=1e-4)
    best = _artifact("f-best").data
    assert report["best_command"] in best and "Pareto front (val accuracy / proxy AUROC): trial 2" in best


def test_same_study_name_and_storage_resumes(tiny_repro, tmp_path, prefect_harness):
    from flows.tune_asym import tune_asym

    proj = clone(tiny_repro, tmp_path / "proj")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    tune_asym(study_name="r", n_trials=2, storage=url, proxy_size=50, project_dir=str(proj))
    report = tune_asym(study_name="r", n_trials=1, storage=url, proxy_size=50, project_dir=str(proj))
    study = _study(proj, "r", url)
    assert [t.number for t in study.trials] == [0, 1, 2]
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    params = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(params)) == 3  # the resumed run did not replay the first run's points
    assert report["n_trials"] == 3 and report["n_trials_by_state"] == {"COMPLETE": 3}
    assert sorted(p.name for p in (proj / "data/tune/r").iterdir()) == ["trial_0", "trial_1", "trial_2"]
    assert all(math.isfinite(t.value) for t in study.trials)
    assert np.isclose(max(t.value for t in study.trials), report["best"]["values"][0])


def _replay(command: str, proj: Path) -> dict:
    """The params.yaml that DVC composes for a printed `dvc exp run -S …` (Hydra: conf/ defaults + every -S)."""
    args = shlex.split(command)
    return compose(proj / "conf", [args[i + 1] for i, a in enumerate(args) if a == "-S"])


def _trial_config(proj: Path, params: dict) -> dict:
    from flows.tune_asym import trial_config

    return asdict(trial_config(load_params(proj / "params.yaml"), params))


@pytest.mark.parametrize("study_overrides", [
    ["profile=tiny"],
    ["profile=claims", "benchmark=mnist", "split.index=2", "distill.method=kd", "student.epochs=3"],
])
def test_best_command_replays_the_studys_whole_config(study_overrides, tmp_path):
    """DVC recomposes conf/'s defaults on every -S: the command must carry profile, benchmark, split, ..."""
    from flows.tune_asym import best_command, trial_config

    study_params = composed(study_overrides)
    best = {"tau": 3.7, "threshold": 0.25, "smoothing": 0.125}
    cmd = shlex.join(best_command("s", best, study_params, ROOT / "conf"))
    assert cmd.startswith("dvc exp run -n s-best -S ")
    replayed = _replay(cmd, ROOT)
    assert replayed == asdict(trial_config(study_params, best))
    assert replayed["distill"]["tau"] == 3.7 and isinstance(replayed["distill"]["tau"], float)
    assert replayed["base"]["profile"] == study_params.base.profile


def _edit(proj: Path, section: str, key: str, value) -> None:
    p = yaml.safe_load((proj / "params.yaml").read_text())
    p[section][key] = value
    (proj / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


def test_trials_refuse_stale_pipeline_outputs(tiny_repro, tmp_path, prefect_harness):
    """With student.epochs edited but not reproduced, trials would tune the old plan: refused, naming the stage."""
    from flows.freshness import require_current
    from flows.tune_asym import FIXED, TUNED, tune_asym
    from osr import OSRError

    proj = clone(tiny_repro, tmp_path / "proj")
    tuned = set(TUNED) | set(FIXED)
    require_current(proj, tuned)
    _edit(proj, "relabel", "threshold", 0.9)  # a key the trial sets itself: not stale for tuning
    _edit(proj, "distill", "tau", 2.0)
    require_current(proj, tuned)
    _edit(proj, "student", "epochs", 3)
    with pytest.raises(OSRError, match=r"stage augment is not up to date \(params.yaml: student.epochs modified\)"):
        tune_asym(study_name="stale", n_trials=1, proxy_size=50, project_dir=str(proj))
    assert not (proj / "data/tune/stale").exists()
    _edit(proj, "student", "epochs", yaml.safe_load((tiny_repro / "params.yaml").read_text())["student"]["epochs"])
    _edit(proj, "relabel", "rule", "argmax")  # set by the trial too
    require_current(proj, tuned)
    (proj / "osr/relabel.py").write_text((proj / "osr/relabel.py").read_text() + "\n# edited\n")
    with pytest.raises(OSRError, match="stage relabel is not up to date") as e:
        require_current(proj, tuned)
    assert "\n" not in str(e.value) and "osr/relabel.py" in str(e.value)


def test_trials_refuse_a_teacher_cache_of_zeros(tiny_repro, tmp_path):
    """After a `ce` or `movr` run the relabel stage caches zeros (no teacher pass): tuning AD on it is refused."""
    from osr import OSRError
    from osr.io import load_npz, save_npz
    from osr.paths import CACHE, PLAN, PLAN_KEYS
    from osr.relabel import unread_outputs
    from osr.tuning import load_tune_data

    proj = clone(tiny_repro, tmp_path / "proj")
    save_npz(proj / CACHE, **unread_outputs(load_npz(proj / PLAN, PLAN_KEYS), 6))  # replaces the hard link
    with pytest.raises(OSRError, match=r"cache.npz: no teacher logits .* distill.method=asym") as e:
        load_tune_data(proj, proxy_size=50)
    assert "\n" not in str(e.value)


def test_study_names_that_are_not_file_names_are_refused(tiny_repro, tmp_path, prefect_harness):
    from flows.tune_asym import tune_asym
    from osr import OSRError

    with pytest.raises(OSRError, match="study_name: '../x' must be"):
        tune_asym(study_name="../x", n_trials=1, project_dir=str(tmp_path))


def test_resuming_an_rdb_study_fails_the_trials_of_a_dead_worker(tiny_repro, tmp_path, prefect_harness):
    """A worker SIGKILLed mid-trial leaves it RUNNING; with RDB storage its heartbeat stops, so the next run fails
    it."""
    from flows.tune_asym import make_storage, tune_asym

    proj = clone(tiny_repro, tmp_path / "proj")
    url = f"sqlite:///{tmp_path / 'hb.db'}"
    storage = make_storage(url, "hb", proj, heartbeat_interval=1)
    study = optuna.create_study(study_name="hb", storage=storage, direction="maximize")
    dead = study.ask()  # what a killed worker leaves: a RUNNING trial whose heartbeats stopped
    storage.record_heartbeat(dead._trial_id)
    time.sleep(2.5)
    report = tune_asym(study_name="hb", n_trials=1, storage=url, proxy_size=50, project_dir=str(proj),
                       heartbeat_interval=1)
    states = [t.state for t in _study(proj, "hb", url).trials]
    assert states == [TrialState.FAIL, TrialState.COMPLETE], states
    assert report["n_trials_by_state"] == {"COMPLETE": 1, "FAIL": 1}


@pytest.mark.parametrize("mode", ["single", "multi"])
def test_history_plot_names_the_metric_and_numbers_trials_in_integers(mode, tmp_path, monkeypatch):
    """No "Objective Value" and no 0.5-trial ticks in reports/tuning/<study>/history.png."""
    import shutil
    import warnings

    from matplotlib.figure import Figure

    from flows.tune_asym import metric_names, write_reports

    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    kw = {"directions": ["maximize"] * 2} if mode == "multi" else {"direction": "maximize"}
    study = optuna.create_study(study_name="p", **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(metric_names(mode))
    for i in range(3):
        t = study.ask()
        for k in ("tau", "threshold", "smoothing"):
            t.suggest_float(k, 0.1, 1.0)
        t.set_user_attr("val_acc", 0.5 + i / 10)
        t.set_user_attr("proxy_auroc", 0.6 + i / 10)
        study.tell(t, [0.5 + i / 10, 0.6 + i / 10] if mode == "multi" else 0.6 + i / 10)
    saved = {}
    monkeypatch.setattr(Figure, "savefig", lambda self, path, **kw: saved.setdefault(Path(path).name, self))
    report = write_reports(study, mode, tmp_path, {}, composed(["profile=tiny"]))
    assert report["metric_names"] == metric_names(mode)
    ax = saved["history.png"].axes[0]
    assert ax.get_ylabel() == "proxy AUROC"
    ticks = [x for x in ax.get_xticks() if ax.get_xlim()[0] <= x <= ax.get_xlim()[1]]
    assert ticks and all(float(x).is_integer() for x in ticks), ticks
    texts = []
    for fig in saved.values():
        for a in fig.axes:
            legend = a.get_legend()
            texts += [a.get_xlabel(), a.get_ylabel(), a.get_title(), *(legend.get_texts() if legend else [])]
    texts = [t if isinstance(t, str) else t.get_text() for t in texts]
    assert texts and not any("Objective Value" in s for s in texts), texts


def test_a_study_keeps_its_composition_and_refuses_another():
    """The study records the params.yaml its trials ran on, so its report can be rewritten from the storage alone;
    resuming it on another composition is refused naming the key, the keys a trial sets itself aside."""
    from flows.tune_asym import record_composition
    from osr import OSRError

    study, p = optuna.create_study(), composed()
    extra = {"proxy": {"source": "tinyimagenet-val"}, "search_space": {}}
    record_composition(study, p, extra)
    assert study.user_attrs["params"]["teacher"]["epochs"] == p.teacher.epochs
    assert study.user_attrs["report"] == extra
    record_composition(study, composed(["distill.tau=7.0", "relabel.threshold=0.2"]), extra)  # tuned keys
    with pytest.raises(OSRError, match=r"study 'no-name-\S+' ran on another params.yaml \(teacher.epochs differ\)"):
        record_composition(study, composed(["teacher.epochs=3"]), extra)


def test_run_best_writes_the_replays_test_metrics_beside_the_run_it_replaces(tiny_repro, tmp_path):
    """`-p run_best=true`: the best trial's `dvc exp run` runs in the workspace, and its test metrics land in
    reports/tuning/<study>/replay.json beside those of the run before it, with the command."""
    from flows.tune_asym import replay

    proj = clone(tiny_repro, tmp_path / "proj")
    before = json.loads((proj / "reports/metrics.json").read_text())
    cmd = ["dvc", "exp", "run", "-n", "s-best", "-S", "distill.tau=2.5"]
    assert replay(proj, "s", 3, cmd) == "reports/tuning/s/replay.json"
    written = json.loads((proj / "reports/tuning/s/replay.json").read_text())
    assert written["trial"] == 3 and written["command"] == shlex.join(cmd)
    assert written["metrics_before"] == before and written["metrics"] == json.loads(
        (proj / "reports/metrics.json").read_text())
    assert written["metrics"]["teacher"] == before["teacher"] and written["metrics"]["student"] != before["student"]
    assert load_params(proj / "params.yaml").distill.tau == 2.5
