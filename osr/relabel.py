"""Teacher outputs over the student's plan, and the selective-relabel decision computed from them.

``teacher_outputs`` is the one expensive pass (a frozen-teacher forward over every planned raw and mixed
view); ``relabel_targets`` is a vectorised pass over its cached logits, so a threshold or smoothing change
costs seconds (the tuning flow relies on that).
"""
from __future__ import annotations

import numpy as np
import torch

from osr import check_finite
from osr.augment import BaseAug, planned_steps
from osr.losses import relabel_decision
from osr.train import autocast, progress

FP16_MAX = float(np.finfo(np.float16).max)  # the cache's dtype: a larger logit would be stored as inf


@torch.inference_mode()
def teacher_outputs(teacher: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, plan: dict[str, np.ndarray],
                    aug: BaseAug, amp: bool = True, where: str = "teacher pass") -> dict[str, np.ndarray]:
    """Logits [E, S, B, K] (fp16) of the frozen teacher on the raw and (mixed steps only) mixed views. A logit the
    fp16 cache cannot hold (a diverged teacher) stops the pass with one line naming `where` and the epoch."""
    teacher.eval()
    epochs, steps, batch = plan["order"].shape
    k = teacher.fc.out_features
    raw = np.zeros((epochs, steps, batch, k), np.float16)
    mixed = np.zeros_like(raw)
    for e in range(epochs):
        out = torch.zeros((steps, 2 * batch, k), device=x.device)  # the epoch's logits stay on the device
        for s, st in enumerate(progress(planned_steps(x, y, plan, e, aug), total=steps,
                                        desc=f"teacher pass {e + 1}/{epochs}")):
            views = st.x_raw if st.x_mixed is None else torch.cat([st.x_raw, st.x_mixed])
            with autocast(x.device, amp):
                out[s, :len(views)] = teacher(views).float()
        z = out.cpu().numpy()  # one copy (and host synchronisation) per epoch
        check_finite(z, f"{where}: teacher logits of epoch {e + 1} (a diverged teacher?)", FP16_MAX)
        raw[e] = z[:, :batch]
        mixed[e] = np.where(plan["mixed"][e][:, None, None], z[:, batch:], 0)
    return {"t_raw": raw, "t_mixed": mixed}


def unread_outputs(plan: dict[str, np.ndarray], k: int) -> dict[str, np.ndarray]:
    """The cache of a student whose loss reads no teacher logits (ce, movr): zeros of the shapes the distill stage
    loads, marked `teacher_pass` False (tuning refuses it). It replaces the frozen-teacher pass over every planned
    view: on the claims profile a quarter of a `ce` cell's time, spent on logits nobody reads."""
    shape = plan["order"].shape
    zeros = np.zeros((*shape, k), np.float16)
    return {"t_raw": zeros, "t_mixed": zeros, "hard": np.zeros(shape, bool), "target": zeros,
            "teacher_pass": np.array(False)}


def relabel_targets(t_mixed: np.ndarray, y_plan: np.ndarray, plan: dict[str, np.ndarray], rule: str,
                    threshold: float, smoothing: float) -> dict[str, np.ndarray]:
    """Hard mask [E, S, B] (mixed steps only) and two-hot targets [E, S, B, K] for every planned sample.

    y_plan: labels of the planned samples [E, S, B]; the partner's label is y_plan[..., partner].
    """
    e, s, b, k = t_mixed.shape
    y_a = torch.from_numpy(y_plan.reshape(-1))
    y_b = torch.from_numpy(np.take_along_axis(y_plan, plan["partner"], axis=2).reshape(-1))
    lam = torch.from_numpy(np.repeat(plan["lam"].reshape(-1), b))
    hard, target = relabel_decision(torch.from_numpy(t_mixed.reshape(-1, k)), y_a, y_b, lam, rule, threshold,
                                    smoothing)
    return {"hard": hard.numpy().reshape(e, s, b) & plan["mixed"][..., None],
            "target": target.numpy().reshape(e, s, b, k).astype(np.float16)}


def relabel_stats(hard: np.ndarray, mixed: np.ndarray, t_raw: np.ndarray, y_plan: np.ndarray) -> dict:
    n_mixed = int(mixed.sum()) * hard.shape[2]
    return {"hard_fraction": float(hard.sum() / max(1, n_mixed)),
            "hard_fraction_per_epoch": [float(h.sum() / max(1, m.sum() * hard.shape[2])) for h, m in zip(hard, mixed)],
            "mixed_samples": n_mixed,
            "teacher_raw_view_acc": float((t_raw.argmax(-1) == y_plan).mean())}
