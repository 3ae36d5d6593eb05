"""Prefect flow `tune-asym`: an Optuna study over the search space ``conf/search/asym.yaml`` (the params.yaml keys
it tunes and their ranges, the keys every trial fixes; ``osr.tuning.SearchSpace``).

The flow owns the study (ask/tell); each trial is a Prefect task running `osr.tuning.run_trial` in-process on
the pipeline's DVC outputs (cached teacher logits, plan, train/val split; never the test role; see
`osr/tuning.py` for the proxy unknowns). Objectives:

* ``mode="single"``: maximise proxy AUROC (MLS) + ``acc_weight`` x val accuracy (default 0); with
  ``min_val_acc`` > 0, accuracy is also an Optuna constraint (TPE ``constraints_func`` = ``min_val_acc - acc``
  from the trial's ``val_acc`` user attribute; feasible when <= 0, the best trial is the best feasible one).
  Epoch-level pruning (MedianPruner) via ``trial.report``.
* ``mode="multi"``: directions [maximize, maximize] over (val accuracy, proxy AUROC), no pruning; the
  "best" trial printed is the Pareto trial with the highest AUROC.

Storage: default a journal file ``reports/tuning/<study_name>.journal`` (multi-process safe, committed beside the
study's report so ``python -m flows.tune_report`` regenerates the report from it); a value with ``://``
is an SQLAlchemy URL (``sqlite:///...``, ``postgresql://...``), any other value a journal-file path. The study
is loaded if it exists, so re-running with the same name and storage resumes it; the sampler is
``TPESampler(seed=seed + <trials already in the study>)`` so a resumed run does not replay the first run's
random start-up points.
With an SQLAlchemy URL (RDB storage) every running trial sends a heartbeat each ``heartbeat_interval`` seconds,
and a flow run that opens the study first marks FAIL the RUNNING trials silent for two intervals (a SIGKILLed
worker's); other workers' live trials keep beating and are left alone. The journal storage has no heartbeat:
there a killed worker's trial stays RUNNING (it does not block the study, it is just never finished).

Before any trial the stages a trial reads must be up to date (``flows/freshness.py``, `dvc status`): a plan or
teacher cache older than ``params.yaml`` or the code is refused in one line naming the stage.

Writes: ``data/tune/<study>/trial_<n>/`` (per trial), ``reports/tuning/<study>.json``,
``reports/tuning/<study>/history.png``, ``reports/tuning/<study>/importances.png`` (only with >= 2 complete
trials): one report per study, so studies never overwrite each other. The report's ``best_command`` is the
`dvc exp run` of the best trial's whole config: DVC recomposes conf/'s defaults on every ``-S``, so it carries
every override from them (profile, benchmark, split, epochs, ...), not only the tuned keys.

In Prefect: every flow run publishes two artifacts (the run's Artifacts tab; the Artifacts page by key, one
version per run): a table ``<study>-trials`` (one row per trial: number, state, the tuned parameters, the
objective value(s), val_acc, proxy_auroc, error) and a markdown ``<study>-best`` (best trial, its values, its
``dvc exp run``). Each measured epoch of a trial is logged through the run logger, so it shows in the task run's
log in the UI. The study's metric names (``study.set_metric_names``: "proxy AUROC", or ["val accuracy",
"proxy AUROC"] in multi mode) label the plots and optuna-dashboard instead of "Objective Value".

Run: ``python -m flows.serve`` (or ``python flows/tune_asym.py``) then
``prefect deployment run tune-asym/local -p n_trials=20``.
"""

import argparse
import inspect
import json
import logging
import math
import re
import shlex
import subprocess
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import optuna
from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
from optuna.trial import TrialState
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

if __package__ in (None, ""):  # `python flows/tune_asym.py`: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cli.compose import hydra_value, leaves, overrides_for  # noqa: E402
from cli.tools import dvc_executable  # noqa: E402
from flows.freshness import require_current  # noqa: E402
from osr import OSRError, tuning  # noqa: E402
from osr.config import Params, get, validate  # noqa: E402
from osr.io import read_json, write_json  # noqa: E402
from osr.train import Pruned  # noqa: E402
from study.suite import cell_env  # noqa: E402

SEARCH = tuning.SearchSpace.load(Path(__file__).resolve().parents[1] / "conf" / "search" / "asym.yaml")
TUNED = {t.key: name for name, t in SEARCH.tuned.items()}  # params.yaml key -> Optuna parameter
FIXED = SEARCH.fixed  # what a trial sets besides the tuned keys
JOURNALS = Path("reports/tuning")  # default storage: a journal per study, beside its report
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MULTI_METRICS = ["val accuracy", "proxy AUROC"]  # the objectives of mode="multi", in study.values order


def metric_names(mode: str, acc_weight: float = 0.0) -> list[str]:
    """What the study's objective(s) measure: the names plots and optuna-dashboard show instead of
    "Objective Value"."""
    if mode == "multi":
        return list(MULTI_METRICS)
    return ["proxy AUROC" if acc_weight == 0 else f"proxy AUROC + {acc_weight:g} x val accuracy"]


def artifact_key(study_name: str, what: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) for the study: `tune-asym-trials`, ..."""
    slug = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", study_name.lower())).strip("-") or "study"
    return f"{slug}-{what}"


def _logger():
    try:
        return get_run_logger()
    except Exception:  # called outside a run (e.g. .fn in tests)
        return logging.getLogger("tune-asym")


def default_journal(study_name: str) -> Path:
    """The study's storage when none is named: its journal, beside its report (relative to the project)."""
    return JOURNALS / f"{study_name}.journal"


def make_storage(storage: str | None, study_name: str, project: Path, heartbeat_interval: int = 60):
    """A journal file by default; an SQLAlchemy URL gives RDB storage, whose running trials send heartbeats so a
    trial whose worker died (none for two intervals) is failed when a worker next opens the study. The journal
    has no heartbeat: such a trial stays RUNNING there until failed by hand (README)."""
    if storage is None:
        path = project / default_journal(study_name)
    elif "://" in storage:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(storage, heartbeat_interval=heartbeat_interval,
                                              grace_period=2 * heartbeat_interval)
    else:
        path = Path(storage) if Path(storage).is_absolute() else project / storage
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


@task(name="trial", cache_policy=NO_CACHE, task_run_name="trial-{number}")
def trial_task(td: tuning.TuneData, number: int, params: dict, trial_dir: str,
               trial: optuna.trial.Trial | None = None, acc_weight: float = 0.0) -> dict:
    """One trial; returns the result, or {'pruned': epoch} when the pruner stopped it.

    Every measured epoch goes to the run logger (the task's log in the Prefect UI, not only the serve terminal)."""
    log, epochs, t0 = _logger(), td.params.student.epochs, time.perf_counter()

    def on_epoch(metrics: dict, epoch: int) -> None:
        log.info("trial %d epoch %d/%d: %s (%.1fs)", number, epoch + 1, epochs,
                 " ".join(f"{k}={v:.4f}" for k, v in metrics.items()), time.perf_counter() - t0)
        if trial is None:
            return
        trial.report(tuning.objective_value(metrics, "single", acc_weight), epoch)
        if trial.should_prune():
            raise Pruned(f"pruned after epoch {epoch + 1}")

    try:
        return tuning.run_trial(td, SEARCH.settings(params), trial_dir, on_epoch)
    except Pruned as e:
        return {"pruned": str(e)}


def fail_stale_trials(study: optuna.Study, storage) -> list[int]:
    """Mark FAIL the RUNNING trials whose heartbeat stopped (RDB storage only); returns their numbers."""
    if not is_heartbeat_enabled(storage):
        return []
    running = {t.number for t in study.trials if t.state == TrialState.RUNNING}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return sorted(t.number for t in study.trials if t.number in running and t.state == TrialState.FAIL)


def _ask(study: optuna.Study) -> optuna.trial.Trial:
    with warnings.catch_warnings():  # Optuna warns that heartbeats are meant for optimize(); the flow runs them
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        return study.ask()


def _best(study: optuna.Study, mode: str) -> optuna.trial.FrozenTrial | None:
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not done:
        return None
    if mode == "multi":
        return max(study.best_trials, key=lambda t: (t.values[1], t.values[0]))
    feasible = [t for t in done if all(c <= 0 for c in t.system_attrs.get("constraints", [0.0]))]
    return max(feasible or done, key=lambda t: t.value)


def search_space() -> dict[str, list]:
    """The report's record of SEARCH: name -> [low, high, "log" or "uniform"]."""
    return {name: [t.low, t.high, "log" if t.log else "uniform"] for name, t in SEARCH.tuned.items()}


def trial_config(study_params: Params, trial_params: dict) -> Params:
    """The params.yaml a trial trains with: the study's, with the tuned and fixed keys set."""
    return tuning.trial_params(study_params, SEARCH.settings(trial_params))


def best_command(study_name: str, trial_params: dict, study_params: Params, conf_dir: Path) -> list[str]:
    """`dvc exp run` replaying the trial's whole config: every override from conf/'s defaults, tuned keys last."""
    cfg, keys = asdict(trial_config(study_params, trial_params)), SEARCH.keys()
    rest = [o for o in overrides_for(cfg, conf_dir) if o.lstrip("+~").split("=")[0] not in keys]
    tuned = [f"{k}={hydra_value(get(cfg, k))}" for k in keys]  # floats keep their dot: `4.0`, never the int 4
    return ["dvc", "exp", "run", "-n", f"{study_name}-best", *(a for o in rest + tuned for a in ("-S", o))]


IMPORTANCE_TRIALS = 20  # complete trials below which the importance figure says its ranking is only a hint


def write_reports(study: optuna.Study, mode: str, project: Path, extra: dict, study_params: Params) -> dict:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    from optuna.visualization import matplotlib as vis

    out = project / "reports" / "tuning" / study.study_name
    out.mkdir(parents=True, exist_ok=True)
    states = {s.name: sum(t.state == s for t in study.trials) for s in TrialState}
    best = _best(study, mode)
    names = study.metric_names or metric_names(mode)
    report = {"study_name": study.study_name, "mode": mode, "n_trials": len(study.trials),
              "n_trials_by_state": {k: v for k, v in states.items() if v},
              "best": None if best is None else {"number": best.number, "params": best.params,
                                                  "values": best.values, **best.user_attrs},
              "pareto": [{"number": t.number, "params": t.params, "values": t.values} for t in study.best_trials]
              if mode == "multi" else None,
              "metric_names": names,
              "trials": [{"number": t.number, "state": t.state.name, "params": t.params, "values": t.values}
                         for t in study.trials],
              "plots": [], **extra}
    if best is not None:
        report["best_command"] = shlex.join(best_command(study.study_name, best.params, study_params,
                                                         project / "conf"))
    # multi: plot the AUROC objective (values[1]) by name; single: the study's one metric name, not "Objective Value"
    target = {"target_name": names[0]} if mode == "single" else {"target": lambda t: t.values[1],
                                                                  "target_name": names[1]}
    n_done = states.get("COMPLETE", 0)
    plots = [("history.png", vis.plot_optimization_history, 1), ("importances.png", vis.plot_param_importances, 2)]
    for name, fn, need in plots:
        if n_done < need:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                ax = fn(study, **target)
            if name == "history.png":  # x = trial number: integer ticks, never 0.5
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            if name == "importances.png" and n_done < IMPORTANCE_TRIALS:
                fig.suptitle(f"from {n_done} complete trials (fewer than {IMPORTANCE_TRIALS}): the ranking is "
                             "not stable, read it as a hint", fontsize=9, color="C3")
            fig.savefig(out / name, dpi=100, bbox_inches="tight")
            plt.close(fig)
            report["plots"].append(str((out / name).relative_to(project)))
        except Exception as e:  # importances fail when no parameter varies; a plot never fails the study
            _logger().warning("tuning: %s skipped (%s: %s)", name, type(e).__name__, e)
    write_json(project / "reports" / "tuning" / f"{study.study_name}.json", report)
    return report


def _num(v, digits: int = 4):
    return None if v is None or not math.isfinite(v) else round(float(v), digits)


def trial_rows(study: optuna.Study) -> list[dict]:
    """One row per trial for the Prefect table artifact: number, state, the tuned params, the objective (single
    mode; multi's two values are val_acc and proxy_auroc), val_acc, proxy_auroc (None where not complete), error."""
    rows = []
    for t in study.trials:
        objective = {"objective": _num(t.value if t.values else None)} if len(study.directions) == 1 else {}
        rows.append({"number": t.number, "state": t.state.name,
                     **{k: _num(t.params.get(k)) for k in SEARCH.tuned}, **objective,
                     "val_acc": _num(t.user_attrs.get("val_acc")), "proxy_auroc": _num(t.user_attrs.get("proxy_auroc")),
                     "error": t.user_attrs.get("error")})
    return rows


def best_markdown(report: dict) -> str:
    """The markdown artifact: the study's counts, the best trial and the `dvc exp run` that replays it."""
    counts = ", ".join(f"{v} {k}" for k, v in report["n_trials_by_state"].items()) or "no trials"
    lines = [f"# Study `{report['study_name']}` ({report['mode']})", "", f"{report['n_trials']} trials: {counts}.", ""]
    best = report.get("best")
    if best is None:
        return "\n".join(lines + ["No complete trial yet."]) + "\n"
    names = report.get("metric_names") or [f"value {i}" for i in range(len(best["values"]))]
    lines += [f"## Best trial {best['number']}", "", "| | value |", "|---|---|",
              *(f"| {k} | {v:.4g} |" for k, v in best["params"].items()),
              *(f"| {n} | {v:.4f} |" for n, v in zip(names, best["values"], strict=True)), "",
              "Replay it through the pipeline (test metrics from `evaluate`):", "", "```bash",
              report["best_command"], "```", "",
              f"Report: `reports/tuning/{report['study_name']}.json`"]
    if report.get("pareto"):
        lines += ["", f"Pareto front ({' / '.join(names)}): " + ", ".join(
            f"trial {p['number']} ({' / '.join(f'{v:.4f}' for v in p['values'])})" for p in report["pareto"])]
    return "\n".join(lines) + "\n"


def publish_artifacts(study: optuna.Study, report: dict) -> dict[str, str]:
    """The trials table and the best command as Prefect artifacts (the flow run's Artifacts tab, and the
    Artifacts page under their keys); returns {kind: key}. An API error is logged, never fails the study."""
    keys = {"trials": artifact_key(study.study_name, "trials"), "best": artifact_key(study.study_name, "best")}
    try:
        create_table_artifact(trial_rows(study), key=keys["trials"],
                              description=f"Optuna study {study.study_name}: every trial ({report['mode']} mode)")
        create_markdown_artifact(best_markdown(report), key=keys["best"],
                                 description=f"Optuna study {study.study_name}: best trial and its dvc exp run")
    except Exception as e:  # noqa: BLE001  (the reports on disk are written already)
        _logger().warning("tune-asym: artifacts not created (%s: %s)", type(e).__name__, e)
        return {}
    return keys


def open_study(study_name: str, store, mode: str, acc_weight: float, min_val_acc: float,
               seed: int) -> optuna.Study:
    """The study `study_name` in `store`, created or loaded, with its metric names and a TPE sampler seeded past
    the trials it holds (a resumed run does not replay the first run's start-up points)."""
    kw = {"directions": ["maximize", "maximize"]} if mode == "multi" else {"direction": "maximize"}
    study = optuna.create_study(study_name=study_name, storage=store, load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=seed), **kw)
    names = metric_names(mode, acc_weight)
    if study.metric_names != names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
    constraints = (lambda t: [min_val_acc - t.user_attrs.get("val_acc", 0.0)]) if min_val_acc > 0 else None
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials), constraints_func=constraints)
    return study


def record_composition(study: optuna.Study, study_params: Params, extra: dict) -> None:
    """Keep in the study the params.yaml its trials run on and the report's proxy and search space, so the report
    can be rewritten from the storage alone (`flows.tune_report`); a study resumed on another composition (the
    keys a trial sets aside) is refused, naming the keys that differ."""
    current = json.loads(json.dumps(asdict(study_params)))
    recorded = study.user_attrs.get("params")
    if recorded is None:
        study.set_user_attr("params", current)
        study.set_user_attr("report", extra)
        return
    was, now = dict(leaves(recorded)), dict(leaves(current))
    differ = sorted(k for k in was.keys() | now.keys()
                    if was.get(k) != now.get(k) and k not in SEARCH.keys())
    if differ:
        raise OSRError(f"study {study.study_name!r} ran on another params.yaml ({', '.join(differ[:5])} differ): "
                       "name a new study, or restore the params it ran on")


def study_report(study: optuna.Study, project: Path) -> dict:
    """Rewrite the study's reports from what its storage records (`record_composition`)."""
    if "params" not in study.user_attrs:
        raise OSRError(f"study {study.study_name!r}: its storage does not record the params.yaml its trials ran on")
    mode = "multi" if len(study.directions) > 1 else "single"
    params = study.user_attrs["params"]
    return write_reports(study, mode, project, {**study.user_attrs["report"], "params": params}, validate(params))


def run_one_trial(study: optuna.Study, store, td: tuning.TuneData, study_dir: Path, mode: str,
                  acc_weight: float) -> None:
    """Ask the study for a point of SEARCH, train and measure it (a Prefect task) and tell the study: COMPLETE
    with its objective value(s), PRUNED, or FAIL with the error (a raising or diverging trial fails alone)."""
    log, trial = _logger(), _ask(study)
    try:
        params = {name: trial.suggest_float(name, t.low, t.high, log=t.log) for name, t in SEARCH.tuned.items()}
        with get_heartbeat_thread(trial._trial_id, store):  # no-op without RDB heartbeats
            res = trial_task(td, trial.number, params, str(study_dir / f"trial_{trial.number}"),
                             trial if mode == "single" else None, acc_weight)
    except Exception as e:  # noqa: BLE001  (recorded on the trial; the study goes on)
        trial.set_user_attr("error", f"{type(e).__name__}: {e}")
        study.tell(trial, state=TrialState.FAIL)
        log.warning("trial %d failed: %s: %s", trial.number, type(e).__name__, e)
        return
    if "pruned" in res:
        study.tell(trial, state=TrialState.PRUNED)
        log.info("trial %d %s", trial.number, res["pruned"])
        return
    values = tuning.objective_value(res, mode, acc_weight)
    if not all(math.isfinite(v) for v in (values if isinstance(values, list) else [values])):
        trial.set_user_attr("error", "non-finite objective")
        study.tell(trial, state=TrialState.FAIL)
        return
    for k in ("val_acc", "proxy_auroc", "proxy_oscr", "hard_fraction", "seconds"):
        trial.set_user_attr(k, res[k])
    study.tell(trial, values)
    log.info("trial %d: val_acc=%.4f proxy_auroc=%.4f (%.1fs)", trial.number, res["val_acc"], res["proxy_auroc"],
             res["seconds"])


@flow(name="tune-asym", log_prints=True)
def tune_asym(study_name: str = "tune-asym", n_trials: int = 20, storage: str | None = None,
              mode: Literal["single", "multi"] = "single", acc_weight: float = 0.0, min_val_acc: float = 0.0,
              proxy_size: int = 500, seed: int = 0, project_dir: str = ".", run_best: bool = False,
              heartbeat_interval: int = 60) -> dict:
    """Run `n_trials` more trials of study `study_name` (created or resumed) and write the tuning reports."""
    if mode not in ("single", "multi"):
        raise OSRError(f"mode: must be 'single' or 'multi' (got {mode!r})")
    if not STUDY_NAME.fullmatch(study_name):
        raise OSRError(f"study_name: {study_name!r} must be letters, digits, '.', '_' or '-' (it names files)")
    log = _logger()
    project = Path(project_dir).resolve()
    require_current(project, set(SEARCH.keys()))
    store = make_storage(storage, study_name, project, heartbeat_interval)
    study = open_study(study_name, store, mode, acc_weight, min_val_acc, seed)
    stale = fail_stale_trials(study, store)
    if stale:
        log.warning("tune-asym: trials %s had no heartbeat for %d s (worker gone): marked FAIL", stale,
                    2 * heartbeat_interval)
    n_before = len(study.trials)
    td = tuning.load_tune_data(project, proxy_size, seed)
    log.info("tune-asym: study %r has %d trials; running %d more (proxy: %d %s images)", study_name, n_before,
             n_trials, len(td.proxy), td.proxy_info["source"])
    record_composition(study, td.params, {"proxy": {k: v for k, v in td.proxy_info.items()
                                                     if k != "classes_excluded"},
                                           "search_space": search_space()})
    for _ in range(n_trials):
        run_one_trial(study, store, td, project / tuning.TUNE_DIR / study_name, mode, acc_weight)
    report = study_report(study, project)
    report["artifacts"] = publish_artifacts(study, report)
    best = _best(study, mode)
    if best is None:
        log.warning("tune-asym: no complete trial yet")
        return report
    cmd = best_command(study_name, best.params, td.params, project / "conf")
    print(f"best trial {best.number} {json.dumps(best.params)} -> {best.values}")
    print(shlex.join(cmd))
    if run_best:
        report["replay"] = replay(project, study_name, best.number, cmd)
    return report


def replay(project: Path, study_name: str, number: int, cmd: list[str]) -> str:
    """Run the best trial's `dvc exp run` in the workspace and write `reports/tuning/<study>/replay.json`: its test
    metrics beside those of the workspace's run before it (the recipe it would replace), with the command."""
    metrics = project / "reports" / "metrics.json"
    before = read_json(metrics) if metrics.is_file() else None
    # this environment's dvc and python, as the suite's cells run: make serve does not put .venv/bin on PATH
    res = subprocess.run([dvc_executable(), *cmd[1:]], cwd=project, check=False, env=cell_env(project))
    if res.returncode != 0:
        raise OSRError(f"{' '.join(cmd)} failed with exit status {res.returncode}")
    out = project / "reports" / "tuning" / study_name / "replay.json"
    write_json(out, {"study_name": study_name, "trial": number, "command": shlex.join(cmd),
                     "metrics": read_json(metrics), "metrics_before": before})
    return str(out.relative_to(project))


SERVE_USAGE = """Serve the `tune-asym/local` deployment (runs flow runs as local subprocesses, no work pool).

    prefect server start --host 127.0.0.1 --port 4200 --analytics-off     # another terminal
    export PREFECT_API_URL=http://127.0.0.1:4200/api
    python -m flows.serve
    prefect deployment run tune-asym/local -p n_trials=20 --watch
"""


def flow_parameters() -> str:
    """The flow's parameters as `-p name=value` takes them: name, type and default, from its signature."""
    sig = inspect.signature(tune_asym.fn)
    def kind(a) -> str:
        return a.__name__ if isinstance(a, type) else str(a).replace("typing.", "")
    rows = [f"  {n:<20} {kind(p.annotation):<28} default {p.default!r}" for n, p in sig.parameters.items()]
    return "flow parameters (prefect deployment run tune-asym/local -p name=value):\n" + "\n".join(rows)


def serve_local(prog: str) -> None:
    """The serving command line of `python -m flows.serve` and `python -m flows.tune_asym`: `--help` answers
    without serving, and lists the flow's parameters."""
    argparse.ArgumentParser(prog=prog, description=SERVE_USAGE, epilog=flow_parameters(),
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    tune_asym.serve(name="local")


if __name__ == "__main__":  # the same as `python -m flows.serve`: serves the flow of the module flows.tune_asym
    from flows.tune_asym import serve_local as serve_module_flow
    serve_module_flow("python -m flows.tune_asym")
