"""Realistic random weights for checking an export against the eager model without a trained checkpoint.

Used by tests/test_export.py and benchmarks/export_check.py: an untrained model has zero-initialised branches
(ARC's maps, some classifiers) and BN statistics of 0 / 1, so an export that drops or miscomputes such a
branch would still match the eager outputs. These weights make every branch contribute.
"""

from __future__ import annotations

import torch
from torch import nn

from fineact.interop.export import make_example_inputs, model_input


def calibrate_random_weights(model: nn.Module, size: int = 32, seed: int = 0, batch: int = 4) -> nn.Module:
    """Give an untrained model realistic random weights for checking an export (in place; returns it).

    Random BN affines, ARC maps and classifiers (so no branch is zero, logits are of order 1), then BN
    statistics measured on one random batch. Exported and eager outputs are then compared on activations like a
    trained model's, where a zero-initialised branch could hide a wrong export.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2 + (1.0 if name.endswith("weight") else 0.0))
            elif any(part in name for part in (".embed.", ".fuse.", ".attend.")):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
            elif p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen) * (1.0 / p.shape[1]) ** 0.5)
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one batch gives its own statistics
        model.eval()
        for m in norms:
            m.train()
        clips = make_example_inputs(model, size=size, batch=batch, seed=seed + 1)
        model(model_input(model, clips))
        model.eval()
    return model


__all__ = ["calibrate_random_weights"]
