"""fineact: fine-grained video action recognition (ARC layers, hierarchical multi-task networks)."""

__version__ = "0.1.0"


def load_model(checkpoint, device="cpu"):
    """A Predictor for a trained checkpoint or export: `fineact.load_model(path).predict("clip.mp4")`."""
    from fineact.predict import load_model as _load_model

    return _load_model(checkpoint, device)
