"""The registered models: thin builders over tsm.py / arc.py (and, later, resnet3d.py / multitask.py).

Defaults reproduce the papers' setups: 8 segments, 174 classes (Something-Something V1), dropout 0.5, ARC on
res3-res5 with n = 4 parts and mean pooling (the authors' code).
"""

from __future__ import annotations

from typing import Sequence

from fineact.models.arc import apply_arc
from fineact.models.registry import register_model
from fineact.models.tsm import SegmentRecognizer, segment_recognizer


def _segment_model(depth: int, shift: bool, num_classes: int, num_segments: int, pretrained: str | None,
                   dropout: float, arc_stages: Sequence[int], arc_steps: int, arc_pool: str,
                   frame_interval: int | None) -> SegmentRecognizer:
    model = segment_recognizer(depth, num_classes, num_segments, dropout, shift, pretrained, frame_interval)
    if arc_stages:
        # Decorate after loading ImageNet weights: the parts inherit slices of the pretrained convs.
        apply_arc(model, stages=tuple(arc_stages), num_steps=arc_steps, pool=arc_pool)
    model.arc_config = {"stages": tuple(arc_stages), "steps": arc_steps, "pool": arc_pool}
    return model


def _register_segment_family(prefix: str, depth: int, shift: bool, arc_default: tuple[int, ...],
                             summary: str, paper: dict | None = None) -> None:
    def builder(num_classes: int = 174, num_segments: int = 8, pretrained: str | None = None,
                dropout: float = 0.5, arc_stages: Sequence[int] = arc_default, arc_steps: int = 4,
                arc_pool: str = "mean", frame_interval: int | None = None) -> SegmentRecognizer:
        return _segment_model(depth, shift, num_classes, num_segments, pretrained, dropout,
                              arc_stages, arc_steps, arc_pool, frame_interval)

    builder.__name__ = f"{prefix}_r{depth}"
    builder.__doc__ = summary
    register_model(f"{prefix}_r{depth}", summary, paper)(builder)


# Paper figures: seed 002 Tables 3-5 (SSv1, 8 frames, 174 classes); parameters as REFERENCE.md section 2.
_PAPER = {
    ("tsm", 18): {"params": 11_265_774, "gmacs": 14.6, "top1": {"ssv1_8f": 41.8, "diving48_v1_16f": 36.0}},
    ("tsm", 50): {"params": 23_864_558, "gmacs": 33.0, "top1": {"ssv1_8f": 47.8, "diving48_v1_16f": 38.8}},
    ("arc_tsm", 18): {"params": 14_190_318, "gmacs": 17.2, "top1": {"ssv1_8f": 47.9, "diving48_v1_16f": 39.6}},
    ("arc_tsm", 50): {"params": 26_977_518, "gmacs": 37.0,
                      "top1": {"ssv1_8f": 51.2, "diving48_v1_16f": 42.4, "diving48_v2_16f": 89.8}},
}

for _depth in (18, 34, 50, 101):
    _register_segment_family("tsn", _depth, False, (), f"TSN-ResNet{_depth}: 2D ResNet per frame, segment consensus")
    _register_segment_family("tsm", _depth, True, (), f"TSM-ResNet{_depth}: temporal shift (1/8 each way) "
                             "before conv1 of each block", _PAPER.get(("tsm", _depth)))
    _register_segment_family("arc_tsm", _depth, True, (3, 4, 5), f"ARC-TSM-ResNet{_depth}: TSM with ARC "
                             "(n=4, mean pooling) on the 3x3 convs of res3-res5", _PAPER.get(("arc_tsm", _depth)))
