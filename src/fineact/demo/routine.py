"""Sliding windows on a generated routine whose truth is known: how good is the timeline?

    video = generate_routine("runs/routine", duration=60.0, seed=1)     # fineact.demo.untrimmed, one video
    result, scores = evaluate_routine(predictor, video)                   # per decoding option: the metrics

The routine is an untrimmed video of a few women's events (FX, BB, UB) with several elements each, drawn with
the demo's scenes (`fineact.demo.untrimmed`), so a model trained on the demo's trimmed clips sees the same
content. Metrics, per level (``fineact.windows.evaluation``):

- ``frame_accuracy``: over all frames, background a class of its own (truth: the event level is labelled over
  whole events, gaps between elements included; set and element levels only inside elements);
- ``frame_accuracy_inside``: over the frames the truth labels at that level (how well the classes are told
  apart, whatever the background decision);
- element ``recall_iou50``: true elements found by a predicted element segment of the same class at temporal
  IoU >= 0.5, with the number of predicted element segments beside it.

The window scores are computed once; each decoding option (threshold, smoothing) is only a re-decode of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fineact.windows import (BACKGROUND, SegmentOptions, Timeline, TruthSegment, decode_segments, frame_accuracy,
                             segment_recall)
from fineact.windows.evaluation import span_frame_labels

__all__ = ["DECODING_OPTIONS", "evaluate_routine", "format_routine_scores", "generate_routine", "score_timeline",
           "truth_spans"]

# the default decoding, no background at all, and a lower threshold: a trimmed-clip model has no background
# class, so how much the threshold helps is part of what is measured
DECODING_OPTIONS = {"default (threshold 0.4, smooth 5)": SegmentOptions(),
                    "no background (threshold 0)": SegmentOptions(threshold=0.0),
                    "threshold 0.3": SegmentOptions(threshold=0.3)}


def generate_routine(root: str | Path, *, duration: float = 60.0, seed: int = 1, fps: int = 25, size: int = 64):
    """One untrimmed video of women's events (with element segments) under ``root``; returns its VideoTruth."""
    from fineact.demo.untrimmed import write_untrimmed_dataset

    dataset = write_untrimmed_dataset(root, num_videos=1, duration=duration, fps=fps, size=size, seed=seed,
                                      men_events=False, splits=("test",))
    return dataset.videos[0]


def truth_segments(video, levels) -> list[TruthSegment]:
    """The video's elements as finest-level TruthSegments (Clabels mapped to the model's class indices)."""
    index = {clabel: i for i, clabel in enumerate(levels.original_ids[levels.finest])}
    return [TruthSegment(e.start, e.end, index[e.label]) for e in video.elements]


def truth_frame_labels(video, levels, levels_wanted: Sequence[str]) -> dict[str, np.ndarray]:
    """{level: (num_frames,)}: events over whole events, sets and elements over the elements' own frames."""
    return {level: span_frame_labels(spans, video.num_frames, video.fps)
            for level, spans in truth_spans(video, levels, levels_wanted).items()}


def truth_spans(video, levels, levels_wanted: Sequence[str]) -> dict[str, list[tuple[float, float, int]]]:
    """{level: [(start_s, end_s, class index)]}: whole events at the event level, elements at the others."""
    result = {}
    for level in levels_wanted:
        if level == "event" and "event" in levels.original_ids:
            index = {e: i for i, e in enumerate(levels.original_ids["event"])}
            result[level] = [(e.start, e.end, index[e.event]) for e in video.events]
        else:
            result[level] = [(t.start_s, t.end_s, int(levels.finest_to[level][t.label]))
                             for t in truth_segments(video, levels)]
    return result


def score_timeline(timeline: Timeline, video, levels) -> dict:
    """The metrics of the module documentation for one decoded timeline."""
    truth = truth_frame_labels(video, levels, timeline.levels)
    scores: dict = {}
    for level in timeline.levels:
        predicted = timeline.frame_labels(level)
        scores[level] = {"frame_accuracy": round(frame_accuracy(predicted, truth[level]), 4),
                         "frame_accuracy_inside": round(frame_accuracy(predicted, truth[level],
                                                                       where=truth[level] != BACKGROUND), 4),
                         "background_fraction": round(float(np.mean(truth[level] == BACKGROUND)), 4)}
    finest = levels.finest
    if finest in timeline.levels:
        recall, _ = segment_recall(timeline.level_segments[finest], truth_segments(video, levels), iou=0.5)
        scores["element_segments"] = {"recall_iou50": round(recall, 4), "true": len(video.elements),
                                      "predicted": sum(s.index != BACKGROUND
                                                       for s in timeline.level_segments[finest])}
    return scores


def evaluate_routine(predictor, video, *, stride: int = 8, options: dict[str, SegmentOptions] | None = None,
                     progress: bool = False):
    """(VideoTimeline decoded with the default options, {option name: metrics})."""
    options = options or DECODING_OPTIONS
    result = predictor.predict_video(video.path, stride=stride, progress=progress)
    module = predictor.module
    levels = module.levels.select(module.trained_levels)
    plan = result.scores.plan
    scores = {}
    for name, option in options.items():
        timeline = decode_segments(result.probabilities, plan.centres, plan.num_frames, plan.fps, levels, option,
                                   weights=getattr(module, "loss_weights", None))
        scores[name] = score_timeline(timeline, video, levels)
    return result, scores


def format_routine_scores(scores: dict) -> str:
    """A table: one row per decoding option and level."""
    rows = [f"{'decoding':<36} {'level':<8} {'frame acc':>9} {'inside':>7} {'bg frac':>7}   element recall@0.5"]
    for name, metrics in scores.items():
        segments = metrics.get("element_segments")
        for k, (level, m) in enumerate((lv, m) for lv, m in metrics.items() if lv != "element_segments"):
            extra = (f"   {100 * segments['recall_iou50']:.1f}% ({segments['predicted']} predicted, "
                     f"{segments['true']} true)") if segments and k == 0 else ""
            rows.append(f"{name if k == 0 else '':<36} {level:<8} {100 * m['frame_accuracy']:>8.1f}% "
                        f"{100 * m['frame_accuracy_inside']:>6.1f}% {100 * m['background_fraction']:>6.1f}%{extra}")
    return "\n".join(rows)
