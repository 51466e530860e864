"""Reading weight files and loading a state dict strictly: the one file reader and the one strict fit.

Files are read with `torch.load(weights_only=True)` (no pickled code runs) or with safetensors; the wrappers
training frameworks put around the tensors ({"state_dict": {...}}, {"model": {...}}) are taken off. Loading is
strict: missing or unexpected keys and shape mismatches raise a WeightsError that lists them; only keys under
the prefixes a caller allows (the model's classifier) may differ or be absent: they keep the module's
initialisation and the report names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from fineact.errors import WeightsError

# Wrappers that training frameworks put around the tensors: {"state_dict": {...}}, {"model": {...}}.
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module")


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


# -- reading -----------------------------------------------------------------------------------------------------

class _Inert:
    """Stands in for a non-tensor object of a checkpoint's metadata (mmengine buffers, numpy scalars, ...).

    Built by the weights-only unpickler instead of the real class, it runs no code and keeps nothing. Only
    tensors under `state_dict` are used, so the stand-ins are thrown away with the metadata.
    """

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __call__(self, *args, **kwargs):
        return type(self)()


def _unwrap(obj, path: Path) -> dict[str, torch.Tensor]:
    while isinstance(obj, dict):
        wrapper = next((k for k in WRAPPER_KEYS if k in obj and isinstance(obj[k], dict)), None)
        if wrapper is None:
            break
        obj = obj[wrapper]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"weights file {path}: expected a dict of tensors (optionally under 'state_dict'), "
                           f"found {type(obj).__name__}" + (f" with keys {list(obj)[:8]}" if isinstance(obj, dict)
                                                            else ""))
    return dict(obj)


def load_failure(path: Path, exc: BaseException, what: str = "weights file") -> WeightsError:
    """A WeightsError saying why torch.load(weights_only=True) could not read `path`, in fineact's words.

    PyTorch's own messages end with advice to retry with `weights_only=False`, which would let the file run
    code: that advice is never relayed."""
    size = path.stat().st_size if path.is_file() else 0
    if size == 0:
        return WeightsError(f"{what} {path}: the file is empty (0 bytes), e.g. an interrupted copy or download")
    text = str(exc)
    with open(path, "rb") as handle:
        magic = handle.read(2)
    if path.suffix != ".safetensors" and magic != b"PK" and not magic.startswith(b"\x80"):
        return WeightsError(f"{what} {path}: cannot be read: not a PyTorch file (it starts with {magic!r}, not "
                            "like a torch.save archive)")
    if type(exc).__name__ == "UnpicklingError":  # by name: fineact imports no pickle module
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception:
            names = []
        found = f" (it holds {', '.join(names[:5])})" if names else ""
        return WeightsError(f"{what} {path}: it holds Python objects other than tensors{found}; fineact loads "
                            "checkpoints weights-only, since loading such objects can run code from the file")
    if isinstance(exc, EOFError) or "central directory" in text or "PytorchStreamReader" in text \
            or "incomplete metadata" in text or "header too small" in text:
        return WeightsError(f"{what} {path}: the file is truncated or not a PyTorch/safetensors file ({size} "
                            "bytes), e.g. a copy or a save that did not finish")
    first = next((line for line in text.splitlines() if line.strip()), type(exc).__name__)
    first = first.split(" Re-running `torch.load`")[0]  # never relay the weights_only=False advice
    return WeightsError(f"{what} {path}: cannot be read as weights only ({type(exc).__name__}: {first[:200]})")


def torch_load_weights_only(path: str | Path, what: str = "weights file", map_location="cpu"):
    """torch.load(weights_only=True) with every failure a WeightsError naming the file (see `load_failure`)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{what} {path}: not found" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise load_failure(path, exc, what) from None


def read_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """The flat {key: tensor} dict of a .pth/.pt/.ckpt/.tar (weights only) or .safetensors file.

    Checkpoints of training frameworks carry metadata next to `state_dict` (MMAction2 0.x/1.x: `meta`,
    `message_hub`, ...), sometimes with classes the weights-only unpickler refuses. Those globals are replaced by
    inert stand-ins (no code from the file runs); only the tensors are kept.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path}: not found (expected a .pth/.pt/.ckpt or .safetensors file)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return _unwrap(load_file(str(path)), path)
        except WeightsError:
            raise
        except Exception as exc:
            raise load_failure(path, exc) from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as first:
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception:
            names = []
        if not names:
            raise load_failure(path, first) from None
        stand_ins = [(type(f"Inert_{i}", (_Inert,), {}), name) for i, name in enumerate(names)]
        try:
            with torch.serialization.safe_globals(stand_ins):
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise load_failure(path, exc) from None
    return _unwrap(obj, path)


# -- fitting ---------------------------------------------------------------------------------------------------

def optional_key(key: str) -> bool:
    """Keys a file may lack: BN step counters (old torchvision checkpoints have none; BatchNorm starts them at 0)."""
    return key.endswith("num_batches_tracked")


def check_fit(target: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], header: str,
              reinit_ok: tuple[str, ...] = (), shape_ok=None) -> None:
    """Raise a WeightsError under `header` listing the missing, unexpected and mis-shaped keys of `state`.

    Keys under a `reinit_ok` prefix may be absent or differ. `shape_ok(key, file tensor, model tensor)` decides
    whether two shapes fit (default: equal).
    """
    fits = shape_ok or (lambda key, have, want: have.shape == want.shape)
    missing = [k for k in target if k not in state and not optional_key(k) and not k.startswith(reinit_ok)]
    unexpected = [k for k in state if k not in target and not k.startswith(reinit_ok)]
    mismatched = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(target[k].shape)}"
                  for k in target if k in state and not k.startswith(reinit_ok) and not fits(k, state[k], target[k])]
    if missing or unexpected or mismatched:
        lines = [header]
        for title, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
            if keys:
                shown = ", ".join(keys[:20]) + (f", ... ({len(keys)} in all)" if len(keys) > 20 else "")
                lines.append(f"  {title} keys: {shown}")
        raise WeightsError("\n".join(lines))


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], source: str,
                reinit_ok: tuple[str, ...] = ()) -> LoadReport:
    """Load `state` into `module`; keys under a `reinit_ok` prefix may differ in shape or be absent.

    Such keys keep the module's fresh initialisation and are named in the report. Everything else must
    match exactly, or a WeightsError lists the missing, unexpected and mismatched keys.
    """
    target = module.state_dict()
    check_fit(target, state, f"weights from {source} do not fit {type(module).__name__}:", reinit_ok)
    usable = {k: v for k, v in state.items() if k in target and v.shape == target[k].shape}
    module.load_state_dict(usable, strict=False)
    report = LoadReport(source, loaded=sorted(usable))
    report.reinitialised = sorted({k.rsplit(".", 1)[0] for k in target
                                   if k.startswith(reinit_ok) and k not in usable})
    return report
