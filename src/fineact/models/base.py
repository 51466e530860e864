"""What every fineact model tells the data pipeline about its input.

A model needs one or more clips ("pathways"). For each it states how many frames it takes and how they are
sampled: `frame_interval=None` means TSN segment sampling across the whole video (TSM/TSN), an integer means a
dense clip of `num_frames` frames `frame_interval` apart (SlowOnly/SlowFast and the multi-task pathways).
Single-pathway models take a (N, C, T, H, W) tensor; multi-pathway models take {pathway name: tensor}.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fineact.errors import ModelError


@dataclass(frozen=True)
class ClipSpec:
    num_frames: int
    frame_interval: int | None = None  # None: one frame per segment over the whole video

    @property
    def span(self) -> int | None:
        """Frames of video one dense clip covers (None for segment sampling)."""
        return None if self.frame_interval is None else self.num_frames * self.frame_interval


def classifiers(model: nn.Module) -> dict[str, nn.Linear]:
    """The final classifier(s) of a fineact model: {state-dict prefix (module name): nn.Linear}.

    Every fineact model answers `get_classifier()` (timm's idea): "head.fc" for one classifier, one entry per
    level for multi-level models ("heads.event", "head.fc.event", ...), {} for a bare backbone or a model built
    without a head. The optimiser gives these their lr multipliers; the weight loader lets only these differ
    from a file (another class count) and keep their initialisation.
    """
    get = getattr(model, "get_classifier", None)
    if get is None:
        raise ModelError(f"{type(model).__name__} does not name its classifier: fineact models define "
                         f"get_classifier() -> {{state-dict prefix: nn.Linear}}")
    return dict(get())


def tracing() -> bool:
    """True while torch.jit, torch.compile or torch.export trace a model: eager-only fast paths (autograd
    Functions that write into slices, in-place buffers) give way to plain ops there."""
    return torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling()


def check_clip(clip: torch.Tensor, what: str, channels: int = 3) -> None:
    """Raise a ModelError unless `clip` is a float (N, C, T, H, W) tensor with `channels` channels."""
    if not isinstance(clip, torch.Tensor):
        raise ModelError(f"{what}: expected a clip tensor (N, C, T, H, W), got {type(clip).__name__}")
    if clip.dim() != 5:
        raise ModelError(f"{what}: expected a clip of rank 5 (N, C, T, H, W), got shape {tuple(clip.shape)}")
    if clip.shape[1] != channels:
        raise ModelError(f"{what}: expected {channels} channels in dim 1 of (N, C, T, H, W), "
                         f"got shape {tuple(clip.shape)}")
    if not clip.is_floating_point():
        raise ModelError(f"{what}: expected a float clip (normalised pixels), got dtype {clip.dtype}")
