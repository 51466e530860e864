"""2D ImageNet (torchvision) ResNet weights into fineact's 3D models: every conv inflated along time.

The kernel arithmetic (I3D mean, or centre) is `fineact.models.resnet3d.inflate_kernel`; here the keys of a 2D
file are matched to a 3D pathway strictly, and every pathway of a model (SlowOnly, a SlowFast slow pathway,
multi-task pathways) gets its inflated copy. Keys come out plain (no ARC parts): `load.load_weights` splits
them into the parts of ARC layers afterwards.
"""

from __future__ import annotations

import torch
from torch import nn

from fineact.interop.weights import check_fit
from fineact.models.multitask import HierarchicalMultiTask
from fineact.models.resnet3d import STAGE_NAMES, ResNet3d, SlowFast, check_inflate_mode, inflate_kernel


def _plain_shapes(pathway: ResNet3d) -> dict[str, torch.Tensor]:
    """The state dict of a ResNet3d built like `pathway` but without ARC, on the meta device (shapes only)."""
    with torch.device("meta"):
        twin = ResNet3d(pathway.depth, pathway.base_channels, in_channels=pathway.conv1.in_channels,
                        stem_kernel=pathway.conv1.kernel_size, temporal_kernels=pathway.temporal_kernels,
                        lateral_channels=pathway.lateral_channels)
    return twin.state_dict()


def inflate_resnet2d(pathway: ResNet3d, state_2d: dict[str, torch.Tensor], mode: str = "mean",
                     source: str = "a 2D state dict") -> dict[str, torch.Tensor]:
    """The plain-key state dict of `pathway` inflated from a 2D ResNet state dict (torchvision keys).

    BN is copied; every conv is inflated (`inflate_kernel`). Convs whose input is widened by SlowFast laterals
    (the first conv and projection of a stage) may have more input channels than their 2D twin: the extra ones
    are zeros. The 2D classifier `fc.*` is not used. Strict: missing or unexpected keys, or shapes that cannot be
    inflated, raise a WeightsError listing them.
    """
    check_inflate_mode(mode)
    target = _plain_shapes(pathway)
    state = {k: v for k, v in state_2d.items() if not k.startswith("fc.")}

    def inflatable(key: str, value: torch.Tensor, want: torch.Tensor) -> bool:
        if want.dim() != 5:
            return value.shape == want.shape
        ok = (value.dim() == 4 and value.shape[0] == want.shape[0] and value.shape[2:] == want.shape[3:]
              and value.shape[1] <= want.shape[1])
        if ok and value.shape[1] < want.shape[1]:
            # Only a conv reading lateral channels may have more inputs than its 2D twin.
            stage = key.split(".")[0]
            extra = pathway.lateral_channels[STAGE_NAMES.index(stage)] if stage in STAGE_NAMES else 0
            first_conv = key.endswith(".0.conv1.weight") or key.endswith(".0.downsample.0.weight")
            ok = first_conv and want.shape[1] - value.shape[1] == extra
        return ok

    check_fit(target, state, f"2D ResNet weights from {source} cannot be inflated into a ResNet3d-{pathway.depth} "
              f"(base_channels={pathway.base_channels}; inflation needs a torchvision ResNet-{pathway.depth} "
              f"checkpoint and base_channels=64):", shape_ok=inflatable)
    return {k: inflate_kernel(v, target[k].shape, mode) if target[k].dim() == 5 else v
            for k, v in state.items()}


def torchvision_into_3d(model: nn.Module, state_2d: dict[str, torch.Tensor], mode: str,
                        source: str) -> tuple[dict[str, torch.Tensor], dict[str, str], list[str]]:
    """Inflate into every 3D pathway. Returns (state, {prefix: why it has no counterpart}, unused keys)."""
    check_inflate_mode(mode)
    state: dict[str, torch.Tensor] = {}
    without: dict[str, str] = {}
    modules = dict(model.named_modules())
    slowfasts = [name for name, m in modules.items() if isinstance(m, SlowFast)]
    for name in slowfasts:
        prefix = f"{name}." if name else ""
        slow = modules[name].slow
        state.update({f"{prefix}slow.{k}": v for k, v in inflate_resnet2d(slow, state_2d, mode, source).items()})
        without[f"{prefix}fast."] = "fast pathway: its channels differ from the 2D network, left as built"
        without[f"{prefix}laterals."] = "lateral connections: no 2D counterpart, left as built"
    for name, module in modules.items():
        inside_slowfast = any(name.startswith(f"{sf}." if sf else "") for sf in slowfasts)
        if isinstance(module, ResNet3d) and not inside_slowfast:
            prefix = f"{name}." if name else ""
            state.update({f"{prefix}{k}": v for k, v in inflate_resnet2d(module, state_2d, mode, source).items()})
    if isinstance(model, HierarchicalMultiTask):
        for part in ("encoders.", "fusion."):
            without[part] = "no counterpart in a 2D ImageNet network, left as built"
    unused = sorted(k for k in state_2d if k.startswith("fc."))
    return state, without, unused
