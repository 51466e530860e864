"""The registered 2D models: TSN, TSM and ARC-TSM on ResNet-18/34/50/101, thin builders over tsm.py / arc.py.

Defaults reproduce the papers' setups: 8 segments, 174 classes (Something-Something V1), dropout 0.5, ARC on
res3-res5 with n = 4 parts and mean pooling (the authors' code). Every builder takes the same keyword
arguments (tsm.segment_recognizer documents them); only depth, the shift and the default ARC stages differ.
"""

from __future__ import annotations

from fineact.models.registry import register_model
from fineact.models.tsm import SegmentRecognizer, segment_recognizer

# Paper figures: seed 002 Tables 3-5 (SSv1, 8 frames, 174 classes); parameters as REFERENCE.md section 2.
_PAPER = {
    "tsm_r18": {"params": 11_265_774, "gmacs": 14.6, "top1": {"ssv1_8f": 41.8, "diving48_v1_16f": 36.0}},
    "tsm_r50": {"params": 23_864_558, "gmacs": 33.0, "top1": {"ssv1_8f": 47.8, "diving48_v1_16f": 38.8}},
    "arc_tsm_r18": {"params": 14_190_318, "gmacs": 17.2, "top1": {"ssv1_8f": 47.9, "diving48_v1_16f": 39.6}},
    "arc_tsm_r50": {"params": 26_977_518, "gmacs": 37.0,
                    "top1": {"ssv1_8f": 51.2, "diving48_v1_16f": 42.4, "diving48_v2_16f": 89.8}},
}
_ARC = (3, 4, 5)  # ARC-TSM's default stages: res3-res5


def _tsn(depth: int) -> str:
    return f"TSN-ResNet{depth}: 2D ResNet per frame, segment consensus"


def _tsm(depth: int) -> str:
    return f"TSM-ResNet{depth}: temporal shift (1/8 each way) before conv1 of each block"


def _arc_tsm(depth: int) -> str:
    return f"ARC-TSM-ResNet{depth}: TSM with ARC (n=4, mean pooling) on the 3x3 convs of res3-res5"


# Each builder passes its own keyword arguments (locals()) on to segment_recognizer.

@register_model("tsn_r18", _tsn(18))
def tsn_r18(*, num_classes=174, num_segments=8, pretrained=None, dropout=0.5, arc_stages=(), arc_steps=4,
            arc_pool="mean", frame_interval=None) -> SegmentRecognizer:
    return segment_recognizer(depth=18, shift=False, **locals())


@register_model("tsn_r34", _tsn(34))
def tsn_r34(*, num_classes=174, num_segments=8, pretrained=None, dropout=0.5, arc_stages=(), arc_steps=4,
            arc_pool="mean", frame_interval=None) -> SegmentRecognizer:
    return segment_recognizer(depth=34, shift=False, **locals())


@register_model("tsn_r50", _tsn(50))
def tsn_r50(*, num_classes=174, num_segments=8, pretrained=None, dropout=0.5, arc_stages=(), arc_steps=4,
            arc_pool="mean", frame_interval=None) -> SegmentRecognizer:
    return segment_recognizer(depth=50, shift=False, **locals())


@register_model("tsn_r101", _tsn(101))
def tsn_r101(*, num_classes=174, num_segments=8, pretrained=None, dropout=0.5, arc_stages=(), arc_steps=4,
             arc_pool="mean", frame_interval=None) -> SegmentRecognizer:
    return segment_recognizer(depth=101, shift=False, **locals())


@register_model("tsm_r18", _tsm(18), _PAPER["tsm_r18"])
def tsm_r18(*, num_classes=174, num_segments=8, pretrained=None, dropout=0.5, arc_stages=(), arc_steps=4,
            arc_pool="mean", frame_interval=None) -> SegmentRecognizer:
    return segment_recognizer(depth=18, shift=True, **locals())


@register_model("tsm_r34", _tsm(34))
def tsm_r34(*, num_classes=174, num_segments=8, pretrained=None, dropout=0.5, arc_stages=(), arc_steps=4,
            arc_pool="mean", frame_interval=None) -> SegmentRecognizer:
    return segment_recognizer(depth=34, shift=True, **locals())


@register_model("tsm_r50", _tsm(50), _PAPER["tsm_r50"])
def tsm_r50(*, num_classes=174, num_segments=8, pretrained=None, dropout=0.5, arc_stages=(), arc_steps=4,
            arc_pool="mean", frame_interval=None) -> SegmentRecognizer:
    return segment_recognizer(depth=50, shift=True, **locals())


@register_model("tsm_r101", _tsm(101))
def tsm_r101(*, num_classes=174, num_segments=8, pretrained=None, dropout=0.5, arc_stages=(), arc_steps=4,
             arc_pool="mean", frame_interval=None) -> SegmentRecognizer:
    return segment_recognizer(depth=101, shift=True, **locals())


@register_model("arc_tsm_r18", _arc_tsm(18), _PAPER["arc_tsm_r18"])
def arc_tsm_r18(*, num_classes=174, num_segments=8, pretrained=None, dropout=0.5, arc_stages=_ARC, arc_steps=4,
                arc_pool="mean", frame_interval=None) -> SegmentRecognizer:
    return segment_recognizer(depth=18, shift=True, **locals())


@register_model("arc_tsm_r34", _arc_tsm(34))
def arc_tsm_r34(*, num_classes=174, num_segments=8, pretrained=None, dropout=0.5, arc_stages=_ARC, arc_steps=4,
                arc_pool="mean", frame_interval=None) -> SegmentRecognizer:
    return segment_recognizer(depth=34, shift=True, **locals())


@register_model("arc_tsm_r50", _arc_tsm(50), _PAPER["arc_tsm_r50"])
def arc_tsm_r50(*, num_classes=174, num_segments=8, pretrained=None, dropout=0.5, arc_stages=_ARC, arc_steps=4,
                arc_pool="mean", frame_interval=None) -> SegmentRecognizer:
    return segment_recognizer(depth=50, shift=True, **locals())


@register_model("arc_tsm_r101", _arc_tsm(101))
def arc_tsm_r101(*, num_classes=174, num_segments=8, pretrained=None, dropout=0.5, arc_stages=_ARC, arc_steps=4,
                 arc_pool="mean", frame_interval=None) -> SegmentRecognizer:
    return segment_recognizer(depth=101, shift=True, **locals())
