"""Stage distill: the student trained on the plan by ce | kd | asym | movr, reading cached teacher logits."""
from __future__ import annotations

from stages import answer_help

answer_help(__name__, __spec__, __doc__)  # --help answers here, before the imports below load torch

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from osr import check_finite
from osr.distill import needs_live_teacher, student_fingerprint, train_student
from osr.io import load_npz
from osr.models import check_model, init_source, load_model
from osr.paths import CACHE, PLAN, PLAN_KEYS, STUDENT, STUDENT_CKPT, TEACHER
from osr.roles import SplitTensors
from osr.train import val_accuracy
from stages.training import seeded_start, write_model

if TYPE_CHECKING:  # main is handed the validated params by the runner
    from osr.config import Params


def train(p: Params, device: torch.device, data: SplitTensors, on_epoch_end: Callable[[torch.nn.Module, int], dict]
          ) -> tuple[torch.nn.Module, dict, list[dict]]:
    """The stage's student run over the plan and the cached teacher outputs (also the device check's, with a
    deadline in `on_epoch_end`)."""
    plan = load_npz(PLAN, PLAN_KEYS)
    cache = load_npz(CACHE, ("t_raw", "t_mixed", "hard", "target"))
    for key in ("t_raw", "t_mixed", "target"):
        check_finite(cache[key], f"distill: {CACHE} {key}")
    teacher = None
    if needs_live_teacher(str(plan["method"]), p.distill.method):
        teacher, teacher_meta = load_model(TEACHER, device)
        check_model(teacher_meta, p.teacher, "teacher", data.num_classes, str(TEACHER))
    init = init_source(p.student.init, TEACHER, "student")
    inputs = (PLAN, CACHE, init) if init else (PLAN, CACHE)
    return train_student(data, plan, cache, p, ckpt_path=STUDENT_CKPT, fingerprint=student_fingerprint(p, *inputs),
                         device=device, on_epoch_end=on_epoch_end, teacher=teacher, init=init)


def main(p: Params) -> None:
    device, data = seeded_start(p)
    write_model("distill", "student", STUDENT, p, device, *train(p, device, data, val_accuracy(data)))


if __name__ == "__main__":  # the runner is not among the stage's deps (stages/common.py)
    from stages.common import run

    run(main)
