"""2D ResNet-18/34/50/101 with torchvision's state-dict keys.

The keys (conv1, bn1, layer1.0.conv1, ..., layer4.0.downsample.0/1, fc) are torchvision's, so an ImageNet
checkpoint saved from torchvision loads with strict key matching. Bottlenecks stride in the 3x3 conv
(ResNet v1.5, as torchvision and the TSM code).

Every block has a parameter-free `shift` slot applied to the residual branch before conv1. It is an
Identity here; TSM puts a temporal shift there (see tsm.py). Keeping the shift outside conv1 keeps the keys
torchvision's and lets the ARC decorator (arc.py) replace conv1 without knowing about the shift.
"""

from __future__ import annotations

from typing import Type

import torch
from torch import nn

STAGE_NAMES = ("layer1", "layer2", "layer3", "layer4")  # = res2, res3, res4, res5 in the papers


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1
    # (conv, its BN, followed by ReLU?) pairs that apply_arc decorates: both 3x3 convs.
    arc_targets = (("conv1", "bn1", True), ("conv2", "bn2", False))

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.shift: nn.Module = nn.Identity()
        self.conv1: nn.Module = conv3x3(inplanes, planes, stride)
        self.bn1: nn.Module = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2: nn.Module = conv3x3(planes, planes)
        self.bn2: nn.Module = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(self.shift(x))))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4
    arc_targets = (("conv2", "bn2", True),)  # only the 3x3 conv; 1x1 convs are never decorated

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.shift: nn.Module = nn.Identity()
        self.conv1: nn.Module = conv1x1(inplanes, planes)
        self.bn1: nn.Module = nn.BatchNorm2d(planes)
        self.conv2: nn.Module = conv3x3(planes, planes, stride)
        self.bn2: nn.Module = nn.BatchNorm2d(planes)
        self.conv3: nn.Module = conv1x1(planes, planes * self.expansion)
        self.bn3: nn.Module = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(self.shift(x))))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision-compatible ResNet. `num_classes=0` builds it without `fc` (a feature extractor)."""

    def __init__(self, block: Type[BasicBlock | Bottleneck], layers: tuple[int, int, int, int],
                 num_classes: int = 1000):
        super().__init__()
        self.block = block
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = 512 * block.expansion
        self.fc = nn.Linear(self.feature_dim, num_classes) if num_classes > 0 else None
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * self.block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * self.block.expansion, stride),
                                       nn.BatchNorm2d(planes * self.block.expansion))
        layers = [self.block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * self.block.expansion
        layers += [self.block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def stages(self) -> dict[str, nn.Sequential]:
        return {name: getattr(self, name) for name in STAGE_NAMES}

    def get_classifier(self) -> dict[str, nn.Linear]:
        return {"fc": self.fc} if self.fc is not None else {}

    def forward_feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images -> (B, C, H/32, W/32) last-stage feature map."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images -> (B, feature_dim) globally average-pooled features."""
        return torch.flatten(self.avgpool(self.forward_feature_map(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.forward_features(x)
        return features if self.fc is None else self.fc(features)


RESNET_LAYOUTS: dict[int, tuple[Type[BasicBlock | Bottleneck], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
}


def resnet(depth: int, *, num_classes: int = 1000, pretrained: str | None = None) -> ResNet:
    """ResNet-`depth` (18/34/50/101); `pretrained` is a torchvision-format checkpoint on disk."""
    from fineact.errors import ModelError
    from fineact.interop.load import load_weights

    if depth not in RESNET_LAYOUTS:
        raise ModelError(f"ResNet depth must be one of {sorted(RESNET_LAYOUTS)}, got {depth}")
    block, layers = RESNET_LAYOUTS[depth]
    model = ResNet(block, layers, num_classes=num_classes)
    if pretrained:
        load_weights(model, pretrained, source="torchvision")
    return model
