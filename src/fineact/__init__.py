"""fineact: fine-grained video action recognition (ARC layers, hierarchical multi-task networks)."""

__version__ = "0.1.0"


def load_model(checkpoint, device="cpu"):
    """A Predictor for a trained checkpoint or export: `fineact.load_model(path).predict("clip.mp4")`."""
    from fineact.predict import load_model as _load_model

    return _load_model(checkpoint, device)


def load_weights(model, path, source="auto", strict=True, **kwargs):
    """Load weights users already have into a fineact model (torchvision, official TSM, MMAction2, fineact).

    `source` is "auto" (detected from the keys), "torchvision", "tsm-official", "mmaction2" or "fineact";
    returns a report of what was loaded and what kept its initialisation. See `fineact.interop.load_weights`.
    """
    from fineact.interop import load_weights as _load_weights

    return _load_weights(model, path, source=source, strict=strict, **kwargs)
