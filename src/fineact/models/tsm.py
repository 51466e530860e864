"""TSM (temporal shift module) and TSN recognizers on a 2D ResNet, with segment consensus.

The clip (N, C, T, H, W) is processed as N*T images. Before conv1 of every residual block (on the residual
branch only, "blockres"), a temporal shift moves 1/8 of the channels one frame back in time and 1/8 one frame
forward, zero-filling the ends. ResNet-101 shifts every second block of each stage, as the TSM code does.
The head averages each frame's pooled feature, applies dropout and a Linear layer, and averages the logits
over the segments (average consensus). TSN is the same model without the shift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from fineact.errors import ModelError
from fineact.models.base import ClipSpec, check_clip, tracing
from fineact.models.resnet import ResNet, resnet


class TemporalShift(nn.Module):
    """Shift channel folds along time: [0, fold) take frame t+1, [fold, 2*fold) take frame t-1."""

    def __init__(self, num_segments: int, shift_div: int = 8):
        super().__init__()
        self.num_segments = num_segments
        self.shift_div = shift_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        x = x.view(nt // self.num_segments, self.num_segments, c, h, w)
        fold = c // self.shift_div
        if not tracing():
            return _Shift.apply(x, fold).view(nt, c, h, w)
        # Export and torch.compile trace this equivalent: plain concatenations, no writes into slices.
        zeros = x.new_zeros(x.shape[0], 1, fold, h, w)
        from_next = torch.cat((x[:, 1:, :fold], zeros), dim=1)               # frame t sees t+1
        from_prev = torch.cat((zeros, x[:, :-1, fold:2 * fold]), dim=1)      # frame t sees t-1
        return torch.cat((from_next, from_prev, x[:, :, 2 * fold:]), dim=2).view(nt, c, h, w)

    def extra_repr(self) -> str:
        return f"num_segments={self.num_segments}, shift_div={self.shift_div}"


def _shift_folds(x: torch.Tensor, fold: int, forward: bool) -> torch.Tensor:
    """x: (N, T, C, H, W). forward: channels [0, fold) take frame t+1 and [fold, 2*fold) frame t-1, the ends
    zero-filled; not forward: the opposite shift, which is the forward shift's gradient.

    One pass into a tensor allocated like x, so a channels_last input gives a channels_last output (the
    concatenations that export traces allocate NCHW, and every conv after them would convert back)."""
    out = torch.empty_like(x)
    later, earlier = slice(1, None), slice(None, -1)
    src, dst, zero_end = (later, earlier, -1) if forward else (earlier, later, 0)
    out[:, dst, :fold] = x[:, src, :fold]
    out[:, zero_end, :fold] = 0
    out[:, src, fold:2 * fold] = x[:, dst, fold:2 * fold]
    out[:, -1 - zero_end, fold:2 * fold] = 0
    out[:, :, 2 * fold:] = x[:, :, 2 * fold:]
    return out


class _Shift(torch.autograd.Function):
    """The temporal shift with its gradient (the opposite shift) written as one pass each way; autograd's
    slicing would zero-fill and add a full-size gradient for every slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, fold: int) -> torch.Tensor:
        ctx.fold = fold
        return _shift_folds(x, fold, forward=True)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _shift_folds(grad, ctx.fold, forward=False), None


class ConsensusHead(nn.Module):
    """Dropout + Linear per frame, averaged over segments. The Linear starts at N(0, 0.001), bias 0."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.5):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, num_classes)
        nn.init.normal_(self.fc.weight, 0.0, 0.001)
        nn.init.zeros_(self.fc.bias)

    def forward(self, frame_features: torch.Tensor, num_frames: int) -> torch.Tensor:
        logits = self.fc(self.dropout(frame_features))
        return logits.view(-1, num_frames, logits.shape[-1]).mean(1)


class SegmentRecognizer(nn.Module):
    """TSM (shift=True) or TSN (shift=False) on a 2D ResNet backbone.

    Input (N, C, T, H, W) with T a multiple of `num_segments`: T = k * num_segments holds k clips of the
    same video (e.g. twice-sampling), whose logits are averaged with the segments'.
    """

    def __init__(self, backbone: ResNet, *, num_classes: int, num_segments: int = 8, dropout: float = 0.5,
                 shift: bool = True, shift_div: int = 8, frame_interval: int | None = None):
        super().__init__()
        # None: TSN segment sampling over the whole video; an interval: dense clips of num_segments frames
        # `frame_interval` apart (the TSM code's dense sampling, used for Kinetics).
        self.frame_interval = frame_interval
        if backbone.fc is not None:
            raise ModelError("SegmentRecognizer needs a backbone built with num_classes=0 (it owns the head)")
        self.backbone = backbone
        self.num_segments = num_segments
        self.num_classes = num_classes
        self.feature_dim = backbone.feature_dim
        self.head = ConsensusHead(backbone.feature_dim, num_classes, dropout)
        if shift:
            stages = backbone.stages().values()
            every = 2 if len(backbone.layer3) >= 23 else 1  # ResNet-101: every second block, as the TSM code
            for stage in stages:
                for i, block in enumerate(stage):
                    if i % every == 0:
                        block.shift = TemporalShift(num_segments, shift_div)

    @property
    def clip_specs(self) -> dict[str, ClipSpec]:
        return {"clip": ClipSpec(self.num_segments, self.frame_interval)}

    def get_classifier(self) -> dict[str, nn.Linear]:
        return {"head.fc": self.head.fc}

    def _frames(self, clip: torch.Tensor) -> torch.Tensor:
        check_clip(clip, type(self).__name__)
        n, c, t, h, w = clip.shape
        if t % self.num_segments:
            raise ModelError(f"{type(self).__name__}: clip has T={t} frames, which is not a multiple of "
                             f"num_segments={self.num_segments}")
        return clip.transpose(1, 2).reshape(n * t, c, h, w)

    def forward_features(self, clip: torch.Tensor) -> torch.Tensor:
        """(N, C, T, H, W) -> (N, feature_dim): per-frame pooled features averaged over the frames."""
        t = clip.shape[2] if clip.dim() == 5 else 0
        feats = self.backbone.forward_features(self._frames(clip))
        return feats.view(-1, t, feats.shape[-1]).mean(1)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        t = clip.shape[2] if clip.dim() == 5 else 0
        feats = self.backbone.forward_features(self._frames(clip))
        return self.head(feats, t)


def segment_recognizer(*, depth: int, num_classes: int, num_segments: int = 8, dropout: float = 0.5,
                       shift: bool = True, frame_interval: int | None = None, arc_stages: Sequence[int] = (),
                       arc_steps: int = 4, arc_pool: str = "mean",
                       pretrained: str | Path | None = None) -> SegmentRecognizer:
    """TSM/TSN-ResNet-`depth`, with ARC on `arc_stages` (res2..res5; none: plain TSM/TSN).

    `pretrained`: a torchvision ImageNet checkpoint on disk, loaded after ARC is applied (the loader splits each
    plain conv into the ARC parts, as decorating a loaded model would); `model.load_report` says what loaded.
    """
    from fineact.interop.load import load_weights
    from fineact.models.arc import apply_arc

    if num_segments < 1:
        raise ModelError(f"num_segments must be a positive number of frames per clip, got {num_segments}")
    if frame_interval is not None and frame_interval < 1:
        raise ModelError(f"frame_interval must be a positive number of frames or None, got {frame_interval}")
    model = SegmentRecognizer(resnet(depth, num_classes=0), num_classes=num_classes, num_segments=num_segments,
                              dropout=dropout, shift=shift, frame_interval=frame_interval)
    if arc_stages:
        apply_arc(model, stages=tuple(arc_stages), num_steps=arc_steps, pool=arc_pool)
    model.arc_config = {"stages": tuple(arc_stages), "steps": arc_steps, "pool": arc_pool}
    model.load_report = load_weights(model, pretrained, source="torchvision") if pretrained else None
    return model
