"""The claims table and the ablation study on synthetic experiments: intervals, verdicts, schema, best variant."""
import pytest
from scipy import stats

from study.ablation import study
from study.ablation_page import ablation_markdown
from study.aggregate import aggregate
from study.answer import basis, estimate
from study.claims import compare, load_claims, values_by_split
from study.experiments import rows_from_archive
from study.families import claims_table
from study.figures import scale_figure, spread_labels
from study.grid import Cell
from study.partitions import partition, same_classes
from study.stats import p_value, verdict
from study.suite_page import claims_markdown

SPLITS = [0, 2, 3, 4, 5]  # CIFAR-10 splits of distinct classes: split 1 holds split 0's (study/partitions.py)


def record(recipe, acc, auroc, *, split=0, seed=230, profile="claims", msp=None):
    cell = Cell(profile, "cifar10", split, recipe, seed)
    method, rest = recipe.split("+")[0].split("-", 1)
    mixing, _, tloss = rest.partition("@")
    test = {"acc": acc / 100, "mls": {"auroc": auroc / 100, "oscr": 0.5}}
    if msp is not None:
        test["msp"] = {"auroc": msp / 100}
    return {"name": cell.name, "metrics": {
        "info": {"benchmark": "cifar10", "split": split, "profile": profile, "method": method, "mixing": mixing,
                 "teacher_loss": tloss or "ce"},
        "student": {"test": test, "jacobian": {"known_mean": 1.0, "unknown_mean": 1.5}}}}


def test_paired_t_interval_over_splits():
    d = [1.0, 2.0, 3.0, 4.0, 5.0]
    rows = rows_from_archive([record("ce-none", 80, 75, split=s) for s in SPLITS]
                             + [record("ce-cutmix", 80 + d[i], 70, split=s) for i, s in enumerate(SPLITS)])
    res = compare(rows, "claims", "cifar10", "ce-none", "ce-cutmix", "acc")
    half = stats.t.ppf(0.975, 4) * stats.tstd(d) / 5 ** 0.5
    assert res["n"] == 5 and res["splits"] == SPLITS and res["interval"] == "t over splits, paired"
    assert res["same_classes"] == []
    assert res["mean_diff"] == pytest.approx(3.0)
    assert res["ci95"] == pytest.approx([3.0 - half, 3.0 + half])


def test_one_split_uses_the_pooled_seed_noise():
    rows = rows_from_archive([record("ce-cutmix", 80, v, seed=s) for v, s in ((70, 230), (72, 231), (74, 232))]
                             + [record("asym-cutmix", 78, v, seed=s) for v, s in ((60, 230), (62, 231), (64, 232))]
                             + [record("asym-cutmix+no_jmi", 78, 66)])
    res = compare(rows, "claims", "cifar10", "asym-cutmix", "asym-cutmix+no_jmi", "auroc_mls")
    half = stats.t.ppf(0.975, 4) * (4 * (1 / 3 + 1)) ** 0.5  # pooled variance 4 on 2 + 2 degrees of freedom
    assert res["mean_diff"] == pytest.approx(4.0) and res["ci95"] == pytest.approx([4.0 - half, 4.0 + half])
    assert res["interval"] == "t, seed noise pooled over 2 recipes on split 0 (df=4)"
    assert (res["n_a"], res["n_b"]) == (3, 1)


def test_verdicts_follow_the_interval_and_the_margin():
    assert verdict([0.5, 2.0], "up", 0.0) == "holds" and verdict([-2.0, -0.5], "up", 0.0) == "fails"
    assert verdict([-0.5, 2.0], "up", 0.0) == "inconclusive" and verdict(None, "up", 0.0) == "inconclusive"
    assert verdict([-2.0, -0.5], "down", 0.0) == "holds" and verdict([0.1, 1.0], "down", 0.0) == "fails"
    assert verdict([-0.8, 0.5], "up", -1.0) == "holds"  # "keeps accuracy within 1 pt"


def test_claims_table_schema_missing_claims_and_single_experiments():
    rows = rows_from_archive([record("ce-none", 80 + i, 75 + i, split=SPLITS[i], msp=73 + i) for i in range(3)]
                             + [record("ce-cutmix", 82 + i, 70 + i * 0.5, split=SPLITS[i]) for i in range(3)]
                             + [record("ce-gradmix", 80, 76)])
    table = claims_table(rows)
    by_id = {c["id"]: c for c in table["claims"]}
    lowers = by_id["cutmix-lowers-auroc"]
    assert {"id", "text", "profile", "benchmark", "metric", "a", "b", "n", "splits", "mean_diff", "ci95",
            "verdict"} <= set(lowers)
    assert (lowers["a"], lowers["b"], lowers["n"], lowers["splits"]) == ("ce-none", "ce-cutmix", 3, SPLITS[:3])
    assert lowers["mean_diff"] == pytest.approx(-5.5) and lowers["verdict"] == "holds"
    assert by_id["cutmix-raises-acc"]["verdict"] == "holds"
    assert by_id["mls-ge-msp"]["mean_diff"] == pytest.approx(2.0) and by_id["mls-ge-msp"]["metric"] == \
        "auroc_mls - auroc_msp"
    assert by_id["jacobian-higher-on-unknowns"]["mean_diff"] == pytest.approx(0.5)
    gradmix = by_id["gradmix-beats-none"]  # one experiment each on split 0, no seed noise measured
    assert gradmix["ci95"] is None and gradmix["verdict"] == gradmix["verdict_holm"] == "noise not measured"
    assert gradmix["p"] is None and gradmix["p_holm"] is None and gradmix["family"] == "exploratory"
    missing = [m.split(": ")[1] for m in table["missing"] if m.startswith("conf/study/claims.yaml: ")]
    assert "kd-recovers-less" in missing and "cutmix-lowers-auroc" not in missing
    md = "\n".join(claims_markdown(table))
    assert "| **holds** |" in md and "+0.0 [" not in md.split("gradmix-beats-none")[1].splitlines()[0]
    assert {c.id for c in load_claims()} == set(by_id) | set(missing)


def test_ablation_study_names_the_best_ad_variant_within_the_accuracy_tolerance():
    rows = rows_from_archive([record("ce-cutmix", 85 + s, 70 + s, seed=230 + s) for s in range(3)]
                             + [record("asym-cutmix", 80 + s, 71 + s, seed=230 + s) for s in range(3)]
                             + [record("asym-cutmix+no_le", 75, 80),        # best AUROC, but 11 pt of accuracy lost
                                record("asym-cutmix+mixed_ce", 85.5, 74),  # within 1 pt of ce-cutmix (86.0)
                                record("asym-cutmix+tau4", 86, 72),
                                record("asym-cutmix+mixed_ce+fp32", 86, 78),  # a precision check, not a method
                                record("asym-cutmix+mixed_ce+s_e160", 86, 78),  # twice the reference's epochs
                                record("asym-none", 86, 79)])  # no mixing: never the best AD variant
    s = study(rows, "claims", "cifar10", 0)
    assert s["best_ad"] == "asym-cutmix+mixed_ce" and s["best_ad_within_tolerance"]
    entry = {e["recipe"]: e for e in s["entries"]}
    assert entry["asym-cutmix+mixed_ce"]["d_auroc_mls"]["mean_diff"] == pytest.approx(3.0)
    assert entry["ce-cutmix"]["acc"] == pytest.approx({"mean": 86.0, "n": 3, "std": 1.0})
    assert entry["asym-cutmix+tau4"]["acc"]["std"] is None  # one seed: no fake spread
    md = ablation_markdown([s], "a test")
    assert "Best AD variant: **`asym-cutmix+mixed_ce`**" in md and "| `asym-cutmix+tau4` | 1 | 86.0 |" in md


def test_ablation_without_the_reference_shows_no_delta_and_says_why():
    rows = rows_from_archive([record("ce-none", 74, 76), record("asym-cutmix", 72, 74),
                              record("asym-cutmix+tau4+all_hard", 76, 77)])
    s = study(rows, "claims", "cifar10", 0)
    assert s["best_ad"] == "asym-cutmix+tau4+all_hard" and not s["reference_ran"]
    md = ablation_markdown([s], "a test")
    rows_md = [line for line in md.splitlines() if line.startswith("| `")]
    assert len(rows_md) == 3 and not any("reference" in line for line in rows_md)  # no row reads as the reference
    assert "| – | – |" in md and "within 1 pt" not in md
    assert "(`ce-cutmix` has not run here, so no Δ and no accuracy tolerance; highest AUROC)" in md


def test_ablation_reads_the_logit_scale_and_the_knn_auroc_and_draws_them(tmp_path):
    recs = [record("ce-cutmix", 86, 70), record("ce-none", 86, 78), record("asym-cutmix+no_le", 80, 71)]
    for rec, (knn, known, unknown) in zip(recs, [(77, 3.5, 2.5), (78, 12.0, 7.5), (None, None, None)]):
        test = rec["metrics"]["student"]["test"]
        if knn is not None:
            test.update(knn={"auroc": knn / 100, "oscr": 0.5}, mean_max_logit_known=known,
                        mean_max_logit_unknown=unknown)
    s = study(rows_from_archive(recs), "claims", "cifar10", 0)
    entry = {e["recipe"]: e for e in s["entries"]}
    assert entry["ce-none"]["max_logit_known"]["mean"] == pytest.approx(12.0)
    assert entry["asym-cutmix+no_le"]["auroc_knn"] is None  # not measured: a dash, not a zero
    md = ablation_markdown([s], "a test")
    assert "| 77.0 | 3.5 / 2.5 |" in md and "| 78.0 | 12.0 / 7.5 |" in md and "| – | – |" in md
    scale_figure(s, tmp_path / "scale.png")
    assert (tmp_path / "scale.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_spread_labels_separates_neighbours_only():
    # two labels at the same place and one far right at the same height: the neighbour moves up by the gap,
    # the distant one stays where its point is; the order of the input is kept
    heights = spread_labels([(0.5, 72.0), (0.5, 72.1), (1.0, 72.0)], gap=0.4, reach=0.25)
    assert heights == pytest.approx([72.0, 72.4, 72.0])
    # a chain of close labels keeps climbing: each at least a gap above the one below
    assert spread_labels([(0.0, 1.0), (0.1, 1.0), (0.2, 1.0)], gap=0.5, reach=0.25) == pytest.approx([1.0, 1.5, 2.0])


def test_movr_rows_read_the_jacobian_of_the_movr_student():
    """-‖J‖'s AUROC is compared in points; m-OvR's own ‖J‖ row pairs its unknown and known means."""
    recs = []
    for i, split in enumerate(SPLITS[:3]):
        for recipe, neg_norm, unknown in (("ce-none", 0.55 + i / 100, 1.1), ("movr-none@movr", 0.70, 1.4)):
            r = record(recipe, 85, 78, split=split)
            r["metrics"]["student"]["jacobian"].update(auroc_neg_norm=neg_norm, unknown_mean=unknown)
            recs.append(r)
    by_id = {c["id"]: c for c in claims_table(rows_from_archive(recs))["claims"]}
    better = by_id["ours-movr-neg-norm-separates-better"]
    assert (better["a"], better["b"], better["n"]) == ("ce-none", "movr-none@movr", 3)
    assert better["mean_diff"] == pytest.approx(14.0) and better["verdict"] == "holds"
    assert by_id["jacobian-higher-on-unknowns-movr"]["mean_diff"] == pytest.approx(0.4)


def test_splits_that_hold_the_same_classes_count_once():
    """CIFAR-10 splits 0 and 1 hold the same six known classes (in another order): two indices, one partition. Every
    aggregate over splits (the paired claim interval and its p, the answer's estimate, the suite's mean ± std) equals
    the one over the same data with that partition given once, its value the mean of the two runs (one seed)."""
    assert sorted(partition("cifar10", s) for s in range(10)) == [0, 0, 2, 3, 4, 5, 6, 7, 8, 9]
    assert same_classes("cifar10", range(10)) == [[0, 1]] and same_classes("cifar10", range(5, 10)) == []
    assert partition("svhn", 1) == 0 and partition("cifar_plus10", 2) == 2  # CIFAR+10: split 1's knowns, not unknowns
    assert partition("tinyimagenet32", 3) == 3 and partition("folder", 1) == 1 and partition("mine", 1) == 1
    acc = {"ce-none": [80.0, 84.0, 86.0, 90.0, 78.0], "ce-cutmix": [82.0, 83.0, 89.0, 90.5, 80.0]}
    twice = rows_from_archive([record(r, v, 70, split=s) for r, vs in acc.items() for s, v in enumerate(vs)])
    once = rows_from_archive([record(r, (vs[0] + vs[1]) / 2 if s == 0 else v, 70, split=s)
                              for r, vs in acc.items() for s, v in enumerate(vs) if s != 1])
    dup, ref = (compare(rows, "claims", "cifar10", "ce-none", "ce-cutmix", "acc") for rows in (twice, once))
    assert (dup["n"], ref["n"], dup["splits"], ref["splits"]) == (4, 4, [0, 1, 2, 3, 4], [0, 2, 3, 4])
    assert dup["same_classes"] == [[0, 1]] and ref["same_classes"] == []
    assert (dup["n_a"], dup["n_b"], dup["df"]) == (5, 5, 3) and dup["interval"] == "t over partitions, paired"
    for key in ("mean_diff", "se"):
        assert dup[key] == pytest.approx(ref[key])
    assert dup["ci95"] == pytest.approx(ref["ci95"])
    d = [(82 + 83) / 2 - (80 + 84) / 2, 89 - 86, 90.5 - 90, 80 - 78]  # b - a per partition: splits 0 and 1, 2, 3, 4
    half = stats.t.ppf(0.975, 3) * stats.tstd(d) / 2
    assert dup["mean_diff"] == pytest.approx(sum(d) / 4) and dup["ci95"][1] - dup["mean_diff"] == pytest.approx(half)
    assert p_value(dup["mean_diff"], dup["se"], dup["df"], 0.0) == pytest.approx(
        p_value(ref["mean_diff"], ref["se"], ref["df"], 0.0))
    est = {name: estimate(values_by_split(rows, "acc")[("claims", "cifar10", "ce-none")])
           for name, rows in (("dup", twice), ("ref", once))}
    assert [getattr(est["dup"], f) for f in ("mean", "low", "high")] == pytest.approx(
        [getattr(est["ref"], f) for f in ("mean", "low", "high")])
    assert (est["dup"].n, est["dup"].over) == (est["ref"].n, est["ref"].over) == (4, "splits")
    assert basis({"benchmark": "cifar10", "splits": [0, 1, 2, 3, 4], "acc": est["dup"]}) == \
        "4 partitions (splits 0–4; 0 and 1 hold the same classes)"
    suite = {name: aggregate(rows)["groups"][0] for name, rows in (("dup", twice), ("ref", once))}
    assert suite["dup"]["acc"]["n"] == suite["ref"]["acc"]["n"] == 4 and suite["dup"]["partitions"] == 4
    dup_by, ref_by = suite["dup"]["acc"].pop("by_split"), suite["ref"]["acc"].pop("by_split")
    assert suite["dup"]["acc"] == pytest.approx(suite["ref"]["acc"]) and dup_by == pytest.approx(ref_by)
    assert (suite["dup"]["n"], suite["dup"]["same_classes"]) == (5, [[0, 1]])
