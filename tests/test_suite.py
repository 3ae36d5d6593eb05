"""The benchmark-grid runner: recipe, variant, seed and split grammar, the cells' environment (the queue itself runs
in test_report)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from osr import OSRError
from osr.paths import MIRROR_ENV
from study.grid import SUITES, VARIANTS, Cell, grid, parse_name, recipe_overrides
from study.suite import cell_env, parse_ints, parse_queue_status, study_cells


def test_recipes_map_to_parameter_overrides():
    assert recipe_overrides("asym-cutmix") == ["distill.method=asym", "augment.method=cutmix"]
    assert recipe_overrides("movr-none@movr") == ["distill.method=movr", "augment.method=none", "teacher.loss=movr"]
    assert recipe_overrides("asym-cutmix+no_jmi+tau4") == ["distill.method=asym", "augment.method=cutmix",
                                                           "distill.jmi=0", "distill.tau=4"]
    with pytest.raises(OSRError, match="recipe 'asym'"):
        recipe_overrides("asym")
    with pytest.raises(OSRError, match="unknown variant 'no_such'"):
        recipe_overrides("asym-cutmix+no_such")


def test_splits_seeds_and_grid():
    assert parse_ints("0-4") == [0, 1, 2, 3, 4] and parse_ints("1,3") == [1, 3]
    with pytest.raises(OSRError, match="--seeds '2..3'"):
        parse_ints("2..3", "--seeds")
    cells = grid("quick", ["cifar10", "mnist"], [0, 1], SUITES["quick"] + ["movr-none@movr"])
    names = [c.name for c in cells]
    assert len(cells) == 16 and len(set(names)) == 16
    assert Cell("quick", "mnist", 1, "asym-cutmix") in cells
    assert Cell("quick", "mnist", 1, "asym-cutmix").overrides == [
        "profile=quick", "benchmark=mnist", "split.index=1", "distill.tau=1.0", "relabel.rule=threshold",
        "student.init=''", "distill.noise_exposure=0.0",  # the shipped AD variant undone first
        "distill.method=asym", "augment.method=cutmix"]
    assert "quick-cifar10-s0-movr-none-tmovr" in names
    assert [(c.benchmark, c.split) for c in cells[:4]] == [("cifar10", 0), ("cifar10", 1), ("mnist", 0), ("mnist", 1)]
    seeded = grid("claims", ["cifar10"], [0], ["asym-cutmix+no_le"], [230, 231])
    assert [c.name for c in seeded] == ["claims-cifar10-s0-asym-cutmix+no_le",
                                        "claims-cifar10-s0-asym-cutmix+no_le-r231"]
    assert "base.seed=231" in seeded[1].overrides and "distill.easy=0" in seeded[1].overrides


def test_every_name_parses_back_to_its_cell():
    cells = grid("claims", ["cifar10", "tinyimagenet"], [0, 4],
                 ["ce-none", "movr-none@movr", *(f"asym-cutmix+{v}" for v in VARIANTS), "asym-cutmix+mixed_ce+no_le"],
                 [230, 232])
    assert all(parse_name(c.name) == c for c in cells)
    assert parse_name("tau4") is None and parse_name("quick-cifar10-s0") is None


def test_the_report_counts_suite_cells_and_not_ad_hoc_experiments():
    from study.grid import NAME_PATTERN as SUITE_NAMES

    names = [c.name for c in grid("paper", ["cifar_plus10", "tinyimagenet"], [0, 4],
                                  ["asym-gradmix", "movr-none@movr", "asym-cutmix+tau4"], [230, 231])]
    assert all(re.search(SUITE_NAMES, n) for n in names)
    assert not any(re.search(SUITE_NAMES, n) for n in ["tau4", "asym-e8", "quick-cifar10-s0"])


def test_pool_grid_trains_each_teacher_once_then_seeds_the_other_cells_from_it():
    from flows.suite_pool import cell_key, stages_of, waves

    cells = grid("tiny", ["cifar10"], [0, 1], ["ce-none", "asym-cutmix", "asym-cutmix+t_w32", "movr-none@movr"])
    first, rest = waves(cells)
    assert [c.name for c, t in first] == ["tiny-cifar10-s0-ce-none", "tiny-cifar10-s1-ce-none",
                                          "tiny-cifar10-s0-asym-cutmix+t_w32", "tiny-cifar10-s1-asym-cutmix+t_w32",
                                          "tiny-cifar10-s0-movr-none-tmovr", "tiny-cifar10-s1-movr-none-tmovr"]
    assert all(t is None for _, t in first)
    assert [(c.name, t) for c, t in rest] == [("tiny-cifar10-s0-asym-cutmix", "tiny-cifar10-s0-ce-none"),
                                              ("tiny-cifar10-s1-asym-cutmix", "tiny-cifar10-s1-ce-none")]
    assert waves(cells[:2]) == [[(cells[0], None), (cells[1], None)]]  # no shared teacher: one wave
    assert cell_key("claims-cifar10-s0-asym-cutmix+no_jmi-r231") == "cell-claims-cifar10-s0-asym-cutmix-no-jmi-r231"
    log = ("Stage 'check_params' didn't change, skipping\nPulling data for stage: 'train_teacher'\n"
           "Stage 'download' is cached - skipping run, checking out outputs\nRunning stage 'distill':\n")
    assert stages_of(log) == {"ran": ["distill"], "from_run_cache": ["download"], "pulled": ["train_teacher"]}


def test_workers_are_topped_up_only_when_cells_wait_and_too_few_run():
    from study.suite import short_of_workers
    assert short_of_workers({"a": "Running", "b": "Queued"}, workers=1, jobs=2)
    assert short_of_workers({"a": "Success", "b": "Queued"}, workers=0, jobs=1)
    # `dvc queue status` saw one worker, but two cells run: no third worker
    assert not short_of_workers({"a": "Running", "b": "Running", "c": "Queued"}, workers=1, jobs=2)
    assert not short_of_workers({"a": "Running", "b": "Success"}, workers=0, jobs=2)  # nothing waits


def test_live_workers_are_the_running_queue_worker_processes_named_by_dvcs_pid_files(tmp_path):
    from study.suite import WORKER_PIDS, live_workers
    pids = tmp_path / WORKER_PIDS
    pids.mkdir(parents=True)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "exp", "queue-worker"])
    exited = subprocess.Popen([sys.executable, "-c", "pass", "queue-worker"])
    exited.wait()
    try:
        for name, text in {"1": worker.pid, "2": exited.pid, "3": os.getpid(), "4": "not a pid"}.items():
            (pids / f"dvc-exp-worker-{name}.pid").write_text(str(text))  # 3: alive, but no worker
        assert live_workers(tmp_path) == [worker.pid]
    finally:
        worker.kill()
        worker.wait()
    assert live_workers(tmp_path) == []


def test_cells_run_with_this_interpreter_first_on_path_and_an_absolute_mirror(tmp_path, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, "mirror")
    env = cell_env(tmp_path)
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert env[MIRROR_ENV] == str((tmp_path / "mirror").resolve())


def test_a_cell_queued_again_after_a_killed_attempt_reads_as_queued_not_failed():
    text = """Task     Name                                   Created    Status
2008911  claims-tinyimagenet32-s0-ce-none      12:45 PM   Queued
7b25d06  claims-tinyimagenet32-s0-ce-none      11:49 AM   Failed
68cdbb4  claims-cifar10-s0-kd-cutmix+tau4      11:43 AM   Running
943a8af  claims-cifar10-s0-ce-mixup            11:43 AM   Success

Worker status: 1 active, 2 idle"""
    states, workers = parse_queue_status(text)
    assert states == {"claims-tinyimagenet32-s0-ce-none": "Queued", "claims-cifar10-s0-kd-cutmix+tau4": "Running",
                      "claims-cifar10-s0-ce-mixup": "Success"} and workers == 3


def test_a_queue_status_that_keeps_failing_stops_the_grid_with_one_line(tmp_path):
    from study.suite import queue_state_retried
    with pytest.raises(OSRError, match="dvc queue status"):
        queue_state_retried(tmp_path, tries=2, pause=0.0)  # not a DVC repository: fails every time


def test_a_poll_that_is_not_positive_is_refused_before_anything_is_queued(tmp_path, capsys):
    from study.suite import main
    assert main(["--poll", "0", "--repo", str(tmp_path)]) != 0
    assert "--poll 0.0: expected a positive number of seconds" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_the_confirmatory_grid_runs_every_recipe_on_every_held_out_partition_two_partitions_at_a_time():
    cells = study_cells(Path("conf/study/confirmatory.yaml"), jobs=2)
    parts = [(c.benchmark, c.split) for c in cells]
    assert len(cells) == 45 and len(set(cells)) == 45 and {c.profile for c in cells} == {"claims"}
    assert set(parts) == {("cifar10", s) for s in range(5, 10)} | {("tinyimagenet32", s) for s in range(1, 5)}
    # workers side by side: the first two cells train the teachers of two partitions, which finish before the next
    assert parts[:2] == [("cifar10", 5), ("cifar10", 6)] and set(parts[:10]) == {("cifar10", 5), ("cifar10", 6)}


def test_a_study_file_without_its_grid_is_refused_in_one_line(tmp_path):
    bad = tmp_path / "study.yaml"
    bad.write_text("profile: claims\n")
    with pytest.raises(OSRError, match=r"study\.yaml: a study file needs the keys profile, partitions, recipes$"):
        study_cells(bad, jobs=2)
    bad.write_text("profile: claims\npartitions: [cifar10]\nrecipes: [ce-none]\n")
    with pytest.raises(OSRError, match=r"study\.yaml: partitions must map benchmarks to lists of splits"):
        study_cells(bad, jobs=2)


def test_the_ablation_grid_comes_from_conf_study():
    from study.suite import ablation_cells
    names = [c.name for c in ablation_cells()]
    # 4 noise recipes x 3 seeds, then 31 recipes at one seed, asym-cutmix+tau4 (a noise recipe too) once
    assert len(names) == len(set(names)) == 4 * 3 + 30
    assert names[:3] == [f"claims-cifar10-s0-ce-none{s}" for s in ("", "-r231", "-r232")]
    assert "claims-cifar10-s0-asym-cutmix+tau4+all_hard+s_e160" in names
    assert all(recipe_overrides(r) for recipes in SUITES.values() for r in recipes)  # every suite recipe parses


def test_a_bad_study_file_is_a_one_line_error_naming_it(tmp_path):
    from study.claims import load_claims
    bad = tmp_path / "claims.yaml"
    bad.write_text("claims:\n  - {id: x, metric: acc}\n")
    with pytest.raises(OSRError, match=r"claims\.yaml: a claim needs id, text, metric, a, b"):
        load_claims(bad)
    bad.write_text("claims: [\n")
    with pytest.raises(OSRError, match=r"claims\.yaml: not valid YAML \(while parsing"):
        load_claims(bad)


def test_a_grid_skips_the_cells_archived_in_the_repository(tmp_path):
    from study.suite import archived_names
    (tmp_path / "reports" / "experiments").mkdir(parents=True)
    (tmp_path / "reports" / "experiments" / "claims-cifar10-s5-ce-none.json").write_text("{}")
    assert archived_names(tmp_path) == {"claims-cifar10-s5-ce-none"}
    assert archived_names(tmp_path / "elsewhere") == set()
