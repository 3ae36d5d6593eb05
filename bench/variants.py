"""The benchmarked training steps, one class per variant (bench/throughput.py times them side by side):

1. ``Typical``: the seed papers' per-sample PIL + torchvision.transforms pipeline through a torch ``DataLoader``,
   fp32, NCHW (with ``project_numerics``: the same data path feeding the project's step);
2. ``Teacher``: the teacher stage's batches (``osr.teacher.teacher_batches``) and ``osr.train.train_step`` (bf16
   autocast, channels_last; ``amp`` False: fp32); ``Plain``: the same step on one resident batch (the floor);
3. ``StudentCached``: ``osr.distill.student_batches`` (asym, CutMix plan) with cached teacher logits;
4. ``StudentLive``: the same loss with a frozen teacher run on the views every step;
5. ``StudentGradMix``: the plain (ce) student over a GradMix plan.

Each has ``step() -> images``; the DataLoader variant also ``begin()`` / ``end()`` (untimed worker start-up and
shut-down). ``args`` carries arch, teacher_arch, width, batch, randaugment and compile (a backend or None).
"""
from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from bench.common import KNOWN, MEAN, PARAMS, SEED, STD, maybe_compile, new_model, optimizer
from osr.augment import BaseAug, make_plan, planned_steps
from osr.distill import student_batches
from osr.losses import STEP_LOSSES, Step
from osr.objectives import on_logits
from osr.pixels import to_float
from osr.relabel import relabel_targets
from osr.teacher import teacher_batches
from osr.train import autocast, train_step

RULE, THRESHOLD, SMOOTHING = PARAMS.relabel.rule, PARAMS.relabel.threshold, PARAMS.relabel.smoothing


class Typical:
    """Variant 1: per-sample PIL transforms through a torch DataLoader, fp32, NCHW; with `project_numerics` the
    same data path feeds the project's step (channels_last, bf16 autocast, compiled trunk on CUDA), so that
    teacher / typical_dp compares the data paths alone."""

    def __init__(self, x: np.ndarray, y: np.ndarray, args, dev: torch.device, workers: int,
                 project_numerics: bool = False):
        from PIL import Image
        from torch.utils.data import DataLoader, Dataset
        from torchvision import transforms as T

        tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])

        class Cifar(Dataset):  # what torchvision.datasets.CIFAR10.__getitem__ does
            def __len__(self):
                return len(x)

            def __getitem__(self, i):
                return tf(Image.fromarray(x[i])), int(y[i])

        self.dev = dev
        self.loader = DataLoader(Cifar(), batch_size=args.batch, shuffle=True, num_workers=workers, drop_last=True,
                                 pin_memory=dev.type == "cuda")
        # normalisation happens in the transform, so the model's own (mean, std) is the identity
        self.project = project_numerics
        self.model = new_model(args.arch, args.width, dev, channels_last=project_numerics, normalise=False)
        self.fwd = maybe_compile(self.model, args.compile) if project_numerics else self.model
        self.opt, self.sched = optimizer(self.model, args, len(x))
        self.it = None

    def begin(self) -> None:
        """Start the loader's workers and wait for the first batch (untimed)."""
        self.it = iter(self.loader)
        self.pending = next(self.it)

    def end(self) -> None:
        """Shut the workers down (untimed), so their prefetching cannot run into another variant's block."""
        self.it = None

    def step(self) -> int:
        if self.it is None:
            self.begin()
        if self.pending is not None:
            xb, yb = self.pending
            self.pending = None
        else:
            try:
                xb, yb = next(self.it)
            except StopIteration:
                self.it = iter(self.loader)
                xb, yb = next(self.it)
        xb, yb = xb.to(self.dev, non_blocking=True), yb.to(self.dev, non_blocking=True)
        if self.project:
            train_step(self.fwd, self.opt, self.sched, xb.contiguous(memory_format=torch.channels_last),
                       on_logits(lambda z: F.cross_entropy(z.float(), yb)), self.dev)
            return len(xb)
        loss = F.cross_entropy(self.model(xb), yb)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return len(xb)


class Plain:
    """The floor: fit's step on one resident batch (no augmentation, no indexing, no data movement)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, args, dev: torch.device):
        self.xb, self.dev = to_float(x[:args.batch]), dev
        self.objective = on_logits(lambda z, yy=y[:args.batch]: F.cross_entropy(z.float(), yy))
        self.model = new_model(args.arch, args.width, dev)
        self.opt, self.sched = optimizer(self.model, args, len(x))
        self.fwd = maybe_compile(self.model, args.compile)

    def step(self) -> int:
        train_step(self.fwd, self.opt, self.sched, self.xb, self.objective, self.dev)
        return len(self.xb)


class Teacher:
    """Variant 2: the teacher stage's batches (`osr.teacher.teacher_batches`, CE) and fit's step; `amp` False:
    the same in fp32 (variant 2b)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, args, dev: torch.device, amp: bool = True):
        self.x, self.y, self.bs, self.dev, self.amp = x, y, args.batch, dev, amp
        self.aug = BaseAug(randaugment=getattr(args, "randaugment", 0))
        self.model = new_model(args.arch, args.width, dev)
        self.opt, self.sched = optimizer(self.model, args, len(x))
        self.fwd = maybe_compile(self.model, args.compile)
        self.it = self._batches()

    def _batches(self):
        for epoch in itertools.count():
            yield from teacher_batches(self.x, self.y, epoch, SEED, self.bs, self.aug, STEP_LOSSES["ce"],
                                       PARAMS, noise=0.0)

    def step(self) -> int:
        xb, objective = next(self.it)
        train_step(self.fwd, self.opt, self.sched, xb, objective, self.dev, self.amp)
        return len(xb)


def random_cache(plan: dict, y_np: np.ndarray, k: int, seed: int = SEED) -> dict[str, np.ndarray]:
    """Cached teacher outputs of the plan's shape: random fp16 logits, relabel targets computed from them."""
    rng = np.random.default_rng(seed)
    e, s, b = plan["order"].shape
    t_raw = (3 * rng.standard_normal((e, s, b, k))).astype(np.float16)
    t_mixed = (3 * rng.standard_normal((e, s, b, k))).astype(np.float16)
    return {"t_raw": t_raw, "t_mixed": t_mixed,
            **relabel_targets(t_mixed, y_np[plan["order"]], plan, RULE, THRESHOLD, SMOOTHING)}


class StudentCached:
    """Variant 3: osr.distill.student_batches (asym, CutMix plan, cached logits) and fit's step."""
    method, mixer = "asym", "cutmix"

    def __init__(self, x: torch.Tensor, y: torch.Tensor, y_np: np.ndarray, args, dev: torch.device):
        self.x, self.y, self.dev = x, y, dev
        self.aug = BaseAug(randaugment=getattr(args, "randaugment", 0))
        self.params = replace(PARAMS, distill=replace(PARAMS.distill, method=self.method))
        self.plan = make_plan(len(x), args.batch, 1, SEED, self.mixer, 0.5, tuple(x.shape[-2:]))
        self.cache = random_cache(self.plan, y_np, len(KNOWN))
        self.model = new_model(args.arch, args.width, dev)
        self.opt, self.sched = optimizer(self.model, args, len(x))
        self.fwd = maybe_compile(self.model, args.compile)
        self.it = self._batches()

    def _batches(self):
        while True:  # a one-epoch plan, replayed
            yield from student_batches(self.x, self.y, self.plan, self.cache, 0, self.aug, self.params)

    def step(self) -> int:
        xb, objective = next(self.it)
        train_step(self.fwd, self.opt, self.sched, xb, objective, self.dev)
        return len(xb)


class StudentLive(StudentCached):
    """Variant 4: as 3, but a frozen teacher runs on the raw (+ mixed) views every step instead of the cache, and
    each mixed step's relabel decision is `osr.relabel.relabel_targets` over that step's logits (on the host, as
    the relabel stage computes it for the cache)."""

    def __init__(self, x, y, y_np, args, dev):
        super().__init__(x, y, y_np, args, dev)
        self.teacher = new_model(args.teacher_arch, args.width, dev).eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.tfwd = maybe_compile(self.teacher, args.compile)

    def relabel(self, z_mixed: torch.Tensor, st) -> tuple[torch.Tensor, torch.Tensor]:
        """The step's hard mask and two-hot targets, by `relabel_targets` over a one-step plan."""
        one_step = {"partner": st.partner.cpu().numpy()[None, None], "lam": np.array([[st.lam]]),
                    "mixed": np.array([[True]])}
        r = relabel_targets(z_mixed.cpu().numpy()[None, None], st.y.cpu().numpy()[None, None], one_step,
                            RULE, THRESHOLD, SMOOTHING)
        return torch.from_numpy(r["hard"][0, 0]).to(self.dev), torch.from_numpy(r["target"][0, 0]).to(self.dev)

    def _batches(self):
        step_loss = STEP_LOSSES["asym"]
        while True:
            for st in planned_steps(self.x, self.y, self.plan, 0, self.aug):
                b, mixed = len(st.x_raw), st.x_mixed is not None
                with torch.inference_mode():  # as osr.relabel.teacher_outputs, but kept on the device
                    views = st.x_raw if not mixed else torch.cat([st.x_raw, st.x_mixed])
                    with autocast(self.dev, True):
                        z = self.tfwd(views).float()
                z = z.clone()  # leave inference mode: the loss saves these for backward
                hard, target = self.relabel(z[b:], st) if mixed else (None, None)
                step = Step(y=st.y, mixed=mixed, partner=st.partner, lam=st.lam, t_raw=z[:b],
                            t_mixed=z[b:] if mixed else None, hard=hard, target=target.float() if mixed else None)
                yield (st.x_mixed if mixed else st.x_raw), \
                    on_logits(lambda zz, step=step: step_loss(zz, step, self.params))


class StudentGradMix(StudentCached):
    """Variant 5: the plain (ce) student over a GradMix plan (masked steps: LayerCAM + noise box + second forward)."""
    method, mixer = "ce", "gradmix"
