"""Teacher training by `osr.train.fit` (checkpoint/resume) with a `teacher.loss` of `TEACHER_LOSSES`: a loss of the
`STEP_LOSSES` registry that trains teachers (CE or m-OvR) on raw known-class images with the on-device
augmentation, or a contrastive loss of `CONTRASTIVE_LOSSES` (GradMix as published) on two views of them, whose
model classifies by kNN over its training features (`fill_bank`)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from osr import OSRError
from osr.augment import TEACHER_STREAM, BaseAug, epoch_order
from osr.contrastive import CONTRASTIVE_LOSSES, ContrastiveLoss
from osr.losses import STEP_LOSSES, Step, StepLoss
from osr.models import CifarResNet, load_init, new_model
from osr.objectives import NOISE_SHARE, logits_objective, noise_exposed
from osr.pixels import noise_images, to_float
from osr.roles import SplitTensors
from osr.train import Batch, budget_epochs, fingerprint, fit, fit_settings
from osr.views import two_views

if TYPE_CHECKING:  # annotations only: osr.config is not among the DVC deps of this code
    from osr.config import Contrastive, Params

# the `teacher.loss` names: the step losses that train teachers, then the contrastive losses
TEACHER_LOSSES = (*(name for name, loss in STEP_LOSSES.items() if loss.teacher_loss), *CONTRASTIVE_LOSSES)


def teacher_batches(x: torch.Tensor, y: torch.Tensor, epoch: int, seed: int, batch_size: int, aug: BaseAug,
                    loss: StepLoss, p: Params, noise: float) -> Iterator[Batch]:
    """(augmented raw images, objective) per step of one epoch, in the teacher's own seeded order; with `noise`
    > 0 each batch also carries batch_size / NOISE_SHARE images of uniform pixel noise (`noise_exposed`)."""
    order, seeds = epoch_order(len(x), batch_size, seed, epoch, TEACHER_STREAM)
    n_noise = batch_size // NOISE_SHARE if noise > 0 else 0
    for idx, s in zip(order, seeds):
        idx = torch.from_numpy(idx).to(x.device)
        def raw(z, yy=y[idx]):
            return loss(z, Step(y=yy, mixed=False, partner=None, lam=1.0), p)
        views = aug(x[idx], int(s))
        if n_noise:
            views = torch.cat([views, noise_images(n_noise, x.shape[1], x.shape[2], int(s)).to(x.device)])
        yield to_float(views), logits_objective(noise_exposed(raw, n_noise, noise), loss.rotation(p.movr))


def contrastive_batches(x: torch.Tensor, y: torch.Tensor, epoch: int, seed: int, batch_size: int,
                        loss: ContrastiveLoss, cfg: Contrastive, layers: list[str]) -> Iterator[Batch]:
    """([view 1; view 2] of the raw images, objective) per step of one epoch, in the teacher's own seeded order."""
    order, seeds = epoch_order(len(x), batch_size, seed, epoch, TEACHER_STREAM)
    for idx, s in zip(order, seeds):
        idx = torch.from_numpy(idx).to(x.device)
        yield two_views(x[idx], int(s)), loss.objective(y[idx], cfg, layers, int(s))


@torch.no_grad()
def fill_bank(model: CifarResNet, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> None:
    """Put the eval-mode features of the uint8 training images x (labels y) into the model's kNN head."""
    was_training = model.training
    model.eval()
    f = torch.cat([model.features(to_float(x[i:i + batch_size])).float() for i in range(0, len(x), batch_size)])
    model.fc.bank.copy_(f)
    model.fc.bank_labels.copy_(y)
    model.train(was_training)


def with_bank(on_epoch_end: Callable[[torch.nn.Module, int], dict], x: torch.Tensor, y: torch.Tensor
              ) -> Callable[[torch.nn.Module, int], dict]:
    """The epoch callback of a kNN-head model: the bank refilled from the current weights, then `on_epoch_end`
    (validation accuracy is kNN accuracy; a checkpoint holds a bank that fits its weights)."""
    def callback(model: torch.nn.Module, epoch: int) -> dict:
        fill_bank(model, x, y)
        return on_epoch_end(model, epoch)
    return callback


def _contrastive_run(p: Params, x: torch.Tensor, y: torch.Tensor) -> tuple[dict, Callable, dict]:
    """(model head arguments, batches of an epoch, the settings it reads beside `teacher`) of a contrastive
    `teacher.loss`."""
    t, cfg, layers = p.teacher, p.contrastive, p.augment.layers
    if t.noise_exposure:
        raise OSRError(f"teacher.noise_exposure: not combined with the contrastive teacher.loss {t.loss}; set 0")
    head = {"head": "knn", "projection": cfg.projection, "bank": len(x), "knn_k": cfg.knn_k}
    loss = CONTRASTIVE_LOSSES[t.loss]
    return head, lambda epoch: contrastive_batches(x, y, epoch, p.base.seed, t.batch_size, loss, cfg, layers), \
        {"contrastive": asdict(cfg), "layers": layers}


def _step_loss_run(p: Params, x: torch.Tensor, y: torch.Tensor) -> tuple[dict, Callable, dict]:
    """(model head arguments, batches of an epoch, the params sections it reads beside `teacher`,
    `StepLoss.settings`) of a step-loss `teacher.loss`."""
    t, loss = p.teacher, STEP_LOSSES[p.teacher.loss]  # a teacher loss reads its movr only
    aug, noise = BaseAug(randaugment=t.randaugment), t.noise_exposure
    if noise and loss.rotation(p.movr) > 0:
        raise OSRError("teacher.noise_exposure: not combined with the m-OvR rotation head; set movr.rotation=0")
    def batches(epoch: int) -> Iterator[Batch]:
        return teacher_batches(x, y, epoch, p.base.seed, t.batch_size, aug, loss, p, noise)
    return loss.head(p.movr), batches, {s: asdict(getattr(p, s)) for s in loss.settings}


def train_teacher(data: SplitTensors, p: Params, *, ckpt_path: Path, inputs: tuple[Path, ...],
                  device: torch.device,
                  on_epoch_end: Callable[[torch.nn.Module, int], dict] | None = None, init: Path | None = None
                  ) -> tuple[torch.nn.Module, dict, list[dict]]:
    """A teacher trained by params.yaml's `teacher` section (with `data`, `base.seed` and the sections its
    loss reads: `StepLoss.settings`; a contrastive loss's `contrastive` and `augment.layers`), fresh or started
    from the weights of `init` (`osr.models.load_init`). `inputs`: the files the run reads, fingerprinted with
    those parameters to guard the resume checkpoint. Returns (model, meta, history)."""
    t = p.teacher
    x, y = data.x["train"], data.y["train"]
    contrastive = t.loss in CONTRASTIVE_LOSSES
    head, batches, settings = (_contrastive_run if contrastive else _step_loss_run)(p, x, y)
    model, meta = new_model(t, p.data, data.num_classes, x.shape[1], device, **head)
    if init is not None:
        print(load_init(model, init, "teacher"))
        inputs = (*inputs, init)
    if contrastive and on_epoch_end is not None:
        on_epoch_end = with_bank(on_epoch_end, x, y)
    run = {"teacher": asdict(t), "data": asdict(p.data), "seed": p.base.seed, **settings}
    epochs = budget_epochs(t, len(x))
    history = fit(model, batches, epochs=epochs, steps_per_epoch=len(x) // t.batch_size, ckpt_path=ckpt_path,
                  fingerprint=fingerprint(run, *inputs), desc="teacher", device=device, on_epoch_end=on_epoch_end,
                  **fit_settings(t, device, epochs))
    if contrastive:  # the kept weights' bank (keep: best may have restored an earlier epoch's weights)
        fill_bank(model, x, y)
    return model, meta, history
