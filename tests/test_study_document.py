"""study.document: docs/study.md and reports/answer.md regenerate byte-identical from the committed reports, the
answer table agrees with the experiment archives, and a missing or corrupt report is a one-line error naming it."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from osr import OSRError
from osr.data import BENCHMARKS
from study.answer import BENCH_NAMES, REGISTERED
from study.document import ANSWER_MD, ANSWER_PNG, STUDY_MD, load, write_documents
from study.grid import parse_name
from study.study_page import confirmatory_summary, interim_note, same_classes_note, study_markdown

ROOT = Path(__file__).resolve().parents[1]
INPUTS = ["reports/claims.json", "reports/suite.json", "reports/ablation.json", "reports/experiments", REGISTERED,
          "conf/profile/claims.yaml", "conf/config.yaml", "README.md"]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The generator's inputs, copied from the repository into a bare folder."""
    for rel in INPUTS:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (ROOT / rel).is_dir() else shutil.copy)(ROOT / rel, tmp_path / rel)
    return tmp_path


def test_regeneration_is_byte_identical_to_the_committed_documents(copy):
    written = write_documents(copy)
    assert written == [copy / STUDY_MD, copy / ANSWER_MD, copy / ANSWER_PNG, copy / "README.md"]
    for rel in (STUDY_MD, ANSWER_MD, "README.md"):  # README.md: its answer block
        assert (copy / rel).read_bytes() == (ROOT / rel).read_bytes(), f"{rel} is stale: run python -m study.document"
    assert (copy / ANSWER_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(copy.rglob(".*.tmp*"))  # nothing half-written left behind


def _known(bench: str, split: int) -> frozenset:
    """The known classes of a split, as osr/data.py lists them (`tinyimagenet32`: Tiny-ImageNet's lists)."""
    return frozenset(BENCHMARKS[bench.removesuffix("32")].known[split])


def _archive_answer(root: Path, registered: dict) -> dict:
    """(benchmark, partitions, recipe) -> {acc, auroc: (mean, low, high) or (mean,)}, straight from the archives:
    over the partition means where a recipe ran on two or more partitions, else over the seeds of its one partition.
    A partition is a split's set of known classes (splits that hold the same one count once); its mean is over its
    seeds, a seed's value the mean of its runs on those splits."""
    values = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    for path in sorted((root / "reports" / "experiments").glob("*.json")):
        record = json.loads(path.read_text())
        cell = parse_name(record["name"])
        if cell and cell.profile == "claims" and cell.recipe in registered["recipes"]:
            held_out = cell.split in registered["partitions"].get(cell.benchmark, [])
            test = record["metrics"]["student"]["test"]
            for key, v in (("acc", test["acc"]), ("auroc", test["mls"]["auroc"])):
                where = (cell.benchmark, "held-out" if held_out else "exploratory", cell.recipe)
                values[where][key][_known(cell.benchmark, cell.split)][cell.seed].append(100 * v)
    for bench in registered["partitions"]:  # held-out rows: the partitions every recipe ran on, two or more
        group = [w for w in values if w[:2] == (bench, "held-out")]
        common = set.intersection(*(set(values[w]["acc"]) for w in group)) if group else set()
        for w in group:
            for key in values[w]:
                values[w][key] = {s: v for s, v in values[w][key].items() if s in common}
        if len(group) < len(registered["recipes"]) or any(len(values[w]["acc"]) < 2 for w in group):
            for w in group:
                del values[w]
    out = defaultdict(dict)
    for where, metrics in values.items():
        for key, by_partition in metrics.items():
            seeds = [[np.mean(runs) for runs in by_seed.values()] for by_seed in by_partition.values()]
            x = np.asarray([np.mean(v) for v in seeds] if len(seeds) > 1 else seeds[0])
            half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else None
            out[where][key] = (x.mean(),) if half is None else (x.mean(), x.mean() - half, x.mean() + half)
    return out


def _fmt(est: tuple) -> str:
    """The table's `mean [low, high]`, the interval cut to [0, 100] (percentages)."""
    return f"{est[0]:.1f} [{max(est[1], 0):.1f}, {min(est[2], 100):.1f}]" if len(est) == 3 else f"{est[0]:.1f}"


NAMES = {"CIFAR-10": "cifar10", "Tiny-ImageNet 32 × 32": "tinyimagenet32"}
ROW = re.compile(r"^\| ([^|]+) \| (held-out|exploratory) \| [^|]*\(`([^`]+)`\) \| ([^|]+) \| ([^|]+) \| [^|]+ \|$",
                 re.M)


def _answer_rows(text: str) -> list[tuple]:
    return ROW.findall(text[text.index("## The answer"):text.index("## The claims")])


def test_every_number_of_the_answer_table_equals_the_archives():
    expected = _archive_answer(ROOT, load(ROOT)["registered"])
    rows = _answer_rows((ROOT / STUDY_MD).read_text())
    assert len(rows) == len(expected) >= 8  # five recipes on CIFAR-10, all that ran on Tiny-ImageNet
    for bench, partitions, recipe, acc, auroc in rows:
        want = expected[(NAMES[bench], partitions, recipe)]
        assert (acc, auroc) == (_fmt(want["acc"]), _fmt(want["auroc"])), (bench, recipe)
    assert (ROOT / ANSWER_MD).read_text().count("\n| ") == len(rows) + 1  # the README fragment: the same rows


def test_the_regime_counts_the_held_out_runs_of_the_archives():
    reg = load(ROOT)["registered"]
    regime = (ROOT / STUDY_MD).read_text().split("## The regime")[1].split("## The answer")[0]
    for bench, planned in reg["partitions"].items():
        cells = [parse_name(json.loads(p.read_text())["name"]) for p in (ROOT / "reports/experiments").glob(
            f"{reg['profile']}-{bench}-s*.json")]
        runs = [c for c in cells if c.split in planned and c.recipe in reg["recipes"]]
        line = re.search(rf"^- .* \(`{bench}`\), held-out: .*$", regime, re.M)
        assert line and line.group(0).endswith(f", {len(runs)} student runs."), (bench, len(runs))


def test_the_readme_names_every_confirmatory_row_decided_after_holm_and_counts_the_rest():
    rows = json.loads((ROOT / "reports/claims.json").read_text())["claims"]
    family = [c for c in rows if c.get("family") == "confirmatory"]
    decided = {(c["id"], BENCH_NAMES[c["benchmark"]], c["verdict_holm"]) for c in family
               if c["verdict_holm"] in {"holds", "fails"}}
    block = " ".join((ROOT / "README.md").read_text().split("<!-- answer:begin -->")[1].split("<!-- answer:end")[0]
                     .split())  # unwrapped
    assert f"Confirmatory family: {len(family)} claim rows" in block
    named, verdict = set(), None
    for marker, row, bench in re.findall(r"\*\*(holds|fails)\*\*:|\(`([\w-]+)`, ([^,]+), [-+]\d", block):
        verdict = marker or verdict
        if row:
            named.add((row, bench, verdict))
    assert named == decided
    assert f"The other {len(family) - len(decided)} rows are inconclusive" in block or not decided


def test_the_answers_claim_lists_are_the_exploratory_rows_under_the_confirmatory_paragraph():
    answer = (ROOT / STUDY_MD).read_text().split("## The answer")[1].split("## The claims")[0]
    assert answer.index("Confirmatory family:") < answer.index("Exploratory claim rows")
    families = re.findall(r"^- .*?\(`[\w-]+`, (\w+)\):", answer, re.M)
    assert families and set(families) == {"exploratory"}


def test_a_family_with_nothing_decided_says_so_and_an_unfinished_one_is_interim():
    reg = {"partitions": {"cifar10": [5, 6, 7]}}
    row = {"id": "a-claim", "text": "A claim", "family": "confirmatory", "benchmark": "cifar10", "splits": [5, 6],
           "mean_diff": -1.0, "ci95": [-1.5, -0.5], "verdict": "inconclusive", "verdict_holm": "inconclusive"}
    text = " ".join(confirmatory_summary([row, {**row, "family": "exploratory", "verdict_holm": "holds"}], reg))
    assert "1 claim rows" in text and "all 1 rows are inconclusive." in text and "Interim:" in text
    raw = " ".join(confirmatory_summary([row, {**row, "verdict": "holds"}, {**row, "verdict_holm": "fails"}], reg))
    assert "**fails**: A claim (`a-claim`, CIFAR-10, -1.0 [-1.5, -0.5])." in raw
    assert "The other 2 rows are inconclusive; before it, 1 of them hold and 0 fail." in raw
    assert "Interim" not in " ".join(confirmatory_summary([{**row, "splits": [5, 6, 7]}], reg))
    assert confirmatory_summary([{**row, "family": "exploratory"}], reg) == []


def test_held_out_partitions_come_first_and_apart(copy):
    """Runs on registered partitions form their own rows, before the exploratory ones, which they leave unchanged."""
    folder = copy / "reports" / "experiments"
    for source in sorted(folder.glob("claims-cifar10-s[12]-*.json")):
        record = json.loads(source.read_text())
        record["name"] = record["name"].replace("-s1-", "-s5-").replace("-s2-", "-s6-")
        record["metrics"]["info"]["split"] += 4
        record["metrics"]["student"]["test"]["acc"] -= 0.01
        (folder / f"{record['name']}.json").write_text(json.dumps(record))
    write_documents(copy)
    rows = _answer_rows((copy / STUDY_MD).read_text())
    benches = list(dict.fromkeys(r[0] for r in rows))
    assert [r[0] for r in rows] == sorted((r[0] for r in rows), key=benches.index)  # a benchmark's rows together
    for bench in benches:  # within a benchmark, its held-out rows (all five recipes) first
        kinds = [r[1] for r in rows if r[0] == bench]
        assert kinds == sorted(kinds, key=lambda kind: kind != "held-out")
        assert kinds.count("held-out") in {0, 5}
    assert "CIFAR-10" in {r[0] for r in rows if r[1] == "held-out"}
    expected = _archive_answer(copy, load(copy)["registered"])
    for bench, partitions, recipe, acc, auroc in rows:
        assert (acc, auroc) == tuple(_fmt(expected[(NAMES[bench], partitions, recipe)][k]) for k in ("acc", "auroc"))
    explored = [r for r in _answer_rows((ROOT / STUDY_MD).read_text()) if r[1] == "exploratory"]
    assert [r for r in rows if r[1] == "exploratory"] == explored


@pytest.mark.parametrize("report", ["claims", "suite", "ablation"])
@pytest.mark.parametrize("damage, message", [
    (None, "file not found"),
    ("{\"claims\": [", "not valid JSON"),
    ("[1, 2]", r"expected a JSON object with a `\w+` list"),
    ("{\"claims\": [{}], \"groups\": [{}], \"studies\": [{}]}", r"`\w+\[0\]` lacks \w"),
])
def test_a_missing_or_corrupt_report_is_refused_naming_it(copy, report, damage, message):
    path = copy / "reports" / f"{report}.json"
    path.unlink() if damage is None else path.write_text(damage)
    with pytest.raises(OSRError) as e:
        write_documents(copy)
    assert re.match(re.escape(f"{path}: ") + message, str(e.value)) and "\n" not in str(e.value)
    assert not (copy / STUDY_MD).exists() and not (copy / ANSWER_MD).exists()


def test_a_corrupt_archive_is_refused_naming_it(copy):
    path = copy / "reports" / "experiments" / "claims-cifar10-s1-ce-none.json"
    path.write_text(json.dumps({"name": "claims-cifar10-s1-ce-none", "metrics": {"info": {}}}))
    with pytest.raises(OSRError, match="^" + re.escape(f"{path}: not an experiment archive")):
        write_documents(copy)


@pytest.mark.parametrize("damage, message", [
    ("profile: [claims", "not valid YAML"),
    ("- a list", "expected a mapping"),
    ("profile: claims\npartitions: [cifar10]\nrecipes: [ce-none]\nclaims: []\n", "`partitions` must map"),
    ("profile: claims\n", "lacks partitions, recipes, claims"),
])
def test_a_bad_registered_study_is_refused_naming_it(copy, damage, message):
    (copy / REGISTERED).write_text(damage)
    with pytest.raises(OSRError, match="^" + re.escape(f"{copy / REGISTERED}: {message}")):
        write_documents(copy)


@pytest.mark.slow  # a subprocess
def test_the_entry_point_prints_one_line_and_exits_1(copy):
    (copy / "reports" / "suite.json").write_text("{\"groups\": ")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "study.document", "--root", str(copy)], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    assert res.returncode == 1
    assert res.stderr.splitlines() == [f"error: {copy / 'reports' / 'suite.json'}: not valid JSON "
                                       "(Expecting value at line 1)"]


def test_confirmatory_rows_lead_with_their_holm_verdicts(copy):
    """With the family labels and Holm fields the report adds, confirmatory rows get their own table first (p,
    Holm-adjusted p and verdict) and a row decided only before the correction is listed as not resolved."""
    claims = json.loads((copy / "reports" / "claims.json").read_text())
    first = {**claims["claims"][0], "family": "confirmatory", "p": 0.004, "p_holm": 0.08,
             "verdict_holm": "inconclusive"}
    claims["claims"] = [first] + [{**c, "family": "exploratory"} for c in claims["claims"][1:]]
    (copy / "reports" / "claims.json").write_text(json.dumps(claims))
    reports = load(copy)
    text = study_markdown(reports, [])
    confirmatory = text[text.index("### Confirmatory"):text.index("### Exploratory")]
    assert "no finished partitions" not in confirmatory and "does not yet label" not in text
    assert f"(`{first['id']}`)" in confirmatory and "| 0.004 | 0.080 | **inconclusive** |" in confirmatory
    unresolved = text[text.index("## What is not resolved"):]
    assert f"(`{first['id']}`, confirmatory)" in unresolved and "(after Holm: **inconclusive**)" in unresolved
    assert "no partition of it has finished" not in unresolved


def test_a_readme_without_the_answer_block_is_refused_naming_it(copy):
    (copy / "README.md").write_text("# osr\n")
    with pytest.raises(OSRError, match=r"README.md: lacks the <!-- answer:begin --> ... <!-- answer:end --> block"):
        write_documents(copy)


def test_confirmatory_rows_on_some_partitions_are_called_interim():
    reg = {"partitions": {"cifar10": [5, 6, 7], "tinyimagenet32": [1, 2]}}
    rows = [{"benchmark": "cifar10", "splits": [5, 6]}, {"benchmark": "cifar10", "splits": [5]}]
    line = interim_note(rows, reg)[-1]
    assert line.startswith("Interim: the registered partitions with runs so far (CIFAR-10: 2 of 3; "
                           "Tiny-ImageNet 32 × 32: 0 of 2); each row rests on the partitions where both")
    done = [{"benchmark": "cifar10", "splits": [5, 6, 7]}, {"benchmark": "tinyimagenet32", "splits": [1, 2]}]
    assert interim_note(done, reg) == []


def test_splits_that_hold_the_same_classes_are_named_with_what_counting_them_twice_would_do():
    note = " ".join(same_classes_note("cifar10", [0, 1, 2, 3, 4]))
    assert note.strip().startswith("CIFAR-10's standard splits 0 and 1 hold the same known classes")
    assert "(4 partitions over splits 0–4)" in note and "take 4 degrees of freedom where the data hold 3" in note
    width = [stats.t.ppf(0.975, n - 1) / np.sqrt(n) for n in (5, 4)]  # half-widths for the same spread
    assert f"{100 * (1 - width[0] / width[1]):.0f}" == "22" and "be 22 % narrower than the data support" in note
    assert same_classes_note("cifar10", [5, 6, 7, 8, 9]) == [] and same_classes_note("tinyimagenet32", [0]) == []
    text = (ROOT / STUDY_MD).read_text()
    assert note.strip() in text and text.count("hold the same known classes") == 1
