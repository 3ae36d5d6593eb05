"""torchvision ResNets with the CIFAR stem (3x3 stride-1 conv, no max-pool) and a width multiplier.

Input normalisation lives inside the model (buffers), so a model takes float images in [0, 1] and a checkpoint
is self-describing: ``build(**meta)`` rebuilds it from the plain dict stored beside the weights.
"""
from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from osr import OSRError

ARCHS = {"resnet18": (BasicBlock, [2, 2, 2, 2]), "resnet34": (BasicBlock, [3, 4, 6, 3]),
         "resnet50": (Bottleneck, [3, 4, 6, 3])}


class CifarResNet(ResNet):
    """torchvision's ResNet, built with the CIFAR stem and stage widths (w, 2w, 4w, 8w)."""

    def __init__(self, arch: str, num_classes: int, width: int = 64, in_channels: int = 3,
                 mean: tuple[float, ...] = (0.5,), std: tuple[float, ...] = (0.5,)):
        if arch not in ARCHS:
            raise OSRError(f"arch: unknown architecture {arch!r} (choose from {sorted(ARCHS)})")
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
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled penultimate feature of float images in [0, 1]."""
        x = (x - self.mean) / self.std
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def build(arch: str, num_classes: int, width: int, in_channels: int, mean, std) -> CifarResNet:
    return CifarResNet(arch, num_classes, width, in_channels, tuple(mean), tuple(std))


def model_meta(arch: str, num_classes: int, width: int, in_channels: int, mean, std) -> dict:
    """The plain dict that rebuilds a model; stored in every checkpoint (weights_only-safe)."""
    return {"arch": arch, "num_classes": int(num_classes), "width": int(width), "in_channels": int(in_channels),
            "mean": [float(v) for v in mean], "std": [float(v) for v in std]}


def new_model(section: dict, data: dict, num_classes: int, in_channels: int,
              device: torch.device) -> tuple[CifarResNet, dict]:
    """A fresh channels_last model from a params section (teacher/student) and the data section (mean/std)."""
    meta = model_meta(section["arch"], num_classes, section["width"], in_channels, data["mean"], data["std"])
    if len(meta["mean"]) != in_channels:
        raise OSRError(f"data.mean: {len(meta['mean'])} values for {in_channels}-channel images")
    return build(**meta).to(device, memory_format=torch.channels_last), meta


def load_state(model: nn.Module, state: dict, where: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise OSRError(f"{where}: checkpoint does not fit the model ({first})") from None
