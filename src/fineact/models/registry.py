"""Model registry: `build_model(name, **kwargs)` and `list_models()`.

Each entry is a plain builder function plus what the papers publish about it (parameters, GMACs, accuracy),
so `fineact profile` and the tests can compare a build with the paper. Builders are ordinary functions you can
jump to; the registry adds only the name lookup and argument checking.
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from fineact.errors import ModelError


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    summary: str
    # What the papers report for this model with its default arguments (for comparison, never used to build).
    paper: dict[str, Any] = field(default_factory=dict)

    def accepted_arguments(self) -> list[str]:
        return [p for p in inspect.signature(self.builder).parameters]

    def defaults(self) -> dict[str, Any]:
        return {k: p.default for k, p in inspect.signature(self.builder).parameters.items()
                if p.default is not inspect.Parameter.empty}


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, summary: str, paper: dict[str, Any] | None = None):
    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelEntry(name, builder, summary, dict(paper or {}))
        return builder

    return decorate


def _ensure_registered() -> None:
    # Importing the definition module fills the registry; kept lazy so `import fineact` stays cheap.
    import fineact.models.zoo  # noqa: F401  (2D: TSN, TSM, ARC-TSM)
    import fineact.models.zoo_video  # noqa: F401  (3D: SlowOnly, SlowFast, multi-task)


def list_models() -> list[str]:
    _ensure_registered()
    return sorted(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    _ensure_registered()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ModelError(f"unknown model {name!r}.{hint} Available models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; every model takes a float clip (N, C, T, H, W) and returns logits."""
    entry = get_entry(name)
    accepted = entry.accepted_arguments()
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        hints = [f"{k} (did you mean {difflib.get_close_matches(k, accepted, n=1)[0]}?)"
                 if difflib.get_close_matches(k, accepted, n=1) else k for k in unknown]
        raise ModelError(f"model {name!r} does not take {', '.join(hints)}; it takes: {', '.join(accepted)}")
    model = entry.builder(**kwargs)
    model.registry_name = name
    return model
