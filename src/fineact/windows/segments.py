"""From per-window scores to labelled segments: smoothing, background, hierarchy-consistent decoding.

    timeline = decode_segments(scores.probabilities, window_centres, num_frames, fps, levels, SegmentOptions())

The method, step by step (window i has probabilities p_i[level] and a centre frame c_i):

1. Temporal smoothing. Each level's probabilities are averaged over ``smooth`` consecutive windows centred on
   window i (fewer at the ends): q_i = mean(p_{i-h} .. p_{i+h}), h = smooth // 2. With stride s frames this is a
   box filter of about ``smooth * s`` frames; it removes one-window flickers without moving boundaries by more
   than h windows.
2. Hierarchy-consistent labels. Window i gets the finest class whose whole path scores best,
   c_i = argmax_c sum_level w_level * log q_i[level][ancestor_level(c)] (``fineact.labels.consistent_predict``,
   weights w = the model's loss weights, 1 : 2 : 4 for event : set : element), and every coarser label is derived
   from c_i. So a window's element, set and event always form a valid path of the hierarchy, and so do the
   segments built from them. The score of level L is q_i[L] at that label.
3. Background ("no element"). If the finest level has a background class (``background_class``, or a class named
   "background" / "no element"), windows whose c_i is that class are background at every level. Otherwise a
   threshold: going from the coarsest level to the finest, a level whose score is below ``threshold`` is
   background, and so is every finer level (no element without its set). A window can thus say "floor exercise,
   no element" between two elements, and what it does say is still a consistent path.
4. Short runs. A run of identical window states (the labels of all levels) shorter than ``min_windows`` windows
   takes the state of the run before it (the first run: the one after it), so one stray window cannot open a
   segment. States are replaced whole, which keeps the paths consistent.
5. Segments. Frame f belongs to the window whose centre is nearest (boundaries halfway between centres; the
   first window also owns the frames before its centre, the last one those after). A segment is a maximal run
   of windows with the same state: frames [start_frame, end_frame), seconds start_frame / fps .. end_frame /
   fps, and per level its label and the mean score over its windows. Per-level segments (the timeline's bands,
   the element recall) are the maximal runs of each level's own label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from fineact.errors import ConfigError
from fineact.labels import LabelLevels, consistent_predict

__all__ = ["BACKGROUND", "BACKGROUND_NAMES", "LevelSegment", "Segment", "SegmentOptions", "Timeline",
           "decode_segments", "smooth_probabilities"]

BACKGROUND = -1                                   # the label index of a background window / segment
BACKGROUND_NAMES = ("background", "no element", "no_element", "__background__")  # recognised class names


@dataclass(frozen=True)
class SegmentOptions:
    """How window scores become segments (see the module documentation for the method)."""

    smooth: int = 5                          # windows in the smoothing box filter (1 = none)
    threshold: float | Mapping[str, float] = 0.4  # background below this score (one value, or per level)
    background_class: str | None = None      # a finest-level class that means "no element"
    min_windows: int = 2                     # shorter runs of windows are merged into their neighbour

    def __post_init__(self):
        if not isinstance(self.smooth, int) or self.smooth < 1:
            raise ConfigError(f"smoothing must be a positive number of windows, got {self.smooth!r}")
        if not isinstance(self.min_windows, int) or self.min_windows < 1:
            raise ConfigError(f"min_windows must be a positive number of windows, got {self.min_windows!r}")
        values = self.threshold.values() if isinstance(self.threshold, Mapping) else [self.threshold]
        for value in values:
            if not 0.0 <= float(value) <= 1.0:
                raise ConfigError(f"background threshold must be a probability in [0, 1], got {value!r}")

    def threshold_of(self, level: str) -> float:
        if isinstance(self.threshold, Mapping):
            return float(self.threshold.get(level, 0.0))
        return float(self.threshold)


@dataclass
class LevelSegment:
    """A maximal run of one level's label."""

    start_frame: int
    end_frame: int        # exclusive
    start_s: float
    end_s: float
    index: int            # class index, BACKGROUND (-1) for background
    name: str
    score: float          # mean smoothed probability of the label over the run (nan for background)


@dataclass
class Segment:
    """A maximal run of one state (a label at every level): one row of segments.csv."""

    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    labels: dict[str, int]     # {level: class index or BACKGROUND}
    names: dict[str, str]
    scores: dict[str, float]

    @property
    def is_background(self) -> bool:
        return all(v == BACKGROUND for v in self.labels.values())


@dataclass
class Timeline:
    """Everything decoded from one video's windows."""

    fps: float
    num_frames: int
    levels: list[str]
    centres: np.ndarray                    # (W,) window centres in frames
    window_labels: dict[str, np.ndarray]   # {level: (W,) int}, after background and short-run merging
    window_scores: dict[str, np.ndarray]   # {level: (W,) float}, smoothed probability of the label
    smoothed: dict[str, np.ndarray]        # {level: (W, K)}
    segments: list[Segment]
    level_segments: dict[str, list[LevelSegment]]
    options: SegmentOptions = field(default_factory=SegmentOptions)

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps

    def frame_labels(self, level: str) -> np.ndarray:
        """(num_frames,) label of every frame at ``level`` (BACKGROUND where none)."""
        labels = np.full(self.num_frames, BACKGROUND, np.int64)
        for seg in self.level_segments[level]:
            labels[seg.start_frame:seg.end_frame] = seg.index
        return labels

    def method(self) -> dict:
        return {"smoothing_windows": self.options.smooth, "threshold": _plain(self.options.threshold),
                "background_class": self.options.background_class, "min_windows": self.options.min_windows,
                "decoding": "hierarchy-consistent (fineact.labels.consistent_predict)"}


def smooth_probabilities(probs: np.ndarray, windows: int) -> np.ndarray:
    """Centred box filter over ``windows`` rows (shrunk at the ends), rows renormalised to sum 1."""
    if windows <= 1 or len(probs) <= 1:
        return probs.astype(np.float32, copy=True)
    half = windows // 2
    padded = np.concatenate([np.zeros((1, probs.shape[1])), np.cumsum(probs, 0, dtype=np.float64)])
    rows = np.arange(len(probs))
    low, high = np.maximum(rows - half, 0), np.minimum(rows + half + 1, len(probs))
    mean = (padded[high] - padded[low]) / (high - low)[:, None]
    return (mean / mean.sum(1, keepdims=True)).astype(np.float32)


def decode_segments(probabilities: Mapping[str, np.ndarray], centres: np.ndarray, num_frames: int, fps: float,
                    levels: LabelLevels, options: SegmentOptions | None = None,
                    weights: Mapping[str, float] | None = None) -> Timeline:
    """Per-window probabilities {level: (W, K)} of the levels a model predicts -> a Timeline (method above).

    ``levels``: label levels holding at least the predicted ones (coarse -> fine); ``weights``: per-level weights
    of the consistent decoding (default 1 each).
    """
    options = options or SegmentOptions()
    predicted = [level for level in levels.level_names if level in probabilities]
    if not predicted:
        raise ConfigError(f"no scores for any of the levels {levels.level_names}: got {list(probabilities)}")
    sub = levels.select(predicted)
    smoothed = {level: smooth_probabilities(np.asarray(probabilities[level]), options.smooth) for level in predicted}
    log_probs = {level: torch.from_numpy(np.log(np.clip(q, 1e-12, None))) for level, q in smoothed.items()}
    path = consistent_predict(sub, log_probs, {k: v for k, v in (weights or {}).items() if k in log_probs})
    labels = {level: path[level].numpy().astype(np.int64) for level in predicted}
    rows = np.arange(len(centres))
    scores = {level: smoothed[level][rows, labels[level]] for level in predicted}
    _apply_background(labels, path, sub, predicted, scores, options)
    _merge_short_runs(labels, predicted, options.min_windows)
    scores = {level: np.where(labels[level] == BACKGROUND, np.nan, smoothed[level][rows, np.maximum(labels[level], 0)])
              for level in predicted}
    bounds = _window_bounds(np.asarray(centres, float), num_frames)
    names = {level: list(levels.class_names[level]) for level in predicted}
    state = np.stack([labels[level] for level in predicted], 1)
    segments = [_segment(a, b, bounds, fps, {lv: labels[lv][a] for lv in predicted}, names, scores)
                for a, b in _runs(state)]
    level_segments = {level: [_level_segment(a, b, bounds, fps, int(labels[level][a]), names[level], scores[level])
                              for a, b in _runs(labels[level][:, None])] for level in predicted}
    return Timeline(float(fps), int(num_frames), predicted, np.asarray(centres, float), labels, scores, smoothed,
                    segments, level_segments, options)


# ----------------------------------------------------------------------------------------------- steps 3-5


def _apply_background(labels: dict[str, np.ndarray], path: Mapping[str, torch.Tensor], sub: LabelLevels,
                      predicted: list[str], scores: dict[str, np.ndarray], options: SegmentOptions) -> None:
    finest = sub.finest
    background = _background_index(sub, options.background_class)
    if background is not None and finest in path:
        is_background = path[finest].numpy() == background
        for level in predicted:
            labels[level][is_background] = BACKGROUND
        return
    blank = np.zeros(len(next(iter(labels.values()))), bool)
    for level in predicted:  # coarse -> fine: a blank level blanks every finer one
        blank |= scores[level] < options.threshold_of(level)
        labels[level][blank] = BACKGROUND


def _background_index(levels: LabelLevels, name: str | None) -> int | None:
    classes = [c.lower() for c in levels.class_names[levels.finest]]
    if name is not None:
        if name.lower() not in classes:
            raise ConfigError(f"background class {name!r} is not a class of level {levels.finest!r} "
                              f"(its classes: {levels.class_names[levels.finest][:5]}...)")
        return classes.index(name.lower())
    found = [i for i, c in enumerate(classes) if c in BACKGROUND_NAMES]
    return found[0] if found else None


def _runs(state: np.ndarray) -> list[tuple[int, int]]:
    """[(first, last)] window ranges (inclusive) of equal rows of ``state`` (W, L)."""
    if len(state) == 0:
        return []
    change = np.flatnonzero(np.any(state[1:] != state[:-1], axis=1)) + 1
    firsts = np.concatenate([[0], change])
    lasts = np.concatenate([change - 1, [len(state) - 1]])
    return list(zip(firsts.tolist(), lasts.tolist()))


def _merge_short_runs(labels: dict[str, np.ndarray], predicted: list[str], min_windows: int) -> None:
    """Short runs take the state of the run before them (the first run: the one after it)."""
    if min_windows <= 1:
        return
    state = np.stack([labels[level] for level in predicted], 1)
    while True:
        runs = _runs(state)
        short = [k for k, (a, b) in enumerate(runs) if b - a + 1 < min_windows]
        if len(runs) <= 1 or not short:
            break
        k = short[0]
        a, b = runs[k]
        source = runs[k - 1][0] if k > 0 else runs[k + 1][0]
        state[a:b + 1] = state[source]
    for j, level in enumerate(predicted):
        labels[level][:] = state[:, j]


def _window_bounds(centres: np.ndarray, num_frames: int) -> np.ndarray:
    """(W + 1,) frame boundaries: window i owns frames [bounds[i], bounds[i+1])."""
    middle = np.ceil((centres[1:] + centres[:-1]) / 2.0 - 0.5).astype(np.int64)  # nearest centre, ties earlier
    return np.concatenate([[0], np.clip(middle, 0, num_frames), [num_frames]])


def _segment(a: int, b: int, bounds: np.ndarray, fps: float, labels: dict, names: dict, scores: dict) -> Segment:
    start, end = int(bounds[a]), int(bounds[b + 1])
    return Segment(start, end, start / fps, end / fps, {lv: int(v) for lv, v in labels.items()},
                   {lv: _name(names[lv], int(v)) for lv, v in labels.items()},
                   {lv: float(np.mean(scores[lv][a:b + 1])) for lv in labels})


def _level_segment(a: int, b: int, bounds: np.ndarray, fps: float, label: int, names: Sequence[str],
                   scores: np.ndarray) -> LevelSegment:
    start, end = int(bounds[a]), int(bounds[b + 1])
    return LevelSegment(start, end, start / fps, end / fps, label, _name(names, label),
                        float(np.mean(scores[a:b + 1])))


def _name(names: Sequence[str], index: int) -> str:
    return "background" if index == BACKGROUND else names[index]


def _plain(value):
    return dict(value) if isinstance(value, Mapping) else float(value)
