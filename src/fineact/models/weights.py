"""Reading weight files from disk and loading them strictly.

Files are read with `torch.load(weights_only=True)` (no pickled code runs) or with safetensors. Loading is
strict: missing or unexpected backbone keys and shape mismatches raise a WeightsError that lists them; only
a classifier whose class count differs is re-initialised, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from fineact.errors import WeightsError

# Wrappers that training frameworks put around the tensors: {"state_dict": {...}}, {"model": {...}}.
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module")


@dataclass
class LoadReport:
    """What a load did: every key of the model is either loaded or named in `reinitialised`."""

    source: str
    loaded: list[str] = field(default_factory=list)
    reinitialised: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"loaded {len(self.loaded)} tensors from {self.source}"
        if self.reinitialised:
            text += f"; re-initialised {', '.join(self.reinitialised)}"
        return text


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a flat {name: tensor} dict from a .pth/.pt/.ckpt (weights only) or .safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path}: not found (expected a .pth/.pt/.ckpt or .safetensors file)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path))
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any reader failure is a bad file from the user's point of view
        raise WeightsError(f"weights file {path}: cannot be read as weights only ({type(exc).__name__}: {exc})") from None
    while isinstance(obj, dict):
        wrapper = next((k for k in _WRAPPER_KEYS if k in obj and isinstance(obj[k], dict)), None)
        if wrapper is None:
            break
        obj = obj[wrapper]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"weights file {path}: expected a dict of tensors (optionally under 'state_dict'), "
                           f"found {type(obj).__name__}")
    return dict(obj)


def _optional(key: str) -> bool:
    # Old torchvision checkpoints have no BN step counters; BatchNorm starts them at 0.
    return key.endswith("num_batches_tracked")


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], source: str,
                reinit_ok: tuple[str, ...] = ()) -> LoadReport:
    """Load `state` into `module`; keys under a `reinit_ok` prefix may differ in shape or be absent.

    Such keys keep the module's fresh initialisation and are named in the report. Everything else must
    match exactly, or a WeightsError lists the missing, unexpected and mismatched keys.
    """
    target = module.state_dict()
    missing = [k for k in target if k not in state and not _optional(k) and not k.startswith(reinit_ok)]
    unexpected = [k for k in state if k not in target and not k.startswith(reinit_ok)]
    mismatched = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(target[k].shape)}"
                  for k in target if k in state and state[k].shape != target[k].shape
                  and not k.startswith(reinit_ok)]
    if missing or unexpected or mismatched:
        lines = [f"weights from {source} do not fit {type(module).__name__}:"]
        for title, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
            if keys:
                shown = ", ".join(keys[:20]) + (f", ... ({len(keys)} in all)" if len(keys) > 20 else "")
                lines.append(f"  {title} keys: {shown}")
        raise WeightsError("\n".join(lines))
    usable = {k: v for k, v in state.items() if k in target and v.shape == target[k].shape}
    module.load_state_dict(usable, strict=False)
    report = LoadReport(source, loaded=sorted(usable))
    report.reinitialised = sorted({k.rsplit(".", 1)[0] for k in target
                                   if k.startswith(reinit_ok) and k not in usable})
    return report


def load_torchvision_resnet(backbone: nn.Module, path: str | Path,
                            classifier: nn.Linear | None = None) -> LoadReport:
    """Load a torchvision ImageNet ResNet checkpoint into `backbone` (a fineact ResNet).

    `fc.*` goes to `classifier` (or to backbone.fc) when its shape fits and is re-initialised otherwise.
    """
    state = read_state_dict(path)
    fc_state = {k[3:]: v for k, v in state.items() if k.startswith("fc.")}
    body = {k: v for k, v in state.items() if not k.startswith("fc.")}
    own_fc = getattr(backbone, "fc", None)
    if own_fc is not None:
        body.update({f"fc.{k}": v for k, v in fc_state.items()})
        return load_strict(backbone, body, str(path), reinit_ok=("fc.",))
    report = load_strict(backbone, body, str(path))
    if classifier is not None:
        fits = all(k in fc_state and fc_state[k].shape == v.shape for k, v in classifier.state_dict().items())
        if fits:
            classifier.load_state_dict(fc_state)
            report.loaded += ["fc.weight", "fc.bias"]
        else:
            report.reinitialised.append("fc (class count differs)")
    return report
