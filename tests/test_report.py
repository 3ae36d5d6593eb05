"""The benchmark-suite report: parsing `dvc exp show --json`, aggregates, markdown, figures and `study.report`."""
import json
import re
import sys

import pytest

from conftest import clone, needs_mirror, sh
from osr.machine import cpu_name
from study.aggregate import aggregate, run_time
from study.experiments import archive_record, rows_from_archive, rows_from_exp_show
from study.figures import jacobian_scatter, two_sides_figure
from study.suite_page import ANCHORS, run_time_lines, suite_markdown

SPLITS = (0, 2, 3)  # CIFAR-10 splits of distinct classes: split 1 holds split 0's (study/partitions.py)


def metrics(acc, auroc, oscr, *, profile="quick", benchmark="cifar10", split=0, method="ce", mixing="none",
            teacher_acc=0.9):
    role = {"test": {"acc": acc, "mls": {"auroc": auroc, "oscr": oscr}}, "val": {"class_separation": 0.5},
            "jacobian": {"jnd": 0.5, "known_mean": 7.0, "unknown_mean": 7.5}}
    teacher = {"test": {"acc": teacher_acc, "mls": {"auroc": 0.8, "oscr": 0.7}}}
    return {"info": {"benchmark": benchmark, "split": split, "profile": profile, "method": method, "mixing": mixing},
            "student": role, "teacher": teacher}


def experiment(name, m, params=None, executor=None):
    data = {"params": {"params.yaml": {"data": params or {}}},
            "metrics": {"reports/metrics.json": {"data": m}} if m else {}}
    return {"name": name, "executor": executor, "revs": [{"rev": "f" * 40, "name": name, "data": data}]}


def exp_show(*experiments, older=()):
    """The shape of `dvc exp show --json --all-commits`: workspace, HEAD with its experiments, older commits."""
    baseline = {"rev": "c" * 40, "name": "master", "data": {"metrics": {"reports/metrics.json": {"data": metrics(
        0.5, 0.5, 0.4)}}}, "experiments": list(experiments)}
    workspace = {"rev": "workspace", "name": None, "data": baseline["data"], "experiments": None}
    return [workspace, baseline, {"rev": "d" * 40, "name": None, "experiments": list(older)}]


def test_rows_skip_commits_unfinished_experiments_and_duplicate_names():
    shown = exp_show(experiment("a", metrics(0.8, 0.7, 0.6), {"teacher": {"loss": "movr"}}),
                     experiment("queued", None, executor={"state": "queued"}),
                     experiment("running", metrics(0.1, 0.1, 0.1), executor={"state": "running"}),
                     experiment("no-info", {"student": {}}),
                     older=[experiment("a", metrics(0.1, 0.1, 0.1)), experiment("old", metrics(0.7, 0.6, 0.5))])
    rows = rows_from_exp_show(shown)
    assert [r["name"] for r in rows] == ["a", "old"]
    assert rows[0]["metrics"]["student"]["test"]["acc"] == 0.8  # the newest baseline's "a" wins
    assert rows[0]["teacher_loss"] == "movr" and rows[1]["teacher_loss"] == "ce"


def test_aggregate_mean_and_sample_std_over_splits():
    splits = [experiment(f"s{s}", metrics(acc, 0.7, 0.6, split=s, teacher_acc=acc))
              for s, acc in zip(SPLITS, (0.80, 0.84, 0.88))]
    solo = experiment("solo", metrics(0.5, 0.6, 0.4, mixing="cutmix", method="asym"))
    rows = rows_from_exp_show(exp_show(*splits, solo))
    agg = aggregate(rows)
    plain, ad = agg["groups"]
    assert plain["recipe"] == "plain (ce) + none" and ad["recipe"] == "AD (asym) + cutmix"
    assert plain["acc"]["mean"] == pytest.approx(84.0) and plain["acc"]["std"] == pytest.approx(4.0)  # ddof=1
    by_split = plain["auroc_mls"].pop("by_split")
    assert plain["auroc_mls"] == pytest.approx({"mean": 70.0, "std": 0.0, "n": 3})
    assert by_split == pytest.approx({"0": 70.0, "2": 70.0, "3": 70.0})
    assert plain["n"] == 3 and plain["splits"] == [0, 2, 3] and plain["partitions"] == 3
    assert ad["n"] == 1 and ad["acc"].pop("by_split") == pytest.approx({"0": 50.0})
    assert ad["acc"] == pytest.approx({"mean": 50.0, "std": 0.0, "n": 1})
    teacher, = agg["teachers"]  # "solo" shares split 0 with "s0": one teacher, counted once
    assert teacher["n"] == 3 and teacher["acc"]["mean"] == pytest.approx(84.0)


def test_markdown_shows_anchors_and_names_the_profile_in_every_cell():
    paper = metrics(0.9, 0.8, 0.7, profile="paper", benchmark="tinyimagenet")
    kd = metrics(0.9, 0.8, 0.7, benchmark="mnist", method="kd", mixing="mixup")
    rows = rows_from_exp_show(exp_show(experiment("q", metrics(0.8, 0.7, 0.6)), experiment("p", paper),
                                              experiment("m", kd)))
    md = suite_markdown(rows, aggregate(rows), "a test")
    for anchors in ANCHORS.values():
        for bench in ("mnist", "cifar10", "tinyimagenet"):
            assert f"{anchors[bench]:.1f}" in md
    anchor_row = ("| MLS (Vaze et al.) AUROC (published, VGG32, 5 splits) "
                  "| – / 99.3 / – | – / 93.6 / – | – / 83.0 / – |")
    assert anchor_row in md
    table = md.split("## Student and teacher")[1].split("##")[0]
    cells = [c.strip() for line in table.splitlines() if line.startswith("| ") and "published" not in line
             and not line.startswith("| method") for c in line.strip("|").split("|")[1:]]
    filled = [c for c in cells if c != "–"]
    assert len(filled) == 6  # 3 students + 3 teachers
    assert all(re.search(r"\(n=1, (quick|paper)\)$", c) for c in filled), filled
    assert "80.0 / 70.0 / 60.0 (n=1, quick)" in md and "± 0.0" not in md and "KD + mixup" in md
    assert "(n=1, paper)" in md


@pytest.mark.parametrize("mixed_acc,mixed_auroc,words", [(0.90, 0.60, ("raised closed-set acc", "lowered AUROC")),
                                                         (0.70, 0.80, ("lowered closed-set acc", "raised AUROC"))])
def test_two_sides_reading_follows_the_numbers(mixed_acc, mixed_auroc, words):
    rows = rows_from_exp_show(exp_show(
        experiment("plain", metrics(0.8, 0.7, 0.6)),
        experiment("mix", metrics(mixed_acc, mixed_auroc, 0.5, mixing="cutmix")),
        experiment("ad", metrics(0.8, 0.75, 0.6, mixing="cutmix", method="asym"))))
    reading = suite_markdown(rows, aggregate(rows), "a test").split("## Two sides")[1].split("##")[0]
    assert all(w in reading for w in words), reading
    assert "AD (asym) + cutmix instead of plain (ce) + cutmix" in reading
    assert f"AUROC (MLS) by {abs(75 - 100 * mixed_auroc):.1f} pt" in reading


def test_figures_are_pngs(tmp_path):
    rows = rows_from_exp_show(exp_show(experiment("a", metrics(0.8, 0.7, 0.6)),
                                              experiment("b", metrics(0.8, 0.75, 0.6, mixing="cutmix", method="asym")),
                                              experiment("c", metrics(0.7, 0.6, 0.5, benchmark="mnist", method="kd"))))
    two_sides_figure(aggregate(rows), tmp_path / "two.png")
    jacobian_scatter(rows, tmp_path / "jac.png")
    for png in ("two.png", "jac.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def report_command(proj, check=True):
    return sh([sys.executable, "-m", "study.report"], proj, check=check)


@needs_mirror
@pytest.mark.slow
def test_report_from_two_real_experiments(tiny_repro, tmp_path):
    """`make suite` on the tiny profile: two queued cells through study.suite, a resumed rerun, then the report."""
    proj = clone(tiny_repro, tmp_path / "proj")
    suite = [sys.executable, "-m", "study.suite", "--profile", "tiny", "--splits", "0",
             "--recipes", "ce-none,asym-cutmix,asym-cutmix+no_jmi"]
    assert "queueing 3" in sh(suite, proj).stdout
    broker = proj / ".dvc/tmp/exps/celery/broker/processed"  # the workers' control messages are cleaned away
    assert list(broker.glob("*.celery.msg")) and not list(broker.glob("*.pidbox.msg"))
    assert "3 already finished or queued, queueing 0" in sh(suite, proj).stdout
    a, b, c = "tiny-cifar10-s0-ce-none", "tiny-cifar10-s0-asym-cutmix", "tiny-cifar10-s0-asym-cutmix+no_jmi"
    assert "suite.md" in report_command(proj).stdout
    archive = {p.stem: json.loads(p.read_text()) for p in (proj / "reports/experiments").glob("*.json")}
    assert set(archive) == {a, b, c} and "-S 'distill.jmi=0'" in archive[c]["reproduce"]
    ad, no_jmi = (archive[n]["metrics"]["student"]["test"]["mls"]["auroc"] for n in (b, c))
    assert ad != no_jmi  # the ablation switch reached the student
    claims = {x["id"]: x for x in json.loads((proj / "reports/claims.json").read_text())["claims"]}
    jmi = claims["ablate-jmi-costs-auroc"]  # one seed each, no noise measured; the claim's line predates the cells
    assert jmi["n"] == 1 and jmi["ci95"] is None and jmi["verdict"] == jmi["verdict_holm"] == "noise not measured"
    assert jmi["family"] == "exploratory" and jmi["launched_after_registration"] and jmi["registered"]
    ablation = (proj / "reports/ablation.md").read_text()
    assert "Best AD variant: **`asym-cutmix" in ablation and "`asym-cutmix+no_jmi` | 1 |" in ablation
    assert (proj / "reports/ablation/tiny-cifar10-s0.png").read_bytes()[:4] == b"\x89PNG"
    md = (proj / "reports/suite.md").read_text()
    assert md.index("## Claims") < md.index("## Student and teacher")
    exp_rows = {line.split("|")[1].strip(): line for line in md.split("## Experiments")[1].splitlines()
                if line.startswith(f"| {a} ") or line.startswith(f"| {b} ")}
    assert set(exp_rows) == {a, b}
    assert "plain (ce) + none" in exp_rows[a] and "AD (asym) + cutmix" in exp_rows[b]
    for line in exp_rows.values():
        acc, auroc, oscr = (float(c) for c in line.strip("|").split("|")[5:8])
        assert all(0.0 <= v <= 100.0 for v in (acc, auroc, oscr))
    assert "(n=1, tiny)" in md and "93.6" in md
    cpu = re.escape(cpu_name())  # the Run time section, from the run statistics the cells recorded
    assert re.search(rf"- tiny / cifar10, (bf16|fp32), {cpu}, \d+ threads?: teacher [\d.]+ min \(1 run\); "
                     rf"student [\d.]+ min \([\d.]+–[\d.]+, 3 runs\)\.", md), md.split("## Run time")[1]
    agg = json.loads((proj / "reports/suite.json").read_text())
    assert {g["recipe"] for g in agg["groups"]} == {"plain (ce) + none", "AD (asym) + cutmix",
                                                    "AD (asym) + cutmix [no_jmi]"}
    assert [t["n"] for t in agg["teachers"]] == [1]  # both share split 0's teacher
    for png in ("two_sides.png", "jacobian_auroc.png"):
        data = (proj / "reports/suite" / png).read_bytes()
        assert len(data) > 1000 and data[:4] == b"\x89PNG"


@needs_mirror
@pytest.mark.slow
def test_report_without_experiments_is_a_one_line_error(tiny_repro, tmp_path):
    proj = clone(tiny_repro, tmp_path / "proj")  # the baseline commit has metrics, but no experiment
    res = report_command(proj, check=False)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        "error: no finished experiments found by `dvc exp show` or in reports/experiments; run `make suite` first"]
    assert not (proj / "reports/suite.md").exists()


def two_sides_section(*experiments) -> str:
    """The "Two sides" section of the suite.md that `experiments` (exp-show entries) give."""
    rows = rows_from_exp_show(exp_show(*experiments))
    return suite_markdown(rows, aggregate(rows), "a test").split("## Two sides")[1].split("##")[0]


def test_two_sides_reading_pairs_the_splits():
    """Splits differ in difficulty: the reading gives the per-split (paired) differences and their agreement."""
    plain = [experiment(f"p{i}", metrics(acc, 0.70 + i / 100, 0.5, split=SPLITS[i]))
             for i, acc in enumerate((0.8, 0.9, 0.7))]
    mixed = [experiment(f"m{i}", metrics(acc + 0.01, 0.68 + i / 100, 0.5, split=SPLITS[i], mixing="cutmix"))
             for i, acc in enumerate((0.8, 0.9, 0.7))]
    reading = two_sides_section(*plain, *mixed)
    assert ("raised closed-set acc by 1.0 pt (80.0 → 81.0; paired over 3 splits: +1.0 ± 0.0, higher on 3/3)"
            in reading)
    assert "lowered AUROC (MLS) by 2.0 pt (71.0 → 69.0; paired over 3 splits: -2.0 ± 0.0, lower on 3/3)" in reading


def test_an_unchanged_mean_reads_how_the_splits_split():
    """A mean change under 0.05 pt has no direction: the reading counts the splits on each side, not 0/n."""
    plain = [experiment(f"p{s}", metrics(0.8, 0.70, 0.5, split=s)) for s in SPLITS]
    mixed = [experiment(f"m{s}", metrics(0.8, auroc, 0.5, split=s, mixing="cutmix"))
             for s, auroc in zip(SPLITS, (0.71, 0.695, 0.695))]
    reading = two_sides_section(*plain, *mixed)
    assert ("left AUROC (MLS) unchanged (70.0 → 70.0; paired over 3 splits: +0.0 ± 0.9, higher on 1/3, lower on 2/3)"
            in reading)


def test_archive_record_keeps_the_rerun_relabel_scalars_and_training_time():
    m = metrics(0.8, 0.7, 0.6, profile="claims", method="asym", mixing="cutmix")
    row = rows_from_exp_show(exp_show(experiment("claims-cifar10-s0-asym-cutmix+no_jmi-r231", m)))[0]
    history = [{"seconds": 6.0, "images_per_s": 800.0}, {"seconds": 8.0, "images_per_s": 600.0},
               {"seconds": 7.0, "images_per_s": 700.0}]
    rec = archive_record(row, {"hard_fraction": 0.14, "hard_fraction_per_epoch": [0.1, 0.2]},
                                {"student": {"history": history}})
    assert rec["reproduce"] == ("dvc exp run -n claims-cifar10-s0-asym-cutmix+no_jmi-r231 -S 'profile=claims' "
                                "-S 'benchmark=cifar10' -S 'split.index=0' -S 'base.seed=231' -S 'distill.method=asym' "
                                "-S 'augment.method=cutmix' -S 'distill.jmi=0'")
    assert rec["relabel"] == {"hard_fraction": 0.14}  # lists stay in the experiment's own reports
    assert rec["timing"] == {"student": {"epochs": 3, "seconds": 21.0, "median_images_per_s": 700.0}}
    back, = rows_from_archive([rec])
    assert (back["recipe_id"], back["variant"], back["seed"]) == ("asym-cutmix+no_jmi", "+no_jmi", 231)


def test_run_time_counts_a_shared_teacher_once_and_keeps_machines_apart():
    def timed(name, split, teacher_s, student_s, **machine):
        m = metrics(0.8, 0.7, 0.6, profile="claims", split=split)
        return {"name": name, "metrics": m, "timing": {
            "teacher": {"epochs": 40, "seconds": teacher_s, **machine},
            "student": {"epochs": 80, "seconds": student_s, **machine}}}

    amd = {"precision": "bf16", "cpu": "AMD EPYC", "threads": 1}
    rows = rows_from_archive([
        timed("claims-cifar10-s0-ce-none", 0, 300.0, 600.0), timed("claims-cifar10-s0-ce-cutmix", 0, 300.0, 900.0),
        timed("claims-cifar10-s1-ce-none", 1, 420.0, 1200.0),
        timed("claims-cifar10-s2-ce-none", 2, 1200.0, 2400.0, precision="fp32"),
        timed("claims-cifar10-s3-ce-none", 3, 360.0, 720.0, **amd)])
    old, new, fp32 = run_time(rows)  # bf16 before fp32, an unrecorded CPU first
    assert (old["precision"], old["cpu"], fp32["precision"], new["cpu"], new["threads"]) == (
        "bf16", None, "fp32", "AMD EPYC", 1)
    assert old["teacher"] == {"n": 2, "median_min": 6.0, "min_min": 5.0, "max_min": 7.0}  # s0's teacher once
    assert old["student"] == {"n": 3, "median_min": 15.0, "min_min": 10.0, "max_min": 20.0}
    lines = run_time_lines([old, new, fp32])
    assert lines[0] == ("- claims / cifar10, bf16, CPU not recorded: teacher 6.0 min (5.0–7.0, 2 runs); "
                        "student 15.0 min (10.0–20.0, 3 runs).")
    assert lines[1] == ("- claims / cifar10, bf16, AMD EPYC, 1 thread: teacher 6.0 min (1 run); "
                        "student 12.0 min (1 run).")
    student_only = {k: v for k, v in new.items() if k != "teacher"}  # an archive that timed only its student
    assert run_time_lines([student_only]) == [
        "- claims / cifar10, bf16, AMD EPYC, 1 thread: student 12.0 min (1 run)."]
    md = suite_markdown(rows, {**aggregate(rows), "run_time": [old]}, "test")
    assert "## Run time" in md and lines[0] in md


def test_run_stats_are_read_from_the_new_file_or_the_old_train_json(tmp_path, monkeypatch):
    """Experiments committed before reports/run/<stage>.json kept seconds and images/s in <role>_train.json."""
    import subprocess

    from study.experiments import record_of, run_stats_of

    def commit(files: dict[str, dict]) -> str:
        for name, obj in files.items():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(json.dumps(obj))
        subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "x"], cwd=tmp_path,
                       check=True)
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True,
                              check=True).stdout.strip()

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    rows = [{"epoch": 1, "seconds": 2.0, "images_per_s": 10.0}, {"epoch": 2, "seconds": 4.0, "images_per_s": 30.0}]
    old = commit({"reports/student_train.json": {"history": rows, "final": rows[-1], "peak_rss_mib": 9.0}})
    new = commit({"reports/student_train.json": {"final": {"epoch": 2, "loss": 1.0, "val_acc": 0.5}},
                  "reports/run/distill.json": {"history": rows[:1], "epochs": 1, "seconds": 2.0}})
    monkeypatch.chdir(tmp_path)
    assert run_stats_of(old)["student"]["history"] == rows
    assert run_stats_of(new)["student"]["history"] == rows[:1]
    m = metrics(0.8, 0.7, 0.6, profile="claims", method="asym", mixing="cutmix")
    row = {**rows_from_exp_show(exp_show(experiment("claims-cifar10-s0-asym-cutmix", m)))[0], "rev": old}
    assert record_of(row)["timing"] == {"student": {"epochs": 2, "seconds": 6.0, "median_images_per_s": 20.0}}


def test_the_suite_counts_splits_that_hold_the_same_classes_once():
    """CIFAR-10 splits 0 and 1 are one partition: the cell's ± is over 3 partitions of 4 runs, the reading pairs 3."""
    plain = [experiment(f"p{s}", metrics(0.8 + s / 100, 0.70, 0.5, split=s)) for s in range(4)]
    mixed = [experiment(f"m{s}", metrics(0.81 + s / 100, 0.68, 0.5, split=s, mixing="cutmix")) for s in range(4)]
    rows = rows_from_exp_show(exp_show(*plain, *mixed))
    agg = aggregate(rows)
    group = agg["groups"][0]
    assert (group["n"], group["partitions"], group["same_classes"]) == (4, 3, [[0, 1]])
    assert group["acc"]["n"] == 3 and group["acc"]["mean"] == pytest.approx((80.5 + 82 + 83) / 3)
    md = suite_markdown(rows, agg, "a test")
    assert "(n=4 runs on 3 partitions, quick)" in md
    assert "raised closed-set acc by 1.0 pt (81.8 → 82.8; paired over 3 partitions: +1.0 ± 0.0, higher on 3/3)" in md
