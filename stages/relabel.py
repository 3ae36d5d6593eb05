"""Stage relabel: the frozen teacher over the student's plan (cached logits) and the selective relabel.

A `distill.method` that reads no teacher logits (ce, movr) gets a cache of zeros and no teacher pass."""
from __future__ import annotations

from stages import answer_help

answer_help(__name__, __spec__, __doc__)  # --help answers here, before the imports below load torch

from dataclasses import asdict
from typing import TYPE_CHECKING

import numpy as np

from osr.augment import BaseAug
from osr.io import load_npz, save_npz
from osr.losses import STEP_LOSSES
from osr.models import check_model, load_model
from osr.paths import CACHE, PLAN, PLAN_KEYS, TEACHER
from osr.relabel import relabel_stats, relabel_targets, teacher_outputs, unread_outputs
from osr.roles import load_split
from osr.train import deterministic_kernels, precision, resolve_device
from stages.reports import write_report

if TYPE_CHECKING:  # main is handed the validated params by the runner
    from osr.config import Params

QUALITY = "hard_fraction"  # reports/relabel.json; the settings and the rest of the statistics are diagnostics


def main(p: Params) -> None:
    r, method = p.relabel, p.distill.method
    device = resolve_device(p.base.device)
    deterministic_kernels(device)
    data = load_split(device, ("train",))
    plan = load_npz(PLAN, PLAN_KEYS)
    if not STEP_LOSSES[method].reads_teacher:
        save_npz(CACHE, **unread_outputs(plan, data.num_classes))
        write_report("relabel", "relabel.json", {"teacher_pass": False, **asdict(r)}, QUALITY)
        print(f"relabel: distill.method {method} reads no teacher logits; teacher pass skipped")
        return
    teacher, meta = load_model(TEACHER, device)
    check_model(meta, p.teacher, "teacher", data.num_classes, str(TEACHER))
    amp = precision(p.teacher.amp, device) == "bf16"
    logits = teacher_outputs(teacher, data.x["train"], data.y["train"], plan,
                             BaseAug(randaugment=p.student.randaugment), amp, where=f"relabel ({TEACHER})")
    y_plan = data.y["train"].cpu().numpy()[plan["order"]]
    targets = relabel_targets(logits["t_mixed"], y_plan, plan, r.rule, r.threshold, r.smoothing)
    save_npz(CACHE, **logits, **targets, teacher_pass=np.array(True))
    stats = relabel_stats(targets["hard"], plan["mixed"], logits["t_raw"], y_plan)
    write_report("relabel", "relabel.json", {"teacher_pass": True, **stats, **asdict(r)}, QUALITY)
    print(f"relabel: {stats['hard_fraction']:.3f} of mixed samples hard; "
          f"teacher accuracy on the raw views {stats['teacher_raw_view_acc']:.3f}")


if __name__ == "__main__":  # the runner is not among the stage's deps (stages/common.py)
    from stages.common import run

    run(main)
