"""Which frames each sliding window reads: the model's own clip, slid over the whole video.

    plan = plan_windows(model.clip_specs, num_frames=9000, fps=25.0, stride=8)
    plan.indices["element"][i]      # frames pathway "element" reads for window i (absolute numbers)

A window is the span of video one clip covers, placed at ``start = 0, stride, 2 * stride, ...`` (plus one last
window flush with the end, so the tail is seen too). Inside a window the frames are exactly those the test
protocol reads from a clip of that length (``fineact.data.sampling``, one centred test view): a dense or
multi-pathway model reads ``T`` frames ``interval`` apart from a window of ``max(T * interval)`` frames (the
multi-task network's pathways share that one window); a segment model (TSN/TSM) reads the centre frame of each of
its ``T`` segments of a window whose length must be given (``window_frames``; the CLI's ``--window SECONDS``,
by default the typical training clip duration recorded in the export's JSON, see ``training_clips``).

Every window reads the same offsets from its start, so the offsets are computed once and shifted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from fineact.data.sampling import SegmentSampler, sampler_for
from fineact.errors import ConfigError

__all__ = ["WindowPlan", "is_segment_model", "model_span", "plan_windows"]


@dataclass(frozen=True)
class WindowPlan:
    """Sliding windows over one video: where each starts and which frames each pathway reads from it."""

    starts: np.ndarray               # (num_windows,) first frame of each window, increasing
    span: int                        # frames one window covers
    stride: int                      # frames between window starts (the last window may be closer)
    indices: dict[str, np.ndarray]   # {pathway: (num_windows, T)} absolute frame numbers
    num_frames: int
    fps: float

    @property
    def num_windows(self) -> int:
        return len(self.starts)

    @property
    def centres(self) -> np.ndarray:
        """Centre of each window in frames (float): the instant its scores describe."""
        return self.starts + min(self.span, self.num_frames) / 2.0

    @property
    def first_frames(self) -> np.ndarray:
        """(num_windows,) smallest frame any pathway of each window reads (non-decreasing)."""
        return np.min(np.stack([idx.min(1) for idx in self.indices.values()]), 0)

    @property
    def last_frames(self) -> np.ndarray:
        """(num_windows,) largest frame any pathway of each window reads (non-decreasing)."""
        return np.max(np.stack([idx.max(1) for idx in self.indices.values()]), 0)

    def window(self, i: int) -> dict[str, np.ndarray]:
        """{pathway: (T,)} frames of window ``i``."""
        return {name: idx[i] for name, idx in self.indices.items()}


def is_segment_model(clip_specs: Mapping) -> bool:
    """True for TSN/TSM-style models: frames spread over a whole clip, no fixed frame interval."""
    return any(spec.frame_interval is None for spec in clip_specs.values())


def model_span(clip_specs: Mapping) -> int | None:
    """Frames a dense / multi-pathway clip covers (the shared window); None for segment models."""
    if is_segment_model(clip_specs):
        return None
    return max(spec.num_frames * spec.frame_interval for spec in clip_specs.values())


def plan_windows(clip_specs: Mapping, num_frames: int, fps: float, stride: int,
                 window_frames: int | None = None) -> WindowPlan:
    """Windows of the model's clip every ``stride`` frames over a video of ``num_frames`` frames.

    ``window_frames``: the window length of a segment model (required for it; refused for dense models, whose
    clip fixes the window). A video shorter than the window gets one window, its missing frames repeated from
    the last one ("clamp").
    """
    if not isinstance(stride, (int, np.integer)) or isinstance(stride, bool) or stride < 1:
        raise ConfigError(f"--stride must be a positive number of frames, got {stride!r}")
    if num_frames < 1:
        raise ConfigError(f"cannot slide windows over a video of {num_frames} frames")
    span = model_span(clip_specs)
    if span is None:
        if window_frames is None:
            raise ConfigError("a segment model (TSN/TSM) needs a window length: give --window SECONDS (or "
                              "window_s=...); exports written by `fineact train` record the typical training "
                              "clip duration as its default")
        if window_frames < 1:
            raise ConfigError(f"window length must be at least 1 frame, got {window_frames}")
        span = int(window_frames)
    elif window_frames is not None and window_frames != span:
        raise ConfigError(f"this model's clip fixes its window at {span} frames (frames x interval); --window "
                          f"applies only to segment models (TSN/TSM), got {window_frames} frames")
    sampler = sampler_for(clip_specs, short_video="clamp")
    if isinstance(sampler, SegmentSampler):
        sampler = SegmentSampler(sampler.num_segments, short_video="clamp")
    length = min(span, num_frames)
    offsets = sampler.indices(length, "test", np.random.default_rng(0))  # the test view draws nothing
    starts = np.arange(0, num_frames - length + 1, stride, dtype=np.int64)
    if starts[-1] != num_frames - length:
        starts = np.append(starts, num_frames - length)  # the tail gets a window of its own
    indices = {name: starts[:, None] + np.asarray(off, np.int64)[None, :] for name, off in offsets.items()}
    return WindowPlan(starts, span, int(stride), indices, int(num_frames), float(fps))
