"""Stage distill: the student trained on the plan by ce | kd | asym | movr, reading cached teacher logits."""
from osr.config import load_params
from osr.distill import needs_live_teacher, train_student
from osr.io import load_npz, save_torch
from osr.train import resolve_device, set_determinism
from stages.common import (
    CACHE,
    PLAN,
    PLAN_KEYS,
    STUDENT,
    STUDENT_CKPT,
    TEACHER,
    fingerprint,
    load_model,
    load_split,
    run,
    val_accuracy,
    write_training_reports,
)


def main() -> None:
    p = load_params()
    st, d, seed = p["student"], p["distill"], p["base"]["seed"]
    device = resolve_device(p["base"]["device"])
    set_determinism(seed, device)
    data = load_split(device, ("train", "val"))
    plan = load_npz(PLAN, PLAN_KEYS)
    cache = load_npz(CACHE, ("t_raw", "t_mixed", "hard", "target"))
    teacher = load_model(TEACHER, device)[0] if needs_live_teacher(str(plan["method"]), d["method"]) else None
    fp = {"student": st, "distill": d, "data": p["data"], "seed": seed, "movr": p["movr"], "relabel": p["relabel"],
          "layers": p["augment"]["layers"]}
    model, meta, history = train_student(
        data, plan, cache, st, d, p["movr"], p["data"], STUDENT_CKPT, fingerprint(fp, PLAN, CACHE),
        f"student[{d['method']}]", device, val_accuracy(data), teacher, p["relabel"], p["augment"]["layers"])
    save_torch(STUDENT, {"meta": meta, "state": model.state_dict()})
    write_training_reports("distill", "student", history)


if __name__ == "__main__":
    run(main)
