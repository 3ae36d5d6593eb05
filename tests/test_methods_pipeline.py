"""Every method and score of the methods registry through the real pipeline (tiny profile, `dvc exp run`)."""
import csv

import pytest

from conftest import clone, needs_mirror, ran_stages, sh, stage_report

pytestmark = [needs_mirror, pytest.mark.slow]

RECIPES = [
    ["augment.method=gradmix", "distill.method=ce"],
    ["augment.method=gradmix", "distill.method=asym", "augment.layers=[layer3,layer4]"],
    ["augment.method=noisebox", "distill.method=kd"],
    ["augment.method=mixup", "distill.method=asym"],
    ["augment.method=none", "distill.method=movr", "teacher.loss=movr"],
    ["augment.method=cutmix", "distill.method=movr", "movr.margin_mode=symmetric", "movr.rotation=0"],
    ["augment.method=cutmix", "distill.method=asym", "relabel.rule=all", "distill.jmi=0", "distill.easy=0",
     "distill.hard_reduction=batch", "distill.mixed_ce=0.5", "distill.raw_on_mixed=1"],  # the claims study's switches
]


def test_every_method_runs_through_the_pipeline_and_reports_every_score(tiny_repro, tmp_path):
    proj = clone(tiny_repro, tmp_path / "proj")
    scores = stage_report(proj, "evaluate", "metrics.json")["student"]["test"]
    assert {"msp", "mls", "energy", "ovr", "knn"} <= set(scores)
    for sets in RECIPES:
        out = sh(["dvc", "exp", "run", *[a for s in sets for a in ("-S", s)]], proj).stdout
        must_run = {"distill", "evaluate"} | ({"train_teacher"} if "teacher.loss=movr" in sets else set())
        assert must_run <= ran_stages(out), (sets, ran_stages(out))
        m = stage_report(proj, "evaluate", "metrics.json")
        values = dict(s.split("=", 1) for s in sets)
        assert m["info"]["mixing"] == values["augment.method"] and m["info"]["method"] == values["distill.method"]
        relabel = stage_report(proj, "relabel", "relabel.json")
        assert relabel["teacher_pass"] == (values["distill.method"] in ("kd", "asym")), relabel  # ce, movr: none
        for role in ("teacher", "student"):
            test = m[role]["test"]
            assert 0.0 <= test["acc"] <= 1.0
            for name in ("msp", "mls", "energy", "ovr", "knn"):
                assert 0.0 <= test[name]["auroc"] <= 1.0 and 0.0 <= test[name]["oscr"] <= test["acc"] + 1e-9
            assert m[role]["jacobian"]["known_mean"] > 0
        if "teacher.loss=movr" in sets:
            assert m["info"]["teacher_loss"] == "movr"
            # the cosine head bounds the logits by the scale T = 32
            assert m["student"]["test"]["mean_max_logit_known"] <= 32.0


@pytest.mark.parametrize("sets", [
    ["benchmark=mnist", "split.index=3", "augment.method=gradmix"],        # 1-channel 28x28 images, masking
    ["benchmark=tinyimagenet", "split.index=1", "augment.method=cutmix"],  # 64x64, 20 known / 180 unknown
], ids=["mnist-s3-gradmix", "tinyimagenet-s1-cutmix"])
def test_other_benchmarks_and_splits_run_end_to_end(tiny_repro, tmp_path, sets):
    proj = clone(tiny_repro, tmp_path / "proj")
    sh(["dvc", "exp", "run", *[a for s in sets for a in ("-S", s)]], proj)
    m = stage_report(proj, "evaluate", "metrics.json")
    bench, split = sets[0].split("=")[1], int(sets[1].split("=")[1])
    assert (m["info"]["benchmark"], m["info"]["split"]) == (bench, split)
    known = {"mnist": 6, "tinyimagenet": 20}[bench]
    with open(proj / "data/split/manifest.csv") as f:
        rows = list(csv.DictReader(f))
    train_classes = {r["orig_class"] for r in rows if r["role"] == "train"}
    assert len(train_classes) == known and {r["role"] for r in rows} == {"train", "val", "test"}
    for role in ("teacher", "student"):
        assert 0.0 <= m[role]["test"]["mls"]["auroc"] <= 1.0 and m[role]["test"]["n_unknown"] > 0
