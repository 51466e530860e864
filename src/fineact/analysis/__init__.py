"""Analysis tools: model profiling (parameters, FLOPs) and, later, confusion matrices, Grad-CAM, ARC maps."""
