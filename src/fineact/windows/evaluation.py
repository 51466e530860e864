"""Scoring a timeline against known truth: frame-level accuracy per level, segment recall at a temporal IoU.

    truth = [TruthSegment(3.2, 5.8, element=7), ...]         # elements at known times, e.g. a generated routine
    frames = truth_frame_labels(truth, num_frames, fps, levels)
    accuracy = {lv: frame_accuracy(timeline.frame_labels(lv), frames[lv]) for lv in timeline.levels}
    recall = segment_recall(timeline.level_segments["element"], truth, fps, iou=0.5)

Frame-level accuracy counts background as a class of its own: a frame between two elements is right when the
timeline says "background" there. Segment recall: a true element segment is found when a predicted segment of
the same class overlaps it with temporal IoU >= ``iou`` (intersection / union of the two time intervals), each
predicted segment matching at most one true one (greedy, best IoU first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fineact.data.finegym_json import frame_span
from fineact.labels import LabelLevels
from fineact.windows.segments import BACKGROUND, LevelSegment

__all__ = ["TruthSegment", "frame_accuracy", "segment_recall", "span_frame_labels", "temporal_iou",
           "truth_frame_labels"]


@dataclass(frozen=True)
class TruthSegment:
    """A true element: [start_s, end_s) seconds and its finest label."""

    start_s: float
    end_s: float
    label: int


def _frame_range(start_s: float, end_s: float, fps: float, num_frames: int) -> tuple[int, int]:
    """Frames whose display starts f / fps lie in [start_s, end_s): FineGym's rule (fineact.data.finegym_json)."""
    first, last = frame_span(float(start_s), float(end_s), float(fps))
    return max(0, first), min(num_frames, last)


def truth_frame_labels(truth: Sequence[TruthSegment], num_frames: int, fps: float, levels: LabelLevels
                       ) -> dict[str, np.ndarray]:
    """{level: (num_frames,)} the true label of every frame (BACKGROUND outside the true segments)."""
    result = {level: np.full(num_frames, BACKGROUND, np.int64) for level in levels.level_names}
    for seg in truth:
        a, b = _frame_range(seg.start_s, seg.end_s, fps, num_frames)
        for level, label in levels.derive(seg.label).items():
            result[level][a:b] = label
    return result


def span_frame_labels(spans: Sequence[tuple[float, float, int]], num_frames: int, fps: float) -> np.ndarray:
    """(num_frames,) labels of one level from (start_s, end_s, label) spans (BACKGROUND elsewhere), e.g. the
    event level from whole events (their gaps between elements included)."""
    labels = np.full(num_frames, BACKGROUND, np.int64)
    for start, end, label in spans:
        a, b = _frame_range(start, end, fps, num_frames)
        labels[a:b] = label
    return labels


def frame_accuracy(predicted: np.ndarray, truth: np.ndarray, where: np.ndarray | None = None) -> float:
    """Fraction of frames whose label (background included) is right; ``where``: only these frames (a mask)."""
    if predicted.shape != truth.shape or predicted.size == 0:
        raise ValueError(f"frame labels must have the same non-empty shape, got {predicted.shape} and {truth.shape}")
    if where is not None:
        if not where.any():
            raise ValueError("frame accuracy over an empty set of frames")
        predicted, truth = predicted[where], truth[where]
    return float(np.mean(predicted == truth))


def temporal_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def segment_recall(predicted: Sequence[LevelSegment], truth: Sequence[tuple[float, float, int]] |
                   Sequence[TruthSegment], iou: float = 0.5) -> tuple[float, list[int | None]]:
    """(recall, for each true segment the index of its matched predicted segment or None).

    ``truth``: TruthSegments, or (start_s, end_s, label) in the same level as ``predicted``.
    """
    true = [(t.start_s, t.end_s, t.label) if isinstance(t, TruthSegment) else tuple(t) for t in truth]
    if not true:
        raise ValueError("segment recall needs at least one true segment")
    pairs = []
    for i, (start, end, label) in enumerate(true):
        for j, seg in enumerate(predicted):
            if seg.index == label and seg.index != BACKGROUND:
                overlap = temporal_iou((start, end), (seg.start_s, seg.end_s))
                if overlap >= iou:
                    pairs.append((overlap, i, j))
    matched: list[int | None] = [None] * len(true)
    used: set[int] = set()
    for _, i, j in sorted(pairs, reverse=True):
        if matched[i] is None and j not in used:
            matched[i] = j
            used.add(j)
    return sum(m is not None for m in matched) / len(true), matched
