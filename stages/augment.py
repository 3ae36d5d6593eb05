"""Stage augment: the seeded mixing plan of the student's training, and a preview of mixed samples."""
from __future__ import annotations

from stages import answer_help

answer_help(__name__, __spec__, __doc__)  # --help answers here, before the imports below load torch

from typing import TYPE_CHECKING

from osr.augment import BaseAug, make_plan
from osr.io import save_npz
from osr.paths import PLAN, REPORTS
from osr.plots import image_grid
from osr.preview import preview
from osr.roles import load_split
from osr.train import budget_epochs, resolve_device, set_determinism

if TYPE_CHECKING:  # main is handed the validated params by the runner
    from osr.config import Params


def main(p: Params) -> None:
    a, st = p.augment, p.student
    set_determinism(p.base.seed, resolve_device("cpu"))
    data = load_split(resolve_device("cpu"), ("train",))
    x, y = data.x["train"], data.y["train"]
    plan = make_plan(len(x), st.batch_size, budget_epochs(st, len(x)), p.base.seed, a.method, a.prob,
                     tuple(x.shape[2:]))
    save_npz(PLAN, **plan)
    imgs, titles, caption = preview(x, y, plan, BaseAug(randaugment=st.randaugment), a.preview, data.names)
    image_grid(imgs, titles, REPORTS / "augment_preview.png", suptitle=caption)
    print(f"augment: {a.method} plan, {plan['order'].shape[0]} epochs x {plan['order'].shape[1]} steps, "
          f"{plan['mixed'].mean():.2f} of steps mixed")


if __name__ == "__main__":  # the runner is not among the stage's deps (stages/common.py)
    from stages.common import run

    run(main)
