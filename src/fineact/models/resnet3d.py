"""3D ResNets: SlowOnly and SlowFast pathways, their recognizers, and 2D -> 3D inflation of ImageNet weights.

Layout (as MMAction2 / the SlowFast paper; REFERENCE.md section 3):

    stem     conv (kt,7,7) stride (1,2,2) + BN + ReLU + max-pool (1,3,3) stride (1,2,2)
    layer1   res2   \\
    layer2   res3    |  Bottleneck3d (ResNet-50/101) or BasicBlock3d (ResNet-18/34); the first block of
    layer3   res4    |  layer2..layer4 strides (1,2,2) in its 3x3 conv; time is never strided
    layer4   res5   /

Each stage has a temporal kernel size k: Bottleneck3d puts it in conv1 ((k,1,1), "3x1x1" inflation),
BasicBlock3d in conv1 ((k,3,3)). SlowOnly (and SlowFast's slow pathway) use k = 1, 1, 3, 3; the fast pathway
uses 3 everywhere and a (5,7,7) stem. The names are torchvision's (conv1, bn1, layer1.0.conv1, ...,
layer2.0.downsample.0/1), so a torchvision ImageNet checkpoint maps onto them key by key (`inflate_kernel`;
fineact.interop.inflate matches the keys).

SlowFast input: ONE dense clip of alpha*T frames (N, C, alpha*T, H, W), as MMAction2 feeds it. The fast
pathway sees all of it; the slow pathway every alpha-th frame (frames 0, alpha, 2*alpha, ...). Lateral
connections (fast -> slow) sit after the stem's max-pool and after res2, res3, res4: a bias-free conv
(5,1,1) with stride (alpha,1,1), padding (2,0,0), 2x the fast channels, then BN and ReLU, concatenated onto
the slow features along channels, so the next slow stage reads base + lateral channels. The parameter count
decides the BN: without it SlowFast-R50 has 34,479,288 parameters, with it the published 34,480,216. The
GMACs decide the place: after the max-pool gives the published 27.64 G (before it, 27.66 G).

Heads (I3D style): global average pool over T, H, W -> dropout -> fc, fc initialised N(0, 0.01), bias 0.
SlowFast pools each pathway and concatenates (2048 + 256 for R50) before the dropout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence, Type

import torch
from torch import nn

from fineact.errors import ModelError
from fineact.models.base import ClipSpec, check_clip

STAGE_NAMES = ("layer1", "layer2", "layer3", "layer4")  # = res2, res3, res4, res5 in the papers
SLOW_TEMPORAL_KERNELS = (1, 1, 3, 3)   # SlowOnly / slow pathway: temporal convs only in res4, res5
FAST_TEMPORAL_KERNELS = (3, 3, 3, 3)   # fast pathway: temporal convs everywhere
INFLATE_MODES = ("mean", "center")


def _triple(v: int | Sequence[int]) -> tuple[int, int, int]:
    return (v, v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


class BasicBlock3d(nn.Module):
    """Two 3x3 convs; conv1 carries the stage's temporal kernel: (k,3,3), conv2 is (1,3,3)."""

    expansion = 1
    # (conv, its BN, followed by ReLU?) pairs that fineact.models.arc.apply_arc decorates: both 3x3 convs.
    arc_targets = (("conv1", "bn1", True), ("conv2", "bn2", False))

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 temporal_kernel: int = 1):
        super().__init__()
        k = temporal_kernel
        self.conv1: nn.Module = nn.Conv3d(inplanes, planes, (k, 3, 3), stride=(1, stride, stride),
                                          padding=(k // 2, 1, 1), bias=False)
        self.bn1: nn.Module = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2: nn.Module = nn.Conv3d(planes, planes, (1, 3, 3), padding=(0, 1, 1), bias=False)
        self.bn2: nn.Module = nn.BatchNorm3d(planes)
        self.downsample = downsample

    def last_bn(self) -> nn.Module:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck3d(nn.Module):
    """1x1 (temporal k: (k,1,1)) -> 3x3 (1,3,3), strided -> 1x1 expanding x4 (ResNet v1.5 striding)."""

    expansion = 4
    arc_targets = (("conv2", "bn2", True),)  # only the 3x3 conv; 1x1 (and k x 1 x 1) convs are never decorated

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 temporal_kernel: int = 1):
        super().__init__()
        k = temporal_kernel
        self.conv1: nn.Module = nn.Conv3d(inplanes, planes, (k, 1, 1), padding=(k // 2, 0, 0), bias=False)
        self.bn1: nn.Module = nn.BatchNorm3d(planes)
        self.conv2: nn.Module = nn.Conv3d(planes, planes, (1, 3, 3), stride=(1, stride, stride),
                                          padding=(0, 1, 1), bias=False)
        self.bn2: nn.Module = nn.BatchNorm3d(planes)
        self.conv3: nn.Module = nn.Conv3d(planes, planes * self.expansion, 1, bias=False)
        self.bn3: nn.Module = nn.BatchNorm3d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def last_bn(self) -> nn.Module:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


RESNET3D_LAYOUTS: dict[int, tuple[Type[BasicBlock3d | Bottleneck3d], tuple[int, int, int, int]]] = {
    18: (BasicBlock3d, (2, 2, 2, 2)),
    34: (BasicBlock3d, (3, 4, 6, 3)),
    50: (Bottleneck3d, (3, 4, 6, 3)),
    101: (Bottleneck3d, (3, 4, 23, 3)),
}


class ResNet3d(nn.Module):
    """One 3D ResNet pathway (no classifier). Input (N, C, T, H, W); T is kept, H and W shrink by 32.

    `temporal_kernels`: the temporal kernel of each stage (res2..res5). `lateral_channels`: extra input
    channels each stage reads, concatenated by a SlowFast lateral connection before it (0 for SlowOnly).
    `zero_init_residual`: the last BN of every block starts at gamma 0 (MMAction2's default for training
    from scratch; inflated ImageNet weights overwrite it).
    """

    def __init__(self, depth: int = 50, base_channels: int = 64, in_channels: int = 3,
                 stem_kernel: Sequence[int] = (1, 7, 7),
                 temporal_kernels: Sequence[int] = SLOW_TEMPORAL_KERNELS,
                 lateral_channels: Sequence[int] = (0, 0, 0, 0), zero_init_residual: bool = True):
        super().__init__()
        if depth not in RESNET3D_LAYOUTS:
            raise ModelError(f"ResNet3d depth must be one of {sorted(RESNET3D_LAYOUTS)}, got {depth}")
        if base_channels < 1:
            raise ModelError(f"ResNet3d base_channels must be >= 1, got {base_channels}")
        if len(temporal_kernels) != 4 or any(k < 1 or k % 2 == 0 for k in temporal_kernels):
            raise ModelError(f"ResNet3d temporal_kernels must be 4 odd sizes (res2..res5), got {temporal_kernels}")
        if len(lateral_channels) != 4:
            raise ModelError(f"ResNet3d lateral_channels must have 4 entries (res2..res5), got {lateral_channels}")
        block, layers = RESNET3D_LAYOUTS[depth]
        self.block, self.depth, self.base_channels = block, depth, base_channels
        self.temporal_kernels = tuple(temporal_kernels)
        self.lateral_channels = tuple(lateral_channels)
        kt, kh, kw = _triple(stem_kernel)
        self.conv1 = nn.Conv3d(in_channels, base_channels, (kt, kh, kw), stride=(1, 2, 2),
                               padding=(kt // 2, kh // 2, kw // 2), bias=False)
        self.bn1 = nn.BatchNorm3d(base_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        self.inplanes = base_channels
        for i, name in enumerate(STAGE_NAMES):
            setattr(self, name, self._make_layer(base_channels * 2 ** i, layers[i], 1 if i == 0 else 2,
                                                 self.temporal_kernels[i], self.lateral_channels[i]))
        self.feature_dim = base_channels * 8 * block.expansion
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for stage in self.stages().values():
                for b in stage:
                    nn.init.zeros_(b.last_bn().weight)

    def _make_layer(self, planes: int, blocks: int, stride: int, temporal_kernel: int,
                    lateral: int) -> nn.Sequential:
        inplanes = self.inplanes + lateral
        out = planes * self.block.expansion
        downsample = None
        if stride != 1 or inplanes != out:
            downsample = nn.Sequential(nn.Conv3d(inplanes, out, 1, stride=(1, stride, stride), bias=False),
                                       nn.BatchNorm3d(out))
        layers = [self.block(inplanes, planes, stride, downsample, temporal_kernel)]
        layers += [self.block(out, planes, 1, None, temporal_kernel) for _ in range(1, blocks)]
        self.inplanes = out
        return nn.Sequential(*layers)

    def stages(self) -> dict[str, nn.Sequential]:
        return {name: getattr(self, name) for name in STAGE_NAMES}

    def get_classifier(self) -> dict[str, nn.Linear]:
        return {}  # a backbone pathway: recognizers own the classifier

    def stage_channels(self) -> list[int]:
        """Output channels of the stem and of res2..res5."""
        e = self.block.expansion
        return [self.base_channels] + [self.base_channels * 2 ** i * e for i in range(4)]

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, H, W) -> (N, feature_dim, T, H/32, W/32)."""
        x = self.forward_stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, H, W) -> (N, feature_dim), averaged over T, H, W."""
        return self.forward_feature_map(x).mean((2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


class Lateral(nn.Module):
    """Fast -> slow connection: conv (k,1,1) stride (alpha,1,1), bias-free, fast -> 2x fast channels; BN; ReLU.

    The temporal stride alpha with padding k // 2 turns the fast pathway's alpha*T frames into the slow T.
    """

    def __init__(self, fast_channels: int, out_channels: int, alpha: int, kernel: int = 5):
        super().__init__()
        self.conv = nn.Conv3d(fast_channels, out_channels, (kernel, 1, 1), stride=(alpha, 1, 1),
                              padding=(kernel // 2, 0, 0), bias=False)
        self.bn = nn.BatchNorm3d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, fast: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(fast)))


class SlowFast(nn.Module):
    """SlowFast backbone: `slow` and `fast` ResNet3d pathways joined by four `laterals`.

    Input: one dense clip (N, C, alpha*T, H, W). Output of `forward_feature_map`: the (slow, fast) maps;
    `forward_features` pools each over T, H, W and concatenates them (feature_dim = slow + fast).
    """

    def __init__(self, depth: int = 50, base_channels: int = 64, *, alpha: int = 8, beta_inv: int = 8,
                 fusion_kernel: int = 5, zero_init_residual: bool = True):
        super().__init__()
        if alpha < 1:
            raise ModelError(f"SlowFast alpha (frame-rate ratio) must be >= 1, got {alpha}")
        if beta_inv < 1 or base_channels // beta_inv < 1:
            raise ModelError(f"SlowFast fast pathway would have base_channels // beta_inv = "
                             f"{base_channels} // {beta_inv} < 1 channels; lower beta_inv or raise base_channels")
        self.alpha, self.beta_inv = alpha, beta_inv
        fast = ResNet3d(depth, base_channels // beta_inv, stem_kernel=(5, 7, 7),
                        temporal_kernels=FAST_TEMPORAL_KERNELS, zero_init_residual=zero_init_residual)
        # Laterals after the stem and res2..res4 carry 2x the fast channels there.
        lateral_out = [2 * c for c in fast.stage_channels()[:4]]
        self.slow = ResNet3d(depth, base_channels, stem_kernel=(1, 7, 7), temporal_kernels=SLOW_TEMPORAL_KERNELS,
                             lateral_channels=lateral_out, zero_init_residual=zero_init_residual)
        self.fast = fast
        self.laterals = nn.ModuleList(Lateral(c_in, c_out, alpha, fusion_kernel)
                                      for c_in, c_out in zip(fast.stage_channels()[:4], lateral_out))
        self.feature_dim = self.slow.feature_dim + self.fast.feature_dim

    def split(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The (slow, fast) inputs of a dense clip: every alpha-th frame, and all frames."""
        t = clip.shape[2]
        if t % self.alpha:
            raise ModelError(f"SlowFast: the clip has T={t} frames, which is not a multiple of alpha={self.alpha} "
                             f"(the slow pathway takes every {self.alpha}-th frame)")
        return clip[:, :, ::self.alpha], clip

    def get_classifier(self) -> dict[str, nn.Linear]:
        return {}  # a backbone: recognizers own the classifier

    def forward_feature_map(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        slow, fast = self.split(clip)
        slow, fast = self.slow.forward_stem(slow), self.fast.forward_stem(fast)
        slow = torch.cat((slow, self.laterals[0](fast)), dim=1)
        for i, name in enumerate(STAGE_NAMES):
            slow, fast = getattr(self.slow, name)(slow), getattr(self.fast, name)(fast)
            if i + 1 < len(self.laterals):
                slow = torch.cat((slow, self.laterals[i + 1](fast)), dim=1)
        return slow, fast

    def forward_features(self, clip: torch.Tensor) -> torch.Tensor:
        slow, fast = self.forward_feature_map(clip)
        return torch.cat((slow.mean((2, 3, 4)), fast.mean((2, 3, 4))), dim=1)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.forward_features(clip)


class ClassifierHead(nn.Module):
    """I3D-style head on pooled features: dropout -> fc, fc initialised N(0, 0.01), bias 0 (as MMAction2)."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.5, init_std: float = 0.01):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, num_classes)
        nn.init.normal_(self.fc.weight, 0.0, init_std)
        nn.init.zeros_(self.fc.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(features))


def single_clip(clip, what: str, key: str = "clip") -> torch.Tensor:
    """Accept a tensor or a one-pathway dict {key: tensor}; check it is a float (N, C, T, H, W) clip."""
    if isinstance(clip, dict):
        if key not in clip:
            raise ModelError(f"{what}: expected a clip tensor or a dict with key {key!r}, "
                             f"got a dict with keys {sorted(clip)}")
        clip = clip[key]
    check_clip(clip, what)
    return clip


class Recognizer3d(nn.Module):
    """A 3D backbone (ResNet3d = SlowOnly, or SlowFast) + ClassifierHead.

    Takes one clip (N, C, num_frames, H, W) sampled `frame_interval` frames apart (`clip_specs`); for
    SlowFast num_frames is the dense (fast) clip, alpha x the slow pathway's frames. Keys: `backbone.*`,
    `head.fc.*`. `num_classes=0` builds it without a head (forward returns the pooled features).
    """

    def __init__(self, backbone: ResNet3d | SlowFast, *, num_classes: int, num_frames: int, frame_interval: int,
                 dropout: float = 0.5):
        super().__init__()
        if num_frames < 1 or frame_interval < 1:
            raise ModelError(f"{type(self).__name__}: num_frames and frame_interval must be >= 1, "
                             f"got {num_frames} and {frame_interval}")
        if isinstance(backbone, SlowFast) and num_frames % backbone.alpha:
            raise ModelError(f"SlowFast: num_frames={num_frames} (the dense clip) must be a multiple of "
                             f"alpha={backbone.alpha}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.num_frames, self.frame_interval = num_frames, frame_interval
        self.feature_dim = backbone.feature_dim
        self.head = ClassifierHead(backbone.feature_dim, num_classes, dropout) if num_classes > 0 else None

    @property
    def clip_specs(self) -> dict[str, ClipSpec]:
        return {"clip": ClipSpec(self.num_frames, self.frame_interval)}

    def get_classifier(self) -> dict[str, nn.Linear]:
        return {"head.fc": self.head.fc} if self.head is not None else {}

    def forward_feature_map(self, clip):
        """The backbone's last feature map(s): a tensor (SlowOnly) or a (slow, fast) pair (SlowFast)."""
        return self.backbone.forward_feature_map(single_clip(clip, type(self).__name__))

    def forward_features(self, clip) -> torch.Tensor:
        """(N, C, T, H, W) -> (N, feature_dim) pooled features (SlowFast: slow and fast concatenated)."""
        return self.backbone.forward_features(single_clip(clip, type(self).__name__))

    def forward(self, clip) -> torch.Tensor:
        features = self.forward_features(clip)
        return features if self.head is None else self.head(features)


# -- ARC on 3D models --------------------------------------------------------------------------------------

def pathways_of(model: nn.Module) -> list[tuple[str, ResNet3d]]:
    """Every ResNet3d pathway inside `model` (itself, a backbone, both SlowFast pathways, multi-task pathways)."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, ResNet3d)]


def apply_arc3d(model: nn.Module, stages: Iterable[int] = (3, 4, 5), num_steps: int = 4,
                pool: str = "mean") -> nn.Module:
    """ARC (arc.apply_arc, 3D mode) on the 3x3 convs of stages res`stages` of every ResNet3d pathway in `model`.

    Both SlowFast pathways are decorated. The parts take slices of the convs; fineact.interop.load_weights
    splits a file's plain convs the same way, so weights can load before or after decorating.
    """
    from fineact.models.arc import apply_arc

    stages = tuple(stages)
    pathways = pathways_of(model)
    if not pathways:
        raise ModelError(f"apply_arc3d: {type(model).__name__} contains no ResNet3d pathway")
    for _, pathway in pathways:
        apply_arc(pathway, stages=stages, num_steps=num_steps, pool=pool)
    return model


# -- 2D -> 3D inflation (the kernel arithmetic; fineact.interop.inflate matches a file's keys to a pathway) -------

def check_inflate_mode(mode: str) -> None:
    if mode not in INFLATE_MODES:
        raise ModelError(f"inflation mode must be one of {INFLATE_MODES}, got {mode!r}")


def inflate_kernel(kernel_2d: torch.Tensor, shape_3d: Sequence[int], mode: str = "mean") -> torch.Tensor:
    """A 2D conv kernel (O, I2d, kh, kw) inflated to the 3D kernel shape (O, I, kt, kh, kw), I >= I2d.

    mode "mean" (I3D; REFERENCE.md): the 2D kernel is repeated over the k temporal taps and divided by k, so a
    clip of identical frames gives the 2D response wherever the temporal window lies inside the clip; at the
    clip's first and last frames the zero temporal padding removes taps, so pooled features differ slightly.
    mode "center": the 2D kernel goes to the centre tap, zeros elsewhere; then identical frames reproduce the
    2D network exactly at every frame (with zero padding).
    Input channels beyond the 2D kernel's (those a SlowFast lateral connection adds) get zeros (as MMAction2),
    so the slow pathway starts out ignoring the fast one.
    """
    check_inflate_mode(mode)
    out_channels, in_channels, kt = shape_3d[0], shape_3d[1], shape_3d[2]
    c2d = kernel_2d.shape[1]
    w = kernel_2d.new_zeros(out_channels, in_channels, kt, *kernel_2d.shape[2:])
    if mode == "mean":
        w[:, :c2d] = kernel_2d.unsqueeze(2).expand(-1, -1, kt, -1, -1) / kt
    else:
        w[:, :c2d, kt // 2] = kernel_2d
    return w


# -- builders ----------------------------------------------------------------------------------------------

def decorate_and_load(model: nn.Module, *, pretrained: str | Path | None, inflate: str,
                      arc_stages: Sequence[int], arc_steps: int, arc_pool: str) -> nn.Module:
    """ARC on `arc_stages` of every 3D pathway, then the ImageNet ResNet `pretrained` inflated into them.

    The loader splits each plain conv of the file into the ARC parts (fineact.interop.load_weights), so the
    decorated model gets the same numbers as decorating a loaded one. `model.load_report` says what loaded.
    """
    if arc_stages:
        apply_arc3d(model, tuple(arc_stages), arc_steps, arc_pool)
    model.arc_config = {"stages": tuple(arc_stages), "steps": arc_steps, "pool": arc_pool}
    model.load_report = None
    if pretrained:
        from fineact.interop.load import load_weights

        model.load_report = load_weights(model, pretrained, source="torchvision", inflate=inflate)
    return model


def slowonly(*, depth: int = 50, num_classes: int = 400, num_frames: int = 4, frame_interval: int = 16,
             base_channels: int = 64, dropout: float = 0.5, pretrained: str | Path | None = None,
             inflate: str = "mean", arc_stages: Sequence[int] = (), arc_steps: int = 4,
             arc_pool: str = "mean") -> Recognizer3d:
    """SlowOnly-R`depth`: one ResNet3d pathway, T = num_frames frames `frame_interval` apart.

    `pretrained`: a torchvision ImageNet ResNet checkpoint of the same depth (needs base_channels=64),
    inflated to 3D. `arc_stages`: ARC on the 3x3 convs of those stages (res2..res5).
    """
    backbone = ResNet3d(depth, base_channels, stem_kernel=(1, 7, 7), temporal_kernels=SLOW_TEMPORAL_KERNELS)
    model = Recognizer3d(backbone, num_classes=num_classes, num_frames=num_frames, frame_interval=frame_interval,
                         dropout=dropout)
    return decorate_and_load(model, pretrained=pretrained, inflate=inflate, arc_stages=arc_stages,
                             arc_steps=arc_steps, arc_pool=arc_pool)


def slowfast(*, depth: int = 50, num_classes: int = 400, num_frames: int = 32, frame_interval: int = 2,
             alpha: int = 8, beta_inv: int = 8, base_channels: int = 64, dropout: float = 0.5,
             pretrained: str | Path | None = None, inflate: str = "mean", arc_stages: Sequence[int] = (),
             arc_steps: int = 4, arc_pool: str = "mean") -> Recognizer3d:
    """SlowFast-R`depth`: the input is one dense clip of `num_frames` frames `frame_interval` apart.

    The fast pathway sees all num_frames frames with base_channels // beta_inv channels; the slow pathway sees
    num_frames // alpha frames (interval frame_interval * alpha). Defaults: SlowFast-R50 4x16 (32 x 2 dense).
    """
    backbone = SlowFast(depth, base_channels, alpha=alpha, beta_inv=beta_inv)
    model = Recognizer3d(backbone, num_classes=num_classes, num_frames=num_frames, frame_interval=frame_interval,
                         dropout=dropout)
    return decorate_and_load(model, pretrained=pretrained, inflate=inflate, arc_stages=arc_stages,
                             arc_steps=arc_steps, arc_pool=arc_pool)
