"""Stage train_teacher: CE (or m-OvR) on raw known-class images, on-device augmentation, checkpoint/resume."""
from __future__ import annotations

from stages import answer_help

answer_help(__name__, __spec__, __doc__)  # --help answers here, before the imports below load torch

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from osr.models import init_source
from osr.paths import MANIFEST, RAW, TEACHER, TEACHER_CKPT
from osr.roles import SplitTensors
from osr.teacher import train_teacher
from osr.train import val_accuracy
from stages.training import seeded_start, write_model

if TYPE_CHECKING:  # main is handed the validated params by the runner
    from osr.config import Params


def train(p: Params, device: torch.device, data: SplitTensors, on_epoch_end: Callable[[torch.nn.Module, int], dict]
          ) -> tuple[torch.nn.Module, dict, list[dict]]:
    """The stage's teacher run (also the device check's, with a deadline in `on_epoch_end`)."""
    return train_teacher(data, p, ckpt_path=TEACHER_CKPT, inputs=(RAW, MANIFEST), device=device,
                         on_epoch_end=on_epoch_end, init=init_source(p.teacher.init, TEACHER, "teacher"))


def main(p: Params) -> None:
    device, data = seeded_start(p)
    write_model("train_teacher", "teacher", TEACHER, p, device, *train(p, device, data, val_accuracy(data)))


if __name__ == "__main__":  # the runner is not among the stage's deps (stages/common.py)
    from stages.common import run

    run(main)
