import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, compose
from osr import OSRError
from osr.augment import BaseAug, make_plan, planned_steps
from osr.config import Movr, Params, validate
from osr.distill import student_batches
from osr.losses import (
    Step,
    asym_step,
    both_views,
    ce_step,
    dist_loss,
    hard_loss,
    hard_mask,
    jmi_loss,
    kd_step,
    kl_loss,
    matcher,
    movr_loss,
    movr_step,
    relabel_decision,
    soft_ce,
    two_hot,
)

P = validate(compose(ROOT / "conf", ["profile=adpaper"]))  # AD as published: tau 1, the selective relabel
DIST = {"tau": 1.0, "beta": 1.0, "gamma": 1.0}  # the reference's DIST


def dist(z_s: torch.Tensor, z_t: torch.Tensor) -> torch.Tensor:
    return dist_loss(z_s, z_t, **DIST)


def distill_cfg(**changes) -> Params:
    """The adpaper composition's params, its distill section with `changes`."""
    return replace(P, distill=replace(P.distill, **changes))


def movr_cfg(**changes) -> Movr:
    return replace(P.movr, **changes)


def test_dist_is_zero_for_identical_logits_and_positive_otherwise():
    z = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 3.0], [1.0, 1.0, 0.0]])
    assert dist(z, z).item() == pytest.approx(0.0, abs=1e-6)
    assert dist(z, -z).item() > 1.0


def test_dist_hand_worked_value():
    # Two samples, two classes: every row/column of softmax(z) is perfectly (anti-)correlated, so the
    # inter-class Pearson terms are +1 (same ordering) and the intra-class terms are +1 as well.
    z_s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z_t = torch.tensor([[3.0, 0.0], [0.0, 2.0]])
    assert dist(z_s, z_t).item() == pytest.approx(0.0, abs=1e-5)
    # Reversing the teacher's preference flips every correlation to -1: loss = beta*2 + gamma*2 = 4.
    assert dist(z_s, z_t.flip(1)).item() == pytest.approx(4.0, abs=1e-4)
    # tau^2 scaling and the beta/gamma weights.
    # tau^2 * beta * L_inter = 4 * 0.5 * 2 (two classes: softened rows keep their order at any tau).
    assert dist_loss(z_s, z_t.flip(1), 2.0, 0.5, 0.0).item() == pytest.approx(4.0, abs=1e-3)


def test_jmi_interpolates_between_the_two_sources():
    torch.manual_seed(0)
    z_s, z_t = torch.randn(6, 4), torch.randn(6, 4)
    perm = torch.tensor([1, 0, 3, 2, 5, 4])
    assert jmi_loss(z_s, z_t, perm, 1.0, dist).item() == pytest.approx(dist(z_s, z_t).item(), rel=1e-6)
    assert jmi_loss(z_s, z_t, perm, 0.0, dist).item() == pytest.approx(dist(z_s, z_t[perm]).item(), rel=1e-6)
    mid = 0.3 * dist(z_s, z_t) + 0.7 * dist(z_s, z_t[perm])
    assert jmi_loss(z_s, z_t, perm, 0.3, dist).item() == pytest.approx(mid.item(), rel=1e-6)


def test_two_hot_and_smoothing():
    t = two_hot(torch.tensor([0, 2]), torch.tensor([1, 2]), 0.7, 4, smoothing=0.0)
    assert torch.allclose(t[0], torch.tensor([0.7, 0.3, 0.0, 0.0]))
    assert torch.allclose(t[1], torch.tensor([0.0, 0.0, 1.0, 0.0]))
    s = two_hot(torch.tensor([0]), torch.tensor([1]), 0.5, 4, smoothing=0.4)
    assert torch.allclose(s[0], torch.tensor([0.4, 0.4, 0.1, 0.1]))
    assert torch.allclose(s.sum(1), torch.ones(1))


def test_hard_mask_rules():
    p = torch.tensor([[0.5, 0.3, 0.2],    # sources 0,1; best other 0.2  -> easy
                      [0.2, 0.2, 0.6],    # best other 0.6 > sources     -> hard (both rules at 0.5)
                      [0.35, 0.25, 0.4]])  # other 0.4 > src 0.35: argmax hard, threshold 0.5 easy
    ya, yb = torch.tensor([0, 0, 0]), torch.tensor([1, 1, 1])
    assert hard_mask(p, ya, yb, "argmax", 0.5).tolist() == [False, True, True]
    assert hard_mask(p, ya, yb, "threshold", 0.5).tolist() == [False, True, False]
    assert hard_mask(p, ya, yb, "threshold", 0.1).tolist() == [True, True, True]
    assert hard_mask(p, ya, yb, "none", 0.5).tolist() == [False, False, False]
    assert hard_mask(p, ya, yb, "all", 0.5).tolist() == [True, True, True]
    with pytest.raises(OSRError, match="relabel.rule"):
        hard_mask(p, ya, yb, "nope", 0.5)


def test_relabel_decision_reads_the_teachers_logits_in_fp32():
    """From fp16 logits (the relabel stage's cache): the softmax's hard mask and the smoothed two-hot targets."""
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.2, 0.2, 0.6]])).half()
    ya, yb = torch.tensor([0, 0]), torch.tensor([1, 1])
    hard, target = relabel_decision(logits, ya, yb, torch.tensor([0.7, 0.5]), "threshold", 0.5, 0.3)
    assert hard.tolist() == [False, True]
    assert target.dtype == torch.float32 and torch.allclose(target.sum(1), torch.ones(2))
    assert torch.allclose(target[0], torch.tensor([0.1 + 0.7 * 0.7, 0.1 + 0.7 * 0.3, 0.1]))
    with pytest.raises(OSRError, match="relabel.rule"):
        relabel_decision(logits, ya, yb, 0.5, "most", 0.5, 0.0)


def test_soft_ce_matches_cross_entropy_for_one_hot():
    z = torch.randn(5, 3)
    y = torch.tensor([0, 1, 2, 1, 0])
    assert soft_ce(z, F.one_hot(y, 3).float()).item() == pytest.approx(F.cross_entropy(z, y).item(), rel=1e-5)
    assert soft_ce(z[:0], F.one_hot(y, 3).float()[:0]).item() == 0.0


def _mixed_step(hard):
    torch.manual_seed(1)
    y = torch.tensor([0, 1, 2, 3])
    perm = torch.tensor([1, 0, 3, 2])
    return Step(y=y, mixed=True, partner=perm, lam=0.6, t_raw=torch.randn(4, 4), t_mixed=torch.randn(4, 4),
                hard=torch.tensor(hard), target=two_hot(y, y[perm], 0.6, 4, 0.0))


def test_asym_step_splits_easy_and_hard():
    cfg = distill_cfg()
    z = torch.randn(4, 4)
    all_easy, all_hard = _mixed_step([False] * 4), _mixed_step([True] * 4)
    jmi = jmi_loss(z, all_easy.t_raw, all_easy.partner, 0.6, dist)
    assert asym_step(z, all_easy, cfg).item() == pytest.approx((dist(z, all_easy.t_raw) + jmi).item(), rel=1e-5)
    expect_hard = soft_ce(z, all_hard.target) + jmi
    assert asym_step(z, all_hard, cfg).item() == pytest.approx(expect_hard.item(), rel=1e-5)


@pytest.mark.parametrize("reduction", ["hard", "batch"])
def test_asym_step_with_host_row_indices_equals_the_mask(reduction):
    """Cached steps pass hard/easy row indices computed on the host, a live teacher's mask becomes 0/1 row
    weights (neither waits on the device for a count); loss and gradient agree."""
    import dataclasses
    cfg = distill_cfg(hard_reduction=reduction)
    masked = _mixed_step([True, False, False, True])
    indexed = dataclasses.replace(masked, rows=(torch.tensor([0, 3]), torch.tensor([1, 2])))
    grads = []
    for step in (masked, indexed):
        z = torch.randn(4, 4, generator=torch.Generator().manual_seed(3)).requires_grad_(True)
        loss = asym_step(z, step, cfg)
        loss.backward()
        grads.append((loss.detach(), z.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("divergence", ["dist", "kl"])
def test_row_weights_equal_the_selected_rows(divergence):
    """0/1 row weights give the loss of the selected rows, value and gradient; no row selected gives 0."""
    g = torch.Generator().manual_seed(5)
    z_s, z_t = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    keep = torch.tensor([1, 0, 1, 1, 0, 0, 1, 1], dtype=torch.bool)
    match = matcher(distill_cfg(divergence=divergence, tau=2.0).distill)
    target = torch.softmax(z_t, 1)
    for fn in (match, soft_ce):
        subset, weighted = z_s.clone().requires_grad_(True), z_s.clone().requires_grad_(True)
        other = target if fn is soft_ce else z_t
        expect = fn(subset[keep], other[keep])
        got = fn(weighted, other, weight=keep.float())
        expect.backward()
        got.backward()
        torch.testing.assert_close(got, expect, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(weighted.grad, subset.grad, rtol=1e-4, atol=1e-6)
        assert not weighted.grad[~keep].any()
        none = z_s.clone().requires_grad_(True)
        zero = fn(none, other, weight=torch.zeros(8))
        zero.backward()
        assert zero.item() == 0.0 and torch.isfinite(none.grad).all()


def test_a_live_teachers_mixed_step_has_no_data_dependent_shape():
    """The masked view's step (hard mask from the live teacher's logits) runs on the `meta` device, which has
    shapes but no values: no op waits for the data to know a shape (boolean indexing would, a host sync on CUDA).
    """
    meta = torch.device("meta")
    y, perm = torch.tensor([0, 1, 2, 3], device=meta), torch.tensor([1, 2, 3, 0], device=meta)
    t_m, t_raw = torch.randn(4, 4, device=meta), torch.randn(4, 4, device=meta)
    z = torch.randn(4, 4, device=meta, requires_grad=True)
    for rule, reduction, divergence in [("threshold", "hard", "dist"), ("argmax", "batch", "kl")]:
        hard = hard_mask(torch.softmax(t_m, 1), y, y[perm], rule, 0.3)
        s = Step(y=y, mixed=True, partner=perm, lam=0.6, t_raw=t_raw, t_mixed=t_m, hard=hard,
                 target=two_hot(y, y[perm], 0.6, 4, 0.0))
        loss = asym_step(z, s, distill_cfg(hard_reduction=reduction, divergence=divergence))
        loss.backward()
        assert loss.shape == () and z.grad.shape == (4, 4)


def test_asym_ablation_switches_remove_or_add_exactly_their_term():
    z = torch.randn(4, 4)
    s = _mixed_step([True, False, False, True])
    easy, hard = ~s.hard, s.hard
    l_e = dist(z[easy], s.t_raw[easy])
    l_h = soft_ce(z[hard], s.target[hard])
    l_jmi = jmi_loss(z, s.t_raw, s.partner, s.lam, dist)
    mix_ce = s.lam * F.cross_entropy(z, s.y) + (1 - s.lam) * F.cross_entropy(z, s.y[s.partner])
    full = asym_step(z, s, distill_cfg()).item()
    assert full == pytest.approx((l_e + l_h + l_jmi).item(), rel=1e-6)
    assert asym_step(z, s, distill_cfg(easy=0.0)).item() == pytest.approx((l_h + l_jmi).item(), rel=1e-6)
    assert asym_step(z, s, distill_cfg(jmi=0.0)).item() == pytest.approx((l_e + l_h).item(), rel=1e-6)
    assert asym_step(z, s, distill_cfg(mixed_ce=0.5)).item() == pytest.approx(full + 0.5 * mix_ce.item(), rel=1e-6)
    # L_H over the batch: 2 hard samples of 4 weigh half as much as their mean
    batch = asym_step(z, s, distill_cfg(hard_reduction="batch")).item()
    assert batch == pytest.approx((l_e + l_h * 2 / 4 + l_jmi).item(), rel=1e-6)
    # the raw step is untouched by the mixed-step switches
    raw = Step(y=s.y, mixed=False, partner=s.partner, lam=1.0, t_raw=s.t_raw)
    off = distill_cfg(easy=0.0, jmi=0.0, mixed_ce=2.0, hard_reduction="batch")
    assert asym_step(z, raw, off).item() == pytest.approx(asym_step(z, raw, distill_cfg()).item(), rel=1e-7)


@pytest.mark.parametrize("step_loss", [asym_step, ce_step, kd_step])
def test_raw_on_mixed_adds_the_raw_steps_loss_on_the_stacked_raw_half(step_loss):
    """[ours] both views: weight x the raw step's loss of rows [:B] + the mixed step's loss of rows [B:]."""
    s = _mixed_step([True, False, False, True])
    z_raw, z_mixed = torch.randn(4, 4), torch.randn(4, 4)
    raw = Step(y=s.y, mixed=False, partner=s.partner, lam=1.0, t_raw=s.t_raw)
    cfg = distill_cfg(raw_on_mixed=0.5)
    expect = 0.5 * step_loss(z_raw, raw, cfg) + step_loss(z_mixed, s, cfg)
    assert both_views(step_loss, s, cfg)(torch.cat([z_raw, z_mixed])).item() == pytest.approx(expect.item(), rel=1e-6)
    # the raw half only changes the raw term: a worse raw half costs exactly 0.5 x its raw loss more
    worse = torch.cat([-10 * F.one_hot(s.y, 4).float(), z_mixed])
    gap = both_views(step_loss, s, cfg)(worse) - both_views(step_loss, s, cfg)(torch.cat([z_raw, z_mixed]))
    assert gap.item() == pytest.approx(0.5 * (step_loss(worse[:4], raw, cfg) - step_loss(z_raw, raw, cfg)).item(),
                                       rel=1e-5)


def test_kl_divergence_option_transfers_the_teachers_scale():
    z_t = 8.0 * torch.eye(3)
    assert kl_loss(z_t, z_t, 1.0).item() == pytest.approx(0.0, abs=1e-6)
    # a student with the teacher's ranking but a tenth of its scale: DIST barely sees it, KL does
    assert dist(z_t / 10, z_t).item() < 1e-4 and kl_loss(z_t / 10, z_t, 1.0).item() > 0.5
    p_t, log_p_s = F.softmax(z_t / 2, 1), F.log_softmax(z_t / 20, 1)
    expect = 4 * (p_t * (p_t.log() - log_p_s)).sum(1).mean()
    assert kl_loss(z_t / 10, z_t, 2.0).item() == pytest.approx(expect.item(), rel=1e-5)
    s = _mixed_step([True, False, False, True])
    z = torch.randn(4, 4)
    kl = distill_cfg(divergence="kl")
    easy = ~s.hard
    expect = kl_loss(z[easy], s.t_raw[easy], 1.0) + soft_ce(z[s.hard], s.target[s.hard]) + \
        0.6 * kl_loss(z, s.t_raw, 1.0) + 0.4 * kl_loss(z, s.t_raw[s.partner], 1.0)
    assert asym_step(z, s, kl).item() == pytest.approx(expect.item(), rel=1e-5)
    with pytest.raises(OSRError, match="distill.divergence: unknown divergence 'l2'"):
        matcher(distill_cfg(divergence="l2").distill)(z, z)


def test_hard_loss_reductions_and_gradients():
    z = torch.randn(6, 3, requires_grad=True)
    target = two_hot(torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([1, 2, 0, 1, 2, 0]), 0.3, 3, 0.0)
    hard = torch.tensor([1.0, 0, 0, 0, 0, 0])  # 0/1 row weights (or row indices: tensor([0]))
    per_sample = -(target * F.log_softmax(z, 1)).sum(1)
    assert hard_loss(z, target, hard, "hard").item() == pytest.approx(per_sample[0].item(), rel=1e-6)
    assert hard_loss(z, target, hard, "batch").item() == pytest.approx(per_sample[0].item() / 6, rel=1e-6)
    hard_loss(z, target, hard, "batch").backward()
    assert z.grad[1:].abs().sum() == 0 and z.grad[0].abs().sum() > 0  # only the hard sample is trained
    assert hard_loss(z, target, torch.zeros(6), "batch").item() == 0.0
    assert hard_loss(z, target, torch.tensor([0]), "batch").item() == pytest.approx(per_sample[0].item() / 6, rel=1e-6)
    with pytest.raises(OSRError, match="distill.hard_reduction: unknown reduction 'sum'"):
        hard_loss(z, target, hard, "sum")


def test_raw_steps_and_plain_students():
    cfg = distill_cfg(alpha=0.5)
    z, t = torch.randn(4, 3), torch.randn(4, 3)
    y = torch.tensor([0, 1, 2, 0])
    raw = Step(y=y, mixed=False, partner=torch.arange(4), lam=1.0, t_raw=t)
    expect = 0.5 * F.cross_entropy(z, y) + dist(z, t)
    assert asym_step(z, raw, cfg).item() == pytest.approx(expect.item(), rel=1e-5)
    assert kd_step(z, raw, cfg).item() == pytest.approx(expect.item(), rel=1e-5)
    assert ce_step(z, raw, cfg).item() == pytest.approx(F.cross_entropy(z, y).item(), rel=1e-5)
    mixed = Step(y=y, mixed=True, partner=torch.tensor([1, 0, 3, 2]), lam=0.25, t_raw=t, t_mixed=t)
    expect = 0.25 * F.cross_entropy(z, y) + 0.75 * F.cross_entropy(z, y[mixed.partner])
    assert ce_step(z, mixed, cfg).item() == pytest.approx(expect.item(), rel=1e-5)
    assert math.isfinite(kd_step(z, mixed, cfg).item())


def _movr_by_hand(cos: torch.Tensor, y: int, scale: float, m_target: float, m_other: float) -> float:
    total = 0.0
    for k, c in enumerate(cos.tolist()):
        theta = math.acos(c) + (m_target if k == y else m_other)
        s = scale * math.cos(min(max(theta, 0.0), math.pi))
        p = 1 / (1 + math.exp(-s))
        total += -math.log(p) if k == y else -math.log(1 - p)
    return total


def test_movr_loss_literal_and_symmetric_margins_match_the_formulas():
    cos = torch.tensor([[0.8, 0.1, -0.3]])
    z, y = 4.0 * cos, torch.tensor([0])
    lit = movr_loss(z, y, movr_cfg(scale=4.0, margin=0.5, margin_mode="literal"))
    sym = movr_loss(z, y, movr_cfg(scale=4.0, margin=0.5, margin_mode="symmetric"))
    assert lit.item() == pytest.approx(_movr_by_hand(cos[0], 0, 4.0, 0.5, 0.5), rel=1e-4)
    assert sym.item() == pytest.approx(_movr_by_hand(cos[0], 0, 4.0, 0.5, -0.5), rel=1e-4)
    assert sym > lit  # -m on the negatives makes them harder; +m on the negatives (literal) makes them easier
    plain = movr_loss(z, y, movr_cfg(scale=4.0, margin=0.0))
    bce = F.binary_cross_entropy_with_logits(z, F.one_hot(y, 3).float(), reduction="sum")
    assert plain.item() == pytest.approx(bce.item(), rel=1e-5)


def test_movr_loss_is_finite_at_the_arccos_edges_and_rejects_unknown_modes():
    z = torch.tensor([[32.0, -32.0, 0.0]], requires_grad=True)
    loss = movr_loss(z, torch.tensor([0]), movr_cfg())
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    with pytest.raises(OSRError, match="movr.margin_mode"):
        movr_loss(z, torch.tensor([0]), movr_cfg(margin_mode="both"))


def test_movr_step_weights_the_two_sources_on_mixed_steps():
    z = 32.0 * torch.tensor([[0.5, 0.2], [0.1, 0.6]])
    y, partner = torch.tensor([0, 1]), torch.tensor([1, 0])
    cfg = distill_cfg()
    raw = movr_step(z, Step(y=y, mixed=False, partner=partner, lam=1.0), cfg)
    mixed = movr_step(z, Step(y=y, mixed=True, partner=partner, lam=0.25), cfg)
    assert raw.item() == pytest.approx(movr_loss(z, y, cfg.movr).item())
    assert mixed.item() == pytest.approx(0.25 * raw.item() + 0.75 * movr_loss(z, y[partner], cfg.movr).item(),
                                         rel=1e-6)


def test_step_loss_entries_declare_what_they_need():
    from osr.distill import needs_live_teacher
    from osr.losses import STEP_LOSSES
    from osr.teacher import TEACHER_LOSSES

    assert TEACHER_LOSSES == ("ce", "movr", "supcon", "gradmix_con", "noisebox_con")
    assert {n for n, e in STEP_LOSSES.items() if e.reads_teacher} == {"kd", "asym"}
    movr = movr_cfg(scale=16.0, rotation=0.1)
    assert STEP_LOSSES["movr"].head(movr) == {"head": "cosine", "scale": 16.0, "rotation": True}
    assert STEP_LOSSES["movr"].rotation(movr) == 0.1 and STEP_LOSSES["asym"].rotation(movr) == 0.0
    assert STEP_LOSSES["ce"].head(movr) == {} and STEP_LOSSES["movr"].settings == ("movr",)
    # a masked view depends on the student: only losses reading teacher logits need the live teacher there
    assert needs_live_teacher("gradmix", "asym") and needs_live_teacher("noisebox", "kd")
    assert not needs_live_teacher("cutmix", "asym") and not needs_live_teacher("gradmix", "ce")


@pytest.mark.parametrize("method", ["ce", "movr"])
def test_a_loss_that_declares_no_teacher_reads_no_teacher_field(method):
    """The relabel stage gives such a student a cache of zeros (no teacher pass): its loss must not change."""
    from osr.losses import STEP_LOSSES

    gen = torch.Generator().manual_seed(0)
    z, y, partner = torch.randn(6, 4, generator=gen), torch.tensor([0, 1, 2, 3, 0, 1]), torch.tensor([5, 4, 3, 2, 1, 0])

    def loss(teacher: float, mixed: bool) -> float:
        t = teacher * torch.randn(6, 4, generator=gen)
        step = Step(y=y, mixed=mixed, partner=partner, lam=0.3, t_raw=t, t_mixed=t, hard=t[:, 0] > 0,
                    target=t.softmax(1))
        return STEP_LOSSES[method](z, step, distill_cfg()).item()

    for mixed in (False, True):
        assert loss(0.0, mixed) == loss(5.0, mixed)


def test_raw_on_mixed_feeds_the_student_both_views_of_a_mixed_step_and_one_view_otherwise():
    """`distill.raw_on_mixed` > 0 [ours]: a mixed step's batch is [raw view; mixed view] of the same planned step."""
    x, y = torch.randint(0, 255, (32, 3, 8, 8), dtype=torch.uint8), torch.arange(32) % 4
    plan = make_plan(32, 8, 1, 3, "cutmix", 0.5, (8, 8))
    shape = plan["order"].shape
    cache = {"t_raw": np.random.default_rng(0).normal(size=(*shape, 4)).astype(np.float16),
             "t_mixed": np.zeros((*shape, 4), np.float16), "hard": np.zeros(shape, bool),
             "target": np.full((*shape, 4), 0.25, np.float16)}
    aug = BaseAug(randaugment=0)
    views = list(planned_steps(x, y, plan, 0, aug))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    both = list(student_batches(x, y, plan, cache, 0, aug, distill_cfg(raw_on_mixed=1.0)))
    one = list(student_batches(x, y, plan, cache, 0, aug, distill_cfg()))
    assert plan["mixed"][0].any() and not plan["mixed"][0].all()
    for st, (xb, objective), (x1, objective1) in zip(views, both, one, strict=True):
        if st.mixed:
            assert torch.equal(xb, torch.cat([st.x_raw, st.x_mixed])) and torch.equal(x1, st.x_mixed)
        else:
            assert torch.equal(xb, st.x_raw) and torch.equal(x1, st.x_raw)
            assert objective(model, xb).item() == pytest.approx(objective1(model, x1).item(), rel=1e-6)
        assert torch.isfinite(objective(model, xb))


def test_student_noise_exposure_appends_noise_images_whose_softmax_is_pulled_to_uniform():
    """`distill.noise_exposure` > 0 [ours]: every step's batch gains 1 / NOISE_SHARE as many noise images, and the
    objective gains the weighted uniform-softmax term on them; the step's own images and loss are unchanged."""
    from osr.objectives import NOISE_SHARE

    x, y = torch.randint(0, 255, (32, 3, 8, 8), dtype=torch.uint8), torch.arange(32) % 4
    plan = make_plan(32, 16, 1, 3, "cutmix", 0.5, (8, 8))
    shape = plan["order"].shape
    cache = {"t_raw": np.random.default_rng(0).normal(size=(*shape, 4)).astype(np.float16),
             "t_mixed": np.random.default_rng(1).normal(size=(*shape, 4)).astype(np.float16),
             "hard": np.zeros(shape, bool), "target": np.full((*shape, 4), 0.25, np.float16)}
    aug, model = BaseAug(randaugment=0), torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    plain = list(student_batches(x, y, plan, cache, 0, aug, distill_cfg()))
    noisy = list(student_batches(x, y, plan, cache, 0, aug, distill_cfg(noise_exposure=2.0)))
    for (xp, op), (xn, on) in zip(plain, noisy, strict=True):
        n = 16 // NOISE_SHARE
        assert len(xn) == len(xp) + n and torch.equal(xn[:len(xp)], xp)
        assert xn[len(xp):].min() >= 0 and xn[len(xp):].max() <= 1 and xn[len(xp):].std() > 0.2  # pixel noise
        uniform = -F.log_softmax(model(xn[len(xp):]), 1).mean()
        torch.testing.assert_close(on(model, xn) - op(model, xp), 2.0 * uniform, rtol=1e-5, atol=1e-5)
