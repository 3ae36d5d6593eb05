"""Stage train_teacher: CE (or m-OvR) on raw known-class images, on-device augmentation, checkpoint/resume."""
import torch

from osr.augment import TEACHER_STREAM, BaseAug, epoch_order, to_float
from osr.config import load_params
from osr.io import save_torch
from osr.losses import STEP_LOSSES, DistillConfig, MOvRConfig, Step
from osr.models import head_for, new_model
from osr.objectives import logits_objective
from osr.train import OptimConfig, fit, fit_options, resolve_device, set_determinism
from stages.common import (
    MANIFEST,
    RAW,
    TEACHER,
    TEACHER_CKPT,
    fingerprint,
    load_split,
    run,
    val_accuracy,
    write_training_reports,
)


def main() -> None:
    p = load_params()
    t, seed = p["teacher"], p["base"]["seed"]
    device = resolve_device(p["base"]["device"])
    set_determinism(seed, device)
    data = load_split(device, ("train", "val"))
    x, y = data.x["train"], data.y["train"]
    cfg = DistillConfig(movr=MOvRConfig.from_section(p["movr"]))
    loss, rotation = STEP_LOSSES[t["loss"]], cfg.movr.rotation if t["loss"] == "movr" else 0.0
    model, meta = new_model(t, p["data"], data.num_classes, x.shape[1], device, **head_for(t["loss"], cfg.movr))
    aug, bs = BaseAug(randaugment=t["randaugment"]), t["batch_size"]

    def batches(epoch):
        order, seeds = epoch_order(len(x), bs, seed, epoch, TEACHER_STREAM)
        for idx, s in zip(order, seeds):
            idx = torch.from_numpy(idx).to(device)
            def raw(z, yy=y[idx]):
                return loss(z, Step(y=yy, mixed=False, partner=None, lam=1.0), cfg)
            yield to_float(aug(x[idx], int(s))), logits_objective(raw, rotation)

    fp = {"teacher": t, "data": p["data"], "seed": seed, **({"movr": p["movr"]} if t["loss"] == "movr" else {})}
    history = fit(model, batches, t["epochs"], len(x) // bs, bs, OptimConfig.from_section(t), TEACHER_CKPT,
                  fingerprint(fp, RAW, MANIFEST), "teacher", device, t["amp"], val_accuracy(data),
                  **fit_options(t, device))
    save_torch(TEACHER, {"meta": meta, "state": model.state_dict()})
    write_training_reports("train_teacher", "teacher", history)


if __name__ == "__main__":
    run(main)
