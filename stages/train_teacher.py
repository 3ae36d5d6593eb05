"""Stage train_teacher: CE (or m-OvR) on raw known-class images, on-device augmentation, checkpoint/resume."""
from stages import answer_help

answer_help(__name__, __spec__, __doc__)  # --help answers here, before the imports below load torch

from osr.config import load_params
from osr.io import save_torch
from osr.paths import MANIFEST, RAW, TEACHER, TEACHER_CKPT
from osr.split import load_split
from osr.teacher import train_teacher
from osr.train import precision, resolve_device, set_determinism, val_accuracy
from stages.common import run, write_training_reports


def main() -> None:
    p = load_params()
    device = resolve_device(p["base"]["device"])
    set_determinism(p["base"]["seed"], device)
    data = load_split(device, ("train", "val"))
    model, meta, history = train_teacher(data, p, ckpt_path=TEACHER_CKPT, inputs=(RAW, MANIFEST), device=device,
                                         on_epoch_end=val_accuracy(data))
    save_torch(TEACHER, {"meta": meta, "state": model.state_dict()})
    write_training_reports("train_teacher", "teacher", history, precision(p["teacher"]["amp"], device))


if __name__ == "__main__":
    run(main)
