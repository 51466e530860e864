"""Interoperability: load the checkpoints users already have, and export trained models for deployment.

    from fineact.interop import load_weights, load_pathway_weights, export_model, verify_export

- `load_weights(model, path, source="auto")`: torchvision ImageNet ResNets (inflated into 3D models), the
  official TSM code's checkpoints, MMAction2 0.x / 1.x TSN, TSM, SlowOnly and SlowFast checkpoints, and fineact's
  own checkpoints and exports. Returns a report of what was loaded and what kept its initialisation.
- `load_pathway_weights(model, pathway, path)`: one pathway of the hierarchical multi-task network from a
  single-level checkpoint (the paper's two-stage training with peer checkpoints).
- `export_model(model, path, format)`: TorchScript, ONNX or torch.export (.pt2), with a JSON description of the
  inputs (order, frames, sampling, normalisation) and outputs (levels, class names) next to the file;
  `verify_export` compares the exported model with the eager one.
"""

from fineact.interop.export import export_model, load_exported, make_example_inputs, verify_export
from fineact.interop.keymaps import SOURCES, detect_source
from fineact.interop.load import InteropReport, load_pathway_weights, load_weights
from fineact.interop.sidecar import EXPORT_FORMATS
from fineact.interop.weights import LoadReport, read_weights_file

__all__ = ["EXPORT_FORMATS", "InteropReport", "LoadReport", "SOURCES", "detect_source", "export_model", "load_exported",
           "load_pathway_weights", "load_weights", "make_example_inputs", "read_weights_file", "verify_export"]
