"""Independent, deliberately plain re-implementations used as references by the tests.

They share no code with fineact: a functional torchvision-layout ResNet forward written from the state dict,
and a from-scratch evaluation of the ARC equations that recomputes every sum for every part.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _bn(x, sd, prefix):
    return F.batch_norm(x, sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"], sd[f"{prefix}.weight"],
                        sd[f"{prefix}.bias"], training=False, eps=1e-5)


def torchvision_resnet50_features(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """ResNet-50 v1.5 (stride in the 3x3 conv) pooled features from a torchvision-layout state dict."""
    x = F.relu(_bn(F.conv2d(x, sd["conv1.weight"], stride=2, padding=3), sd, "bn1"))
    x = F.max_pool2d(x, 3, 2, 1)
    for stage, blocks in zip(range(1, 5), (3, 4, 6, 3)):
        for b in range(blocks):
            p = f"layer{stage}.{b}"
            stride = 2 if (b == 0 and stage > 1) else 1
            out = F.relu(_bn(F.conv2d(x, sd[f"{p}.conv1.weight"]), sd, f"{p}.bn1"))
            out = F.relu(_bn(F.conv2d(out, sd[f"{p}.conv2.weight"], stride=stride, padding=1), sd, f"{p}.bn2"))
            out = _bn(F.conv2d(out, sd[f"{p}.conv3.weight"]), sd, f"{p}.bn3")
            if f"{p}.downsample.0.weight" in sd:
                x = _bn(F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=stride), sd, f"{p}.downsample.1")
            x = F.relu(out + x)
    return x.mean((2, 3))


def arc_reference(layer, x: torch.Tensor) -> torch.Tensor:
    """Evaluate an ARCConv (2D or 3D) straight from the equations, recomputing every sum from scratch.

    Y_j are nearest-upsampled to X's size, P(Y) = PoolT(Y) (+) PoolS(Y) is materialised at full size, Wa, Wf
    and We are applied as plain convolutions to full-size tensors.
    """
    conv = F.conv2d if layer.dims == 2 else F.conv3d
    reduce = (lambda t, d: t.mean(d, keepdim=True)) if layer.pool == "mean" else (lambda t, d: t.amax(d, keepdim=True))

    def to_ntchw(t):  # common (N, T, C, H, W) layout
        if layer.dims == 2:
            return t.view(-1, layer.num_segments, *t.shape[1:])
        return t.permute(0, 2, 1, 3, 4)

    def from_ntchw(t):
        if layer.dims == 2:
            return t.reshape(-1, *t.shape[2:])
        return t.permute(0, 2, 1, 3, 4)

    def upsample(t):
        if t.shape[-2:] == x.shape[-2:]:
            return t
        size = x.shape[-2:] if layer.dims == 2 else (x.shape[2], *x.shape[-2:])
        return F.interpolate(t, size=size, mode="nearest")

    def pooled(y):
        y = to_ntchw(upsample(y))
        return from_ntchw(reduce(y, (1,)) + reduce(y, (3, 4)))  # PoolT (+) PoolS, broadcast to full size

    ys = []
    for i, part in enumerate(layer.parts):
        if i == 0:
            z = x
        else:
            inner = x + conv(x, layer.embed.weight)
            outer = torch.zeros_like(x)
            for j in range(i):
                inner = inner + conv(pooled(ys[j]), layer.attend[j].weight)
                outer = outer + conv(upsample(ys[j]), layer.fuse[j].weight)
            z = F.relu(F.relu(inner) + outer)
        ys.append(part(z))
    return torch.cat(ys, 1)
