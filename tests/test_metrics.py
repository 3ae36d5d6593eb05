from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, roc_auc_score

from conftest import composed
from osr.metrics import fpr_at_tpr, open_set_metrics, oscr
from osr.scores import SCORES, Score, bank_of, energy, knn, mls, msp, needs_bank, ovr


def test_oscr_hand_worked_example():
    # Known scores 0.9 (correct), 0.8 (wrong), 0.4 (correct); unknown scores 0.7, 0.3.
    # Thresholds descending: 0.9 -> (FPR 0, CCR 1/3); 0.8 -> (0, 1/3); 0.7 -> (1/2, 1/3); 0.4 -> (1/2, 2/3);
    # 0.3 -> (1, 2/3). Trapezoids: 0.5 * 1/3 + 0.5 * 2/3 = 0.5.
    val = oscr(np.array([0.9, 0.8, 0.4]), np.array([1, 0, 1]), np.array([0.7, 0.3]))
    assert val == pytest.approx(0.5)


def test_oscr_equals_auroc_when_every_known_is_correct_and_handles_ties():
    rng = np.random.default_rng(0)
    sk, su = rng.normal(1, 1, 200).round(1), rng.normal(0, 1, 150).round(1)  # rounding makes ties
    auroc = roc_auc_score(np.r_[np.ones(200), np.zeros(150)], np.r_[sk, su])
    assert oscr(sk, np.ones(200), su) == pytest.approx(auroc, abs=1e-12)
    assert oscr(sk, np.r_[np.ones(100), np.zeros(100)], su) < auroc


def test_fpr95_and_open_set_metrics_ranges():
    sk = np.linspace(0.05, 1.0, 20)  # 95 % of knowns accepted at threshold 0.1
    su = np.array([0.0, 0.12, 0.5, 0.99])
    assert fpr_at_tpr(sk, su) == pytest.approx(0.75)
    m = open_set_metrics(sk, np.ones(20), su)
    assert set(m) == {"auroc", "oscr", "fpr95", "aupr_in", "aupr_out"}
    assert all(0.0 <= v <= 1.0 for v in m.values())


def test_scores_are_higher_for_confident_logits():
    z = torch.tensor([[5.0, 0.0, 0.0], [0.5, 0.4, 0.3]])
    settings = composed().evaluate
    for name, score in SCORES.items():
        if not score.needs_bank:
            s = score(z, **score.settings_from(settings))
            assert s[0] > s[1], name
    assert msp(z)[0].item() == pytest.approx(torch.softmax(z[0], 0).max().item())
    assert mls(z).tolist() == [5.0, 0.5]
    assert energy(z, temperature=2.0)[0].item() == pytest.approx(2.0 * torch.logsumexp(z[0] / 2.0, 0).item())


def test_score_entries_declare_their_needs_and_read_their_own_settings():
    section = replace(composed().evaluate, energy_temperature=2.0, knn_k=5)
    assert SCORES["energy"].settings_from(section) == {"temperature": 2.0}
    assert SCORES["knn"].settings_from(section) == {"k": 5} and SCORES["mls"].settings_from(section) == {}
    assert needs_bank(["mls", "knn"]) and not needs_bank(["msp", "mls", "energy", "ovr"])
    z = torch.tensor([[5.0, 0.0, 0.0]])
    assert SCORES["energy"](z, **SCORES["energy"].settings_from(section)).item() == \
        pytest.approx(energy(z, temperature=2.0).item())
    assert Score(mls)(z).item() == 5.0  # a new score is one entry


def test_ovr_score_is_minus_the_samplewise_one_vs_rest_loss():
    z = torch.tensor([[2.0, -1.0, 0.5]])
    sig = torch.sigmoid(z[0])
    u = -torch.log(sig[0]) - torch.log(1 - sig[1]) - torch.log(1 - sig[2])
    assert ovr(z).item() == pytest.approx(-u.item(), rel=1e-6)
    # a confident one-vs-rest pattern (one positive, rest negative) beats an ambiguous one
    assert ovr(torch.tensor([[10.0, -10.0, -10.0], [10.0, 10.0, -10.0]])).tolist()[0] > -1e-3 > \
        ovr(torch.tensor([[10.0, 10.0, -10.0]])).item()


def test_knn_score_sums_topk_cosines_per_class_and_normalises():
    bank_f = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.9, 0.0], [0.0, 1.0], [0.1, 1.0], [0.0, 0.9]])
    bank = bank_of(bank_f, torch.tensor([0, 0, 0, 1, 1, 1]))
    q = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    s = knn(torch.zeros(2, 2), q, bank, k=2)
    cos = torch.nn.functional.normalize(q, dim=1) @ bank.features.T
    s0 = cos[0, :3].topk(2).values.sum() / (cos[0, :3].topk(2).values.sum() + cos[0, 3:].topk(2).values.sum())
    assert s[0].item() == pytest.approx(s0.item(), rel=1e-6)
    assert s[0] > s[1] and s[1].item() == pytest.approx(0.5, abs=1e-6)  # the diagonal query is equidistant
    with pytest.raises(ValueError, match="bank"):
        knn(torch.zeros(2, 2), q, k=2)


def test_jacobian_norm_matches_the_exact_frobenius_norm_of_a_linear_map():
    from osr.jacobian import class_separation, jacobian_norm

    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(5, 3 * 4 * 4, generator=torch.Generator().manual_seed(0)))

        def features(self, x):
            return x.flatten(1) @ self.w.T

    model = Linear()
    x = torch.randint(0, 256, (64, 3, 4, 4), dtype=torch.uint8)
    exact = model.w.detach().norm().item()  # J of x -> W x is W, whatever the input
    est = jacobian_norm(model, x, n_proj=16, batch_size=32)
    assert est.shape == (64,) and np.all(est > 0)
    assert est.mean() == pytest.approx(exact, rel=0.1)
    f = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    assert class_separation(f, torch.tensor([0, 0, 1, 1])) < 0.2
    assert class_separation(f, torch.tensor([0, 1, 0, 1])) > 0.9


def test_open_set_macro_f1_rejects_below_the_validation_quantile():
    from osr.metrics import open_set_macro_f1

    s_val = np.arange(1, 11, dtype=float)  # tau = 10 % quantile = 1.9
    s_test = np.array([5.0, 3.0, 1.0, 0.5, 8.0])
    pred = np.array([0, 1, 1, 0, 1])
    y = np.array([0, 1, 1, -1, -1])
    # predictions: 0, 1, unknown(2), unknown(2), 1 vs truth 0, 1, 1, 2, 2
    expected = f1_score([0, 1, 1, 2, 2], [0, 1, 2, 2, 1], labels=[0, 1, 2], average="macro")
    assert open_set_macro_f1(s_val, s_test, pred, y, 2) == pytest.approx(expected)
    # reject=0: tau = 1.0, so the known scored 1.0 is accepted (and right)
    accept_more = f1_score([0, 1, 1, 2, 2], [0, 1, 1, 2, 1], labels=[0, 1, 2], average="macro")
    assert open_set_macro_f1(s_val, s_test, pred, y, 2, reject=0.0) == pytest.approx(accept_more)
