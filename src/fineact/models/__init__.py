"""fineact models: build any of them by name with `build_model`, list them with `list_models`."""

from fineact.models.arc import ARCConv, apply_arc, arc_layers, arc_parameters
from fineact.models.base import ClipSpec
from fineact.models.registry import build_model, get_entry, list_models

__all__ = ["ARCConv", "ClipSpec", "apply_arc", "arc_layers", "arc_parameters", "build_model", "get_entry",
           "list_models"]
