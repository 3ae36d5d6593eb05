"""Pre-registration from git, Holm's correction and honest seed noise: a claim row is confirmatory only when every
experiment behind it was launched after the commit that added the claim's line (synthetic git histories)."""
import subprocess
from pathlib import Path

import numpy as np
import pytest

from study.ablation import study
from study.ablation_page import ablation_markdown
from study.claims import NOISE_NOT_MEASURED, compare
from study.experiments import rows_from_archive
from study.families import claims_table
from study.grid import Cell
from study.stats import holm, p_value, t_interval, verdict

CLAIM = ('  - {id: best-beats-cutmix-auroc, metric: auroc_mls, a: ce-cutmix, b: asym-cutmix+tau4+all_hard, '
         'direction: up, margin: 0, text: "AD at tau = 4 beats CutMix on AUROC"}')
STUDY = "profile: claims\npartitions:\n  cifar10: [5, 6, 7]\nrecipes: [ce-cutmix, asym-cutmix+tau4+all_hard]\nclaims:\n"
EXPLORATORY = ('claims:\n  - {id: cutmix-lowers-auroc, metric: auroc_mls, a: ce-none, b: ce-cutmix, '
               'direction: down, margin: 0, text: "CutMix lowers AUROC"}\n')


def record(recipe, acc, auroc, *, split=0, seed=230, baseline=None):
    cell = Cell("claims", "cifar10", split, recipe, seed)
    method, mixing = recipe.split("+")[0].split("-", 1)
    return {"name": cell.name, "baseline": baseline, "metrics": {
        "info": {"benchmark": "cifar10", "split": split, "profile": "claims", "method": method, "mixing": mixing},
        "student": {"test": {"acc": acc / 100, "mls": {"auroc": auroc / 100, "oscr": 0.5}}}}}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path):
    git(tmp_path, "init", "-q")
    return tmp_path


def held_out_rows(baseline: str) -> list[dict]:
    """The confirmatory cells: three partitions, AD above CutMix by 3-5 AUROC points, launched from `baseline`."""
    return rows_from_archive(
        [record("ce-cutmix", 85, 70 + s, split=s, baseline=baseline) for s in (5, 6, 7)]
        + [record("asym-cutmix+tau4+all_hard", 85, 70 + s + d, split=s, baseline=baseline)
           for s, d in ((5, 3.0), (6, 4.0), (7, 5.0))])


def table(repo: Path, rows: list[dict]) -> dict:
    return claims_table(rows, repo, repo / "claims.yaml", repo / "confirmatory.yaml")


def test_claim_stated_before_its_data_is_confirmatory(repo):
    registered = commit(repo, {"confirmatory.yaml": STUDY + CLAIM + "\n", "claims.yaml": EXPLORATORY}, "register")
    launched = commit(repo, {"notes.txt": "later work\n"}, "later")
    row, = table(repo, held_out_rows(launched))["claims"]
    assert (row["family"], row["holm_family"], row["registered"]) == ("confirmatory", "confirmatory", registered)
    assert row["launched_after_registration"] and row["splits"] == row["planned_splits"] == [5, 6, 7]
    assert row["mean_diff"] == pytest.approx(4)
    assert row["verdict"] == "holds" and row["p"] < 0.05
    assert row["p_holm"] == pytest.approx(row["p"])  # a family of one claim on one benchmark


def test_claim_stated_after_its_data_is_exploratory(repo):
    launched = commit(repo, {"confirmatory.yaml": STUDY, "claims.yaml": EXPLORATORY}, "grid")
    registered = commit(repo, {"confirmatory.yaml": STUDY + CLAIM + "\n"}, "claim after the cells ran")
    row, = table(repo, held_out_rows(launched))["claims"]
    assert row["family"] == "exploratory" and row["registered"] == registered
    assert not row["launched_after_registration"] and row["holm_family"] != "confirmatory"


def test_claim_edited_after_its_data_is_exploratory(repo):
    before = commit(repo, {"confirmatory.yaml": STUDY, "claims.yaml": EXPLORATORY}, "the study, no claim yet")
    commit(repo, {"confirmatory.yaml": STUDY + CLAIM + "\n"}, "register")
    launched = commit(repo, {"notes.txt": "cells queued\n"}, "later")
    edited = commit(repo, {"confirmatory.yaml": STUDY + CLAIM.replace("margin: 0", "margin: 1") + "\n"}, "edit")
    row, = table(repo, held_out_rows(launched))["claims"]
    assert row["family"] == "exploratory" and row["registered"] == edited and row["margin"] == 1.0
    # one experiment launched before the registration makes the row exploratory too
    commit(repo, {"confirmatory.yaml": STUDY + CLAIM + "\n"}, "edit back: the line counts from its first commit")
    rows = held_out_rows(launched)
    assert table(repo, rows)["claims"][0]["family"] == "confirmatory"
    rows[0] = {**rows[0], "baseline": before}
    assert table(repo, rows)["claims"][0]["family"] == "exploratory"


def test_exploratory_claims_leave_the_held_out_partitions_alone(repo):
    launched = commit(repo, {"confirmatory.yaml": STUDY + CLAIM + "\n", "claims.yaml": EXPLORATORY}, "register")
    rows = held_out_rows(launched) + rows_from_archive([record("ce-none", 84, 76 + s, split=s) for s in (5, 6, 7)])
    t = table(repo, rows)
    assert [r["id"] for r in t["claims"]] == ["best-beats-cutmix-auroc"]  # cutmix-lowers-auroc: only on 5-7
    assert t["missing"] == ["claims.yaml: cutmix-lowers-auroc"]


def test_holm_by_hand_and_with_untested_hypotheses():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.01, None, 0.02], m=4) == [pytest.approx(0.04), None, pytest.approx(0.06)]
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_p_below_alpha_exactly_when_the_interval_decides():
    rng = np.random.default_rng(0)
    for mean, se, df, margin in zip(rng.normal(0, 2, 200), rng.uniform(0.1, 2, 200), rng.integers(1, 12, 200),
                                    rng.choice([0.0, -1.0], 200)):
        decided = verdict(t_interval(mean, se, df), "up", margin) != "inconclusive"
        assert decided == (p_value(mean, se, df, margin) < 0.05)


def test_single_split_noise_is_the_compared_recipes_own_when_both_have_three_seeds():
    recs = ([record("ce-cutmix", 80, v, seed=230 + i) for i, v in enumerate((70, 72, 74))]
            + [record("asym-cutmix", 78, v, seed=230 + i) for i, v in enumerate((60, 62, 64))]
            + [record("ce-none", 80, v, seed=230 + i) for i, v in enumerate((60, 80, 100))])  # noisy bystander
    res = compare(rows_from_archive(recs), "claims", "cifar10", "asym-cutmix", "ce-cutmix", "auroc_mls")
    half = t_interval(10.0, (4 * (1 / 3 + 1 / 3)) ** 0.5, 4)
    assert res["interval"] == "t, seed noise of both recipes on split 0 (df=4)"
    assert res["ci95"] == pytest.approx(half)


def test_a_regime_whose_noise_was_never_measured_is_never_decided(repo):
    commit(repo, {"confirmatory.yaml": STUDY, "claims.yaml": EXPLORATORY.replace("ce-none", "ce-none+s_e160")
                  .replace("b: ce-cutmix", "b: ce-cutmix+s_e160")}, "claims")
    recs = ([record(r, 80, v, seed=230 + i) for r in ("ce-none", "ce-cutmix") for i, v in enumerate((70, 71, 72))]
            + [record("ce-none+s_e160", 85, 80), record("ce-cutmix+s_e160", 86, 60)])  # 20 points apart, one seed
    row, = table(repo, rows_from_archive(recs))["claims"]
    assert row["interval"] == NOISE_NOT_MEASURED and row["ci95"] is None and row["mean_diff"] == pytest.approx(-20)
    assert row["verdict"] == row["verdict_holm"] == "noise not measured"
    assert row["holm_family"] == "schedule study, claims / cifar10 split 0"


def test_ablation_deltas_carry_holm_and_say_when_noise_was_never_measured():
    recs = ([record("ce-cutmix", 85 + s, 70 + s, seed=230 + s) for s in range(3)]
            + [record("asym-cutmix", 80 + s, 71 + s, seed=230 + s) for s in range(3)]
            + [record("asym-cutmix+no_le", 75, 80), record("asym-cutmix+tau4", 86, 71.5),
               record("asym-cutmix+s_e160", 86, 78)])
    s = study(rows_from_archive(recs), "claims", "cifar10", 0)
    entry = {e["recipe"]: e for e in s["entries"]}
    no_le, tau4 = entry["asym-cutmix+no_le"]["d_auroc_mls"], entry["asym-cutmix+tau4"]["d_auroc_mls"]
    assert no_le["p_holm"] < 0.05 <= tau4["p_holm"] and no_le["p_holm"] >= no_le["p"]
    assert entry["asym-cutmix+s_e160"]["d_auroc_mls"]["interval"] == NOISE_NOT_MEASURED
    md = ablation_markdown([s], "a test")
    assert "| +9.0 [" in md and "] * |" in md and "| +7.0 (noise not measured) |" in md
