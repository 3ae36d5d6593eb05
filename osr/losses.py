"""Losses: the asymmetric-distillation family (methods.md §3.2: DIST, JMI, selective relabel) and m-OvR (§3.4).

Rows are samples, columns classes. The step losses take the student's logits and the cached teacher logits of
one planned step, so no teacher forward runs while the student trains.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from osr import OSRError

if TYPE_CHECKING:  # annotations only: osr.config is not among the DVC deps of this code
    from osr.config import Distill, Movr, Params


def _weighted_mean(v: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    return v.mean() if weight is None else (weight * v).sum() / weight.sum().clamp_min(1e-12)


def _pearson_loss(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """1 - mean Pearson correlation between matching rows of a and b (weighted mean with row weights)."""
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    rho = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-8)
    return 1.0 - _weighted_mean(rho, weight)


def _pearson_cols_loss(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """1 - mean Pearson correlation between matching columns of a and b, over the rows weighted by `weight`
    (0/1 weights: the correlation over the selected rows only)."""
    if weight is None:
        return _pearson_loss(a.T, b.T)
    w = weight[:, None]
    n = weight.sum().clamp_min(1e-12)
    a = (a - (w * a).sum(0) / n) * w.sqrt()
    b = (b - (w * b).sum(0) / n) * w.sqrt()
    rho = (a * b).sum(0) / (a.norm(dim=0) * b.norm(dim=0) + 1e-8)
    return 1.0 - rho.mean()


def _any_weight(loss: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """0 when every row weight is 0 (as for an empty batch), decided on the device (no host sync)."""
    return loss if weight is None else loss * (weight.sum() > 0).to(loss.dtype)


def _tempered(fn: Callable, z_s: torch.Tensor, z_t: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """fn (softmax or log-softmax over classes) of student and teacher logits at temperature tau, in fp32."""
    return fn(z_s.float() / tau, dim=1), fn(z_t.float() / tau, dim=1)


def dist_loss(z_s: torch.Tensor, z_t: torch.Tensor, tau: float, beta: float, gamma: float,
              weight: torch.Tensor | None = None) -> torch.Tensor:
    """DIST (arXiv 2205.10536): tau^2 * (beta * inter-class + gamma * intra-class correlation losses).
    0/1 row weights give DIST of the selected rows without indexing (no data-dependent shape)."""
    if len(z_s) == 0:
        return z_s.sum() * 0.0
    p_s, p_t = _tempered(F.softmax, z_s, z_t, tau)
    loss = tau**2 * (beta * _pearson_loss(p_s, p_t, weight) + gamma * _pearson_cols_loss(p_s, p_t, weight))
    return _any_weight(loss, weight)


def kl_loss(z_s: torch.Tensor, z_t: torch.Tensor, tau: float, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Hinton KD: tau^2 * KL(softmax(z_t/tau) || softmax(z_s/tau)), mean over rows (weighted by `weight`). Unlike
    DIST (correlations, nearly scale-free) it also transfers the teacher's confidence, i.e. the logit scale that
    MLS reads."""
    if len(z_s) == 0:
        return z_s.sum() * 0.0
    log_p_s, log_p_t = _tempered(F.log_softmax, z_s, z_t, tau)
    if weight is None:
        return tau**2 * F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)
    kl = F.kl_div(log_p_s, log_p_t, reduction="none", log_target=True).sum(1)
    return tau**2 * _weighted_mean(kl, weight)


Match = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def jmi_loss(z_s: torch.Tensor, z_t: torch.Tensor, partner: torch.Tensor, lam: float, match: Match) -> torch.Tensor:
    """'Joint mutual information' loss of the AD code: lam * match(z_s, z_t) + (1-lam) * match(z_s, z_t[partner]),
    `match` being DIST in the reference (`matcher`)."""
    return lam * match(z_s, z_t) + (1.0 - lam) * match(z_s, z_t[partner])


def soft_ce(z: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over rows (weighted by `weight`) of -sum_k target_k log softmax(z)_k; 0 for an empty batch."""
    if len(z) == 0:
        return z.sum() * 0.0
    return _weighted_mean(-(target * F.log_softmax(z.float(), dim=1)).sum(1), weight)


def two_hot(y_a: torch.Tensor, y_b: torch.Tensor, lam: torch.Tensor | float, num_classes: int,
            smoothing: float) -> torch.Tensor:
    """(r/C) * 1 + (1 - r) * [lam * e_{y_a} + (1 - lam) * e_{y_b}]."""
    lam = torch.as_tensor(lam, dtype=torch.float32, device=y_a.device).reshape(-1, 1)
    t = lam * F.one_hot(y_a, num_classes).float() + (1.0 - lam) * F.one_hot(y_b, num_classes).float()
    return smoothing / num_classes + (1.0 - smoothing) * t


RELABEL_RULES = ("argmax", "threshold", "none", "all")


def hard_mask(p_mixed: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor, rule: str,
              threshold: float) -> torch.Tensor:
    """Selective relabel: which mixed samples the teacher deems 'hard' (best class outside the two sources).

    argmax: p_other > p_src.  threshold: p_other >= threshold.  p = teacher softmax on the mixed image.
    none / all: every mixed sample easy / hard (the "no selective relabel" ablations of methods.md §4).
    """
    if rule in ("none", "all"):
        return torch.full((len(p_mixed),), rule == "all", dtype=torch.bool, device=p_mixed.device)
    src = F.one_hot(y_a, p_mixed.shape[1]).bool() | F.one_hot(y_b, p_mixed.shape[1]).bool()
    p_other = p_mixed.masked_fill(src, -1.0).max(1).values
    if rule == "argmax":
        p_src = p_mixed.masked_fill(~src, -1.0).max(1).values
        return p_other > p_src
    if rule == "threshold":
        return p_other >= threshold
    raise OSRError(f"relabel.rule: unknown rule {rule!r} (choose from {list(RELABEL_RULES)})")


def relabel_decision(logits: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor, lam: torch.Tensor | float,
                     rule: str, threshold: float, smoothing: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The selective-relabel decision of mixed samples from the teacher's logits on them [N, K]: the hard mask [N]
    (`hard_mask` of the teacher's softmax) and the two-hot targets [N, K] (`two_hot`) of sources y_a, y_b mixed
    at lam. The relabel stage applies it to cached logits, the student to a live teacher's on masked views."""
    hard = hard_mask(torch.softmax(logits.float(), 1), y_a, y_b, rule, threshold)
    return hard, two_hot(y_a, y_b, lam, logits.shape[1], smoothing)


MARGIN_MODES = ("literal", "symmetric")


def movr_loss(z: torch.Tensor, y: torch.Tensor, cfg: Movr) -> torch.Tensor:
    """One-vs-rest sigmoid BCE on s_k = cos(theta_k +- m), summed over classes, mean over the batch.

    z are cosine-head logits (scale * cos theta). ``literal``: +m on every class (the printed equation);
    ``symmetric``: +m on the target, -m on the others (the form that implies a 2m prototype gap).
    """
    cos = (z.float() / cfg.scale).clamp(-1 + 1e-7, 1 - 1e-7)
    theta = torch.acos(cos)
    target = F.one_hot(y, z.shape[1]).bool()
    if cfg.margin_mode == "literal":
        theta = theta + cfg.margin
    elif cfg.margin_mode == "symmetric":
        theta = torch.where(target, theta + cfg.margin, theta - cfg.margin)
    else:
        raise OSRError(f"movr.margin_mode: unknown mode {cfg.margin_mode!r} (choose from {list(MARGIN_MODES)})")
    s = torch.cos(theta.clamp(0.0, math.pi))
    return F.binary_cross_entropy_with_logits(cfg.scale * s, target.float(), reduction="none").sum(1).mean()


@dataclass(frozen=True)
class Step:
    """One planned student step. Teacher logits are cached: raw view (all steps), mixed view (mixed steps)."""
    y: torch.Tensor
    mixed: bool
    partner: torch.Tensor
    lam: float
    t_raw: torch.Tensor | None = None
    t_mixed: torch.Tensor | None = None
    hard: torch.Tensor | None = None
    target: torch.Tensor | None = None
    rows: tuple[torch.Tensor, torch.Tensor] | None = None  # (hard, easy) row indices when known on the host

    def hard_easy(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Row selectors of the hard and the easy samples (`on_rows`): host-known indices (cached steps), else 0/1
        weights from the mask (a live teacher's: boolean indexing would wait for the device to know the count)."""
        if self.rows is not None:
            return self.rows
        return self.hard.float(), (~self.hard).float()


def on_rows(fn: Callable[..., torch.Tensor], rows: torch.Tensor, *tensors: torch.Tensor) -> torch.Tensor:
    """fn of the selected rows of `tensors`: `rows` are row indices (indexed) or 0/1 row weights (passed on as
    fn's `weight`, so no shape depends on the data)."""
    if rows.is_floating_point():
        return fn(*tensors, weight=rows)
    return fn(*(t[rows] for t in tensors))


HARD_REDUCTIONS = ("hard", "batch")
DIVERGENCES = ("dist", "kl")


def matcher(distill: Distill) -> Match:
    """The distillation term between student and teacher logits that `distill.divergence` names: DIST (reference)
    or KL; with `weight`, over the rows it weighs."""
    if distill.divergence == "dist":
        return lambda z_s, z_t, weight=None: dist_loss(z_s, z_t, distill.tau, distill.beta, distill.gamma, weight)
    if distill.divergence == "kl":
        return lambda z_s, z_t, weight=None: kl_loss(z_s, z_t, distill.tau, weight)
    raise OSRError(f"distill.divergence: unknown divergence {distill.divergence!r} (choose from {list(DIVERGENCES)})")


def _mix_ce(z: torch.Tensor, s: Step) -> torch.Tensor:
    return s.lam * F.cross_entropy(z.float(), s.y) + (1.0 - s.lam) * F.cross_entropy(z.float(), s.y[s.partner])


def ce_step(z: torch.Tensor, s: Step, p: Params) -> torch.Tensor:
    """The plain (MSA) student: CE on raw steps, lam-weighted CE on mixed steps."""
    return _mix_ce(z, s) if s.mixed else F.cross_entropy(z.float(), s.y)


def kd_step(z: torch.Tensor, s: Step, p: Params) -> torch.Tensor:
    """Symmetric KD: the teacher sees the same (possibly mixed) image as the student."""
    match = matcher(p.distill)
    if s.mixed:
        return _mix_ce(z, s) + match(z, s.t_mixed)
    return p.distill.alpha * F.cross_entropy(z.float(), s.y) + match(z, s.t_raw)


def hard_loss(z: torch.Tensor, target: torch.Tensor, hard: torch.Tensor, reduction: str) -> torch.Tensor:
    """L_H: soft CE of the hard samples against their two-hot targets, averaged over the hard samples ("hard",
    the reference code: each hard sample weighs 1/|H|) or summed over them / batch size ("batch" [ours]).
    `hard` selects rows as in `on_rows`: row indices or 0/1 row weights."""
    if reduction == "hard":
        return on_rows(soft_ce, hard, z, target)
    if reduction == "batch":
        return on_rows(soft_ce, hard, z, target) * (hard.sum() if hard.is_floating_point() else len(hard)) / len(z)
    raise OSRError(f"distill.hard_reduction: unknown reduction {reduction!r} (choose from {list(HARD_REDUCTIONS)})")


def asym_step(z: torch.Tensor, s: Step, p: Params) -> torch.Tensor:
    """Asymmetric distillation: raw teacher logits guide the student on mixed images (L_E + L_H + L_JMI).

    Each term of the mixed step has its weight (`easy`, `jmi`; 1 in the reference); `mixed_ce` > 0 adds the plain
    mixed student's lam-weighted CE on every mixed sample [ours]. A term of weight 0 is not computed.
    """
    d, match = p.distill, matcher(p.distill)
    if not s.mixed:
        return d.alpha * F.cross_entropy(z.float(), s.y) + match(z, s.t_raw)
    hard, easy = s.hard_easy()
    loss = d.easy * on_rows(match, easy, z, s.t_raw) if d.easy else z.sum() * 0.0
    loss = loss + hard_loss(z, s.target, hard, d.hard_reduction)
    if d.jmi:
        loss = loss + d.jmi * jmi_loss(z, s.t_raw, s.partner, s.lam, match)
    if d.mixed_ce:
        loss = loss + d.mixed_ce * _mix_ce(z, s)
    return loss


def both_views(step_loss: Callable[[torch.Tensor, Step, Params], torch.Tensor], s: Step,
               p: Params) -> Callable[[torch.Tensor], torch.Tensor]:
    """[ours] The loss of a mixed step whose student sees the raw and the mixed view stacked ([raw; mixed], one
    forward): `raw_on_mixed` x the method's raw-step loss on the raw half + its mixed-step loss on the mixed half.

    The hypothesis it tests: in the reference step a mixed step has no raw-view term, so half of the steps never
    tell the student how confident to be on an un-mixed image, the logit scale that MLS reads. Measured on the
    claims profile it does not restore that scale (README, "Giving the student the raw view back").
    """
    raw = replace(s, mixed=False)

    def loss(z: torch.Tensor) -> torch.Tensor:
        n = len(s.y)
        return p.distill.raw_on_mixed * step_loss(z[:n], raw, p) + step_loss(z[n:], s, p)
    return loss


def movr_step(z: torch.Tensor, s: Step, p: Params) -> torch.Tensor:
    """m-OvR student (no teacher): OvR loss on raw steps, lam-weighted over the two sources on mixed steps."""
    if not s.mixed:
        return movr_loss(z, s.y, p.movr)
    return s.lam * movr_loss(z, s.y, p.movr) + (1.0 - s.lam) * movr_loss(z, s.y[s.partner], p.movr)


@dataclass(frozen=True)
class StepLoss:
    """A `distill.method` (and, with `teacher_loss`, a `teacher.loss`: osr.teacher.TEACHER_LOSSES) entry: the loss of
    the student's logits on one planned step, and what it needs. `reads_teacher`: teacher logits (cached for planned
    views; with a masking method the frozen teacher runs live on the masked view). `movr_head`: a cosine head at
    `movr.scale` and the rotation head weighted `movr.rotation`. `settings`: the params sections its loss reads."""
    fn: Callable[[torch.Tensor, Step, Params], torch.Tensor]
    reads_teacher: bool = False
    teacher_loss: bool = False
    movr_head: bool = False
    settings: tuple[str, ...] = ()

    def __call__(self, z: torch.Tensor, s: Step, p: Params) -> torch.Tensor:
        return self.fn(z, s, p)

    def rotation(self, movr: Movr) -> float:
        """Weight of the rotation-prediction term (0: no rotation head)."""
        return movr.rotation if self.movr_head else 0.0

    def head(self, movr: Movr) -> dict:
        """`osr.models.new_model`'s head arguments for a model trained by this loss."""
        return {"head": "cosine", "scale": movr.scale, "rotation": movr.rotation > 0} if self.movr_head else {}


STEP_LOSSES: dict[str, StepLoss] = {
    "ce": StepLoss(ce_step, teacher_loss=True),
    "kd": StepLoss(kd_step, reads_teacher=True, settings=("distill",)),
    "asym": StepLoss(asym_step, reads_teacher=True, settings=("distill",)),
    "movr": StepLoss(movr_step, teacher_loss=True, movr_head=True, settings=("movr",)),
}
