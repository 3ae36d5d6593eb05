"""Stage augment: the seeded mixing plan of the student's training, and a preview of mixed samples."""
from osr.augment import MASKERS, BaseAug, make_plan, planned_steps
from osr.config import load_params
from osr.io import save_npz
from osr.masking import PLACERS, noise_box
from osr.plots import image_grid
from osr.train import resolve_device, set_determinism
from stages.common import PLAN, REPORTS, load_split, run


def main() -> None:
    p = load_params()
    a, st = p["augment"], p["student"]
    set_determinism(p["base"]["seed"], resolve_device("cpu"))
    data = load_split(resolve_device("cpu"), ("train",))
    x, y = data.x["train"], data.y["train"]
    plan = make_plan(len(x), st["batch_size"], st["epochs"], p["base"]["seed"], a["method"], float(a["prob"]),
                     tuple(x.shape[2:]))
    save_npz(PLAN, **plan)
    steps = list(planned_steps(x, y, plan, 0, BaseAug(randaugment=st["randaugment"])))
    step = next((s for s in steps if s.mixed), steps[0])
    shown = step.x_mixed if step.x_mixed is not None else step.x_raw
    if a["method"] in MASKERS and step.mixed:  # boxes at random places here; GradMix places them during training
        hw = (int(step.box[1] - step.box[0]), int(step.box[3] - step.box[2]))
        shown = noise_box(shown, PLACERS["noisebox"]([], [], shown, step.seed), hw, step.seed)
    k = min(int(a["preview"]), len(step.y))
    imgs = (shown[:k] * 255).round().byte().permute(0, 2, 3, 1).numpy()
    name = (lambda c: data.names[c]) if data.names else str
    titles = [f"{name(int(step.y[i]))}+{name(int(step.y[step.partner[i]]))} λ={step.lam:.2f}"
              if step.x_mixed is not None else f"{name(int(step.y[i]))} λ={step.lam:.2f}" if step.mixed
              else name(int(step.y[i])) for i in range(k)]
    note = "boxes at random places; GradMix places them by attribution in training" if a["method"] in MASKERS \
        else "classes a+b, λ of a"
    image_grid(imgs, titles, REPORTS / "augment_preview.png", suptitle=f"{a['method']} ({note})")
    print(f"augment: {a['method']} plan, {plan['order'].shape[0]} epochs x {plan['order'].shape[1]} steps, "
          f"{plan['mixed'].mean():.2f} of steps mixed")


if __name__ == "__main__":
    run(main)
