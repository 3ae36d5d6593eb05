"""Stage train_teacher: CE on raw known-class images, batched on-device augmentation, checkpoint/resume."""
import torch
import torch.nn.functional as F

from osr.augment import TEACHER_STREAM, BaseAug, epoch_order, to_float
from osr.config import load_params
from osr.io import save_torch, write_json
from osr.models import new_model
from osr.train import OptimConfig, fit, resolve_device, set_determinism
from stages.common import MANIFEST, RAW, REPORTS, TEACHER, TEACHER_CKPT, fingerprint, load_split, \
    peak_rss_mib, run, val_accuracy


def main() -> None:
    p = load_params()
    t, seed = p["teacher"], p["base"]["seed"]
    device = resolve_device(p["base"]["device"])
    set_determinism(seed, device)
    data = load_split(device, ("train", "val"))
    x, y = data.x["train"], data.y["train"]
    model, meta = new_model(t, p["data"], data.num_classes, x.shape[1], device)
    aug, bs = BaseAug(randaugment=t["randaugment"]), t["batch_size"]

    def batches(epoch):
        order, seeds = epoch_order(len(x), bs, seed, epoch, TEACHER_STREAM)
        for idx, s in zip(order, seeds):
            idx = torch.from_numpy(idx).to(device)
            yield to_float(aug(x[idx], int(s))), (lambda z, yy=y[idx]: F.cross_entropy(z.float(), yy))

    history = fit(model, batches, t["epochs"], len(x) // bs, bs, OptimConfig.from_section(t), TEACHER_CKPT,
                  fingerprint({"teacher": t, "data": p["data"], "seed": seed}, RAW, MANIFEST), "teacher", device,
                  t["amp"], val_accuracy(data))
    save_torch(TEACHER, {"meta": meta, "state": model.state_dict()})
    write_json(REPORTS / "teacher_train.json", {"history": history, "final": history[-1],
                                                "peak_rss_mib": peak_rss_mib()})


if __name__ == "__main__":
    run(main)
