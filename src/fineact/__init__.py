"""fineact: fine-grained video action recognition (ARC layers, hierarchical multi-task networks)."""

__version__ = "0.1.0"
