"""torchvision ResNets with the CIFAR stem (3x3 stride-1 conv, no max-pool) and a width multiplier.

Input normalisation lives inside the model (buffers), so a model takes float images in [0, 1] and a checkpoint
is self-describing: ``build(**meta)`` rebuilds it from the plain dict stored beside the weights.
The head is ``linear`` (CE, AD) or ``cosine`` (m-OvR: scale * cos between unit feature and unit prototypes);
m-OvR models may carry a 4-way ``rotation`` head on the unnormalised feature (methods.md §3.4). A contrastive model
(GradMix as published, methods.md §3.3) has the head ``knn``: a projection MLP whose unit output is its feature,
and a kNN classifier over a bank of its training features as logits (`KnnHead`), so accuracy, every score and an
exported model read the contrastive representation.
With ``flip_tta`` an eval-mode model averages the features of each image and its mirror image (test-time flip, as
in fast CIFAR training): the logits, every score and the kNN bank read the averaged feature, and an exported
model carries it.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from osr import OSRError
from osr.io import load_torch
from osr.knn import knn_class_scores

if TYPE_CHECKING:  # annotations only: osr.config is not among the DVC deps of this code
    from osr.config import Data, Network

ARCHS = {"resnet18": (BasicBlock, [2, 2, 2, 2]), "resnet34": (BasicBlock, [3, 4, 6, 3]),
         "resnet50": (Bottleneck, [3, 4, 6, 3])}
HEADS = ("linear", "cosine", "knn")


class CosineHead(nn.Module):
    """Logits scale * cos(theta_k), theta_k the angle between the feature and prototype k (no margin)."""

    def __init__(self, in_features: int, out_features: int, scale: float):
        super().__init__()
        self.in_features, self.out_features, self.scale = in_features, out_features, float(scale)
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / in_features**0.5)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        # fp32 even under autocast (`.float()` alone does not leave it): acos near +-1 amplifies bf16 error
        with torch.autocast(f.device.type, enabled=False):
            return self.scale * F.linear(F.normalize(f.float(), dim=1), F.normalize(self.weight.float(), dim=1))


class Projection(nn.Module):
    """The contrastive projection head: Linear(d, d)-ReLU-Linear(d, out), L2-normalised output (GradMix's
    512-512-128 on a ResNet-18 of width 64; d is the trunk's feature width)."""

    def __init__(self, dim: int, out: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, out))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(f).float(), dim=1)


class KnnHead(nn.Module):
    """Logits of a contrastive model: GradMix's kNN class scores (`osr.knn`) of its projection features against
    `bank` (the unit projection features of the training images, with their labels), so argmax is the kNN
    prediction and max (MLS) the kNN score. The bank is filled by training (`osr.teacher.fill_bank`): until then every
    logit is 0."""

    def __init__(self, dim: int, num_classes: int, bank_size: int, k: int):
        super().__init__()
        self.num_classes, self.k = num_classes, k
        self.register_buffer("bank", torch.zeros(bank_size, dim))
        self.register_buffer("bank_labels", torch.zeros(bank_size, dtype=torch.long))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        with torch.autocast(f.device.type, enabled=False):
            return knn_class_scores(f, self.bank, self.bank_labels, range(self.num_classes), self.k)


class CifarResNet(ResNet):
    """torchvision's ResNet, built with the CIFAR stem and stage widths (w, 2w, 4w, 8w)."""

    def __init__(self, arch: str, num_classes: int, width: int, in_channels: int, mean: tuple[float, ...],
                 std: tuple[float, ...], head: str = "linear",
                 scale: float = 1.0, rotation: bool = False, flip_tta: bool = False, projection: int = 0,
                 bank: int = 0, knn_k: int = 0):
        if arch not in ARCHS:
            raise OSRError(f"arch: unknown architecture {arch!r} (choose from {sorted(ARCHS)})")
        if head not in HEADS:
            raise OSRError(f"head: unknown head {head!r} (choose from {list(HEADS)})")
        block, layers = ARCHS[arch]
        nn.Module.__init__(self)
        self._norm_layer, self.dilation, self.groups, self.base_width = nn.BatchNorm2d, 1, 1, 64
        self.inplanes = width
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # deviation from avg_pool2d(4): also fits 28x28 and 64x64
        dim = width * 8 * block.expansion
        self.projection = Projection(dim, projection) if head == "knn" else None
        if head == "knn":
            self.fc = KnnHead(projection, num_classes, bank, knn_k)
        else:
            self.fc = nn.Linear(dim, num_classes) if head == "linear" else CosineHead(dim, num_classes, scale)
        self.rotation = nn.Linear(dim, 4) if rotation else None
        self.flip_tta = flip_tta
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def compile_trunk(self, backend: str = "inductor") -> None:
        """Compile `features` in place (static shapes): forward, predict, the rotation head and masked views all
        go through it, and state_dict keys stay those of the plain model. `eager_features` stays uncompiled."""
        # every model's trunk is one code object (CifarResNet.eager_features): each arch, batch size and
        # train/eval/inference mode is a graph of it, more than dynamo's default limit of 8 before it falls back
        # to eager; raise it
        cfg = torch._dynamo.config
        limit = "recompile_limit" if hasattr(cfg, "recompile_limit") else "cache_size_limit"
        setattr(cfg, limit, max(getattr(cfg, limit), 64))
        self._compiled_features = torch.compile(self.eager_features, backend=backend, dynamic=False)

    @property
    def compiled(self) -> bool:
        return getattr(self, "_compiled_features", None) is not None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled penultimate feature of float images in [0, 1] (compiled after `compile_trunk`); in eval mode with
        `flip_tta`, the mean of the image's and its mirror image's. A contrastive model's: the unit projection of it."""
        trunk = self._compiled_features if self.compiled else self.eager_features
        f = (trunk(x) + trunk(x.flip(3))) / 2 if self.flip_tta and not self.training else trunk(x)
        return f if self.projection is None else self.projection(f)

    def eager_projection(self, x: torch.Tensor) -> torch.Tensor:
        """`features` of a contrastive model in train mode through the uncompiled trunk (attribution hooks)."""
        return self.projection(self.eager_features(x))

    def eager_forward(self, x: torch.Tensor) -> torch.Tensor:
        """`forward` through the uncompiled trunk (GradMix's attribution: hooks inside a compiled graph fail)."""
        f = self.eager_features(x)
        return self.fc(f if self.projection is None else self.projection(f))

    def eager_features(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """The representation the head reads: the feature, unit-normalised for a cosine head (Jacobian diagnostic)."""
        f = self.features(x)
        return F.normalize(f, dim=1) if isinstance(self.fc, CosineHead) else f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def build(arch: str, num_classes: int, width: int, in_channels: int, mean, std, head: str = "linear",
          scale: float = 1.0, rotation: bool = False, flip_tta: bool = False, projection: int = 0, bank: int = 0,
          knn_k: int = 0) -> CifarResNet:
    return CifarResNet(arch, num_classes, width, in_channels, tuple(mean), tuple(std), head, scale, rotation,
                       flip_tta, projection, bank, knn_k)


def model_meta(arch: str, num_classes: int, width: int, in_channels: int, mean, std, head: str = "linear",
               scale: float = 1.0, rotation: bool = False, flip_tta: bool = False, projection: int = 0,
               bank: int = 0, knn_k: int = 0) -> dict:
    """The plain dict that rebuilds a model; stored in every checkpoint (weights_only-safe). `flip_tta` is stored
    only when set, and the kNN head's sizes (projection width, bank size, K) only for that head, so a model without
    them keeps the checkpoint bytes (and DVC hashes) of a meta that never had those keys."""
    meta = {"arch": arch, "num_classes": int(num_classes), "width": int(width), "in_channels": int(in_channels),
            "mean": [float(v) for v in mean], "std": [float(v) for v in std], "head": head, "scale": float(scale),
            "rotation": bool(rotation)}
    if head == "knn":
        meta.update(projection=int(projection), bank=int(bank), knn_k=int(knn_k))
    return {**meta, "flip_tta": True} if flip_tta else meta


def new_model(section: Network, data: Data, num_classes: int, in_channels: int, device: torch.device,
              head: str = "linear", scale: float = 1.0, rotation: bool = False, **knn: int) -> tuple[CifarResNet, dict]:
    """A fresh channels_last model from a params section (teacher/student) and the data section (mean/std);
    `knn`: the kNN head's `projection`, `bank` and `knn_k`."""
    meta = model_meta(section.arch, num_classes, section.width, in_channels, data.mean, data.std, head, scale,
                      rotation, section.flip_tta, **knn)
    if len(meta["mean"]) != in_channels:
        raise OSRError(f"data.mean: {len(meta['mean'])} values for {in_channels}-channel images")
    return build(**meta).to(device, memory_format=torch.channels_last), meta


def load_state(model: nn.Module, state: dict, where: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        # torch's first line only names the class ("Error(s) in loading state_dict for CifarResNet:"); the reasons
        # (size mismatch for conv1.weight: ..., Missing key(s) ...) follow, one per line
        lines = [line.strip() for line in str(e).strip().splitlines()]
        reason = next((line for line in lines[1:] if line), lines[0] if lines else type(e).__name__)
        raise OSRError(f"{where}: checkpoint does not fit the model ({reason[:300]})") from None


NOT_WEIGHTS = ("mean", "std")  # normalisation buffers: the data's own, never another model's


def _learnt(key: str) -> bool:
    """A tensor an init copies: not the normalisation, not batch-norm's step counter (a scalar: it fits any model)."""
    return key not in NOT_WEIGHTS and not key.endswith("num_batches_tracked")


def init_source(setting: str, teacher: Path, role: str) -> Path | None:
    """The file a network's `init` setting names: none (""), the run's `teacher` ("teacher", the student's only),
    or a path."""
    if not setting:
        return None
    if setting == "teacher" and role == "teacher":
        raise OSRError("teacher.init: 'teacher' names the run's teacher, a source for the student only")
    path = teacher if setting == "teacher" else Path(setting)
    if not path.is_file():
        raise OSRError(f"{role}.init: {path}: file not found")
    return path


def load_init(model: nn.Module, path: Path, role: str) -> str:
    """Copy into `model` every tensor of the checkpoint `path` whose name and shape match: a model file of this
    project, a training checkpoint, or a plain state dict (a torchvision or timm ImageNet ResNet). What does not fit
    (another head, a 7x7 ImageNet stem) keeps its fresh initialisation. Returns one line saying what was copied."""
    ck = load_torch(path)
    state = next((ck[k] for k in ("state", "model", "state_dict") if isinstance(ck, dict) and k in ck), ck)
    if not isinstance(state, dict):
        raise OSRError(f"{role}.init: {path}: holds no state dict")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = model.state_dict()
    fits = {k: v for k, v in state.items()
            if k in own and _learnt(k) and torch.is_tensor(v) and v.shape == own[k].shape}
    if not fits:
        raise OSRError(f"{role}.init: {path}: no tensor fits a {type(model).__name__} of this width (check "
                       f"{role}.arch and {role}.width)")
    model.load_state_dict(fits, strict=False)
    left = sorted(k for k in own if k not in fits and _learnt(k))
    return f"{role}: initialised {len(fits)} tensors from {path}" + (
        f"; {len(left)} left fresh ({', '.join(left[:4])}{', ...' if len(left) > 4 else ''})" if left else "")


def check_model(meta: dict, section: Network, role: str, num_classes: int, where: str) -> None:
    """The model a file holds is the one params.yaml's `role` section describes (a stage run by hand after a
    parameter change would otherwise evaluate, or distil from, a model of another architecture)."""
    held, wanted = f"{meta['arch']}-w{meta['width']}", f"{section.arch}-w{section.width}"
    if held != wanted:
        raise OSRError(f"{where}: holds a {held} model, params.yaml's {role}.arch and {role}.width say {wanted} "
                       "(rerun `dvc repro`)")
    if meta["num_classes"] != num_classes:
        raise OSRError(f"{where}: has {meta['num_classes']} outputs, the split has {num_classes} known classes "
                       "(rerun `dvc repro`)")


def load_model(path: Path, device: torch.device) -> tuple[CifarResNet, dict]:
    """A model file of this project (`{"meta", "state"}`) as an eval-mode channels_last model, and its meta."""
    ck = load_torch(path, map_location=device)
    if not isinstance(ck, dict) or "meta" not in ck or "state" not in ck:
        raise OSRError(f"{path}: not a model file of this project (no meta/state)")
    model = build(**ck["meta"])
    load_state(model, ck["state"], str(path))
    return model.to(device, memory_format=torch.channels_last).eval(), ck["meta"]
