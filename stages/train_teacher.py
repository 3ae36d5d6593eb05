"""Stage train_teacher: CE (or m-OvR) on raw known-class images, on-device augmentation, checkpoint/resume."""
from stages import answer_help

answer_help(__name__, __spec__, __doc__)  # --help answers here, before the imports below load torch

from osr.io import save_torch
from osr.models import init_source
from osr.paths import MANIFEST, RAW, TEACHER, TEACHER_CKPT
from osr.teacher import train_teacher
from osr.train import precision, val_accuracy
from stages.common import run
from stages.training import seeded_start, write_training_reports


def main() -> None:
    p, device, data = seeded_start()
    model, meta, history = train_teacher(data, p, ckpt_path=TEACHER_CKPT, inputs=(RAW, MANIFEST), device=device,
                                         on_epoch_end=val_accuracy(data),
                                         init=init_source(p["teacher"]["init"], TEACHER, "teacher"))
    save_torch(TEACHER, {"meta": meta, "state": model.state_dict()})
    write_training_reports("train_teacher", "teacher", history, precision(p["teacher"]["amp"], device))


if __name__ == "__main__":
    run(main)
