"""Which frames to read: TSN segments, dense clips, multi-pathway windows, and the clips of a test video.

Every function returns 0-based frame indices (numpy int64) in ``[start_frame, start_frame + num_frames)``:
``num_frames`` is the length of the video, or of the sample's window of it (Diving48/FineGym clips given as
``start_frame, end_frame``), and ``start_frame`` is added at the end. Randomness comes only from the
``numpy.random.Generator`` passed as ``rng`` (a fresh unseeded one when None), so a seeded generator gives
reproducible samples.

Several clips (a sampler's ``clip_views``) come back flattened, clip-major: ``(clip_views * frames_per_view,)``;
reshape with ``indices.reshape(clip_views, -1)``. ``sampler_for`` picks the sampler a model's clip specs call for.

Short videos (fewer frames than a window needs): indices are first computed as if the video were long enough,
starting at frame 0, and those past the end are mapped back by ``short_video``:

* ``"loop"`` - index modulo ``num_frames`` (MMAction2's default, TSM's dense sampling);
* ``"clamp"`` - repeat the last frame (MMAction2's "repeat_last").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from fineact.errors import ConfigError, VideoError

__all__ = [
    "MODES",
    "SHORT_VIDEO_POLICIES",
    "DenseSampler",
    "MultiPathwaySampler",
    "SegmentSampler",
    "dense_indices",
    "multi_pathway_indices",
    "sampler_for",
    "segment_indices",
]

MODES = ("train", "test")
SHORT_VIDEO_POLICIES = ("loop", "clamp")


# ------------------------------------------------------------------------------------------- functions


def segment_indices(
    num_frames: int,
    num_segments: int,
    mode: str = "train",
    rng: np.random.Generator | None = None,
    twice: bool = False,
    *,
    start_frame: int = 0,
    short_video: str = "loop",
) -> np.ndarray:
    """TSN segment sampling with the TSM code's index arithmetic.

    train: ``avg = num_frames // num_segments``; frame ``k*avg + u_k`` with ``u_k`` uniform in ``[0, avg)``
           (segments have integer length, so the last ``num_frames % num_segments`` frames are never drawn).
    test:  ``tick = num_frames / num_segments``; frame ``int(tick/2 + tick*k)`` (each segment's centre).
           ``twice`` appends a second view at the segment starts, ``int(tick*k)``: 2*num_segments indices, the
           centre clip first. ``twice`` is ignored in train mode.
    Videos shorter than ``num_segments`` frames take frame ``k`` for segment ``k``, mapped by ``short_video``
    (the TSM code itself uses frame 0 everywhere in train mode in that case).
    """
    _check_common(num_frames, mode, short_video)
    _check_positive(num_segments=num_segments)
    length = max(num_frames, num_segments)  # a short video is sampled as if it had one frame per segment
    k = np.arange(num_segments)
    if mode == "train":
        average = length // num_segments
        indices = k * average + _generator(rng).integers(0, average, size=num_segments)
    else:
        tick = length / num_segments
        indices = np.array([int(tick / 2 + tick * x) for x in k])
        if twice:
            indices = np.concatenate([indices, np.array([int(tick * x) for x in k])])
    return _finish(indices, num_frames, start_frame, short_video)


def dense_indices(
    num_frames: int,
    clip_len: int,
    frame_interval: int,
    num_clips: int = 1,
    mode: str = "train",
    rng: np.random.Generator | None = None,
    *,
    start_frame: int = 0,
    short_video: str = "loop",
) -> np.ndarray:
    """Dense clips of ``clip_len`` frames, ``frame_interval`` apart (MMAction2's SampleFrames arithmetic).

    A clip starting at ``s`` reads ``s + j*frame_interval`` for ``j < clip_len`` and occupies a window of
    ``span = clip_len * frame_interval`` frames. Clip starts come from ``window_starts`` (train: random,
    test: evenly spaced); returns ``(num_clips * clip_len,)`` indices, clip-major.
    """
    _check_common(num_frames, mode, short_video)
    _check_positive(clip_len=clip_len, frame_interval=frame_interval, num_clips=num_clips)
    starts = window_starts(num_frames, clip_len * frame_interval, num_clips, mode, rng)
    indices = starts[:, None] + np.arange(clip_len)[None, :] * frame_interval
    return _finish(indices.reshape(-1), num_frames, start_frame, short_video)


def multi_pathway_indices(
    num_frames: int,
    pathways: Mapping[str, tuple[int, int]],
    mode: str = "train",
    rng: np.random.Generator | None = None,
    num_clips: int = 1,
    *,
    start_frame: int = 0,
    short_video: str = "loop",
) -> dict[str, np.ndarray]:
    """One shared window per clip, read by every pathway ``name: (T, interval)`` at its own rate.

    The window spans ``W = max(T * interval)`` frames (4x16, 8x8, 16x4 and 32x2 all span 64) and its starts
    ``s`` come from ``window_starts`` exactly as for a dense clip of span W. Frame ``k`` of pathway ``p`` is
    ``s + (W - T_p*interval_p) // 2 + k*interval_p``: a pathway that spans the whole window starts at ``s``
    (MMAction2's convention, no half-interval offset), a shorter one is centred in the window. Returns
    ``{name: (num_clips * T_p,) indices}``, clip-major, so one decode of their union serves all pathways.
    """
    _check_common(num_frames, mode, short_video)
    _check_pathways(pathways)
    _check_positive(num_clips=num_clips)
    window = max(t * interval for t, interval in pathways.values())
    starts = window_starts(num_frames, window, num_clips, mode, rng)
    result = {}
    for name, (t, interval) in pathways.items():
        offset = (window - t * interval) // 2
        indices = starts[:, None] + offset + np.arange(t)[None, :] * interval
        result[name] = _finish(indices.reshape(-1), num_frames, start_frame, short_video)
    return result


def window_starts(
    num_frames: int, span: int, num_clips: int, mode: str, rng: np.random.Generator | None = None
) -> np.ndarray:
    """First frames of ``num_clips`` windows of ``span`` frames (MMAction2's clip offsets).

    With ``room = num_frames - span + 1`` possible starts split into ``num_clips`` equal parts of
    ``avg = room / num_clips``:
    train: clip ``k`` starts uniformly in ``[floor(k*avg), floor((k+1)*avg))`` (for one clip: ``[0, room)``,
           i.e. anywhere the window fits);
    test:  clip ``k`` starts at ``int(avg/2 + k*avg)``, the window centred in its part.
    A video shorter than the window (room < 1) starts every clip at frame 0.
    """
    room = num_frames - span + 1
    if room < 1:
        return np.zeros(num_clips, np.int64)
    average = room / num_clips
    k = np.arange(num_clips)
    if mode == "test":
        return (average / 2 + k * average).astype(np.int64)
    low = np.floor(k * average).astype(np.int64)
    high = np.maximum(low + 1, np.floor((k + 1) * average).astype(np.int64))
    return _generator(rng).integers(low, high)


# --------------------------------------------------------------------------------------------- samplers


@dataclass(frozen=True)
class SegmentSampler:
    """TSN/TSM segment sampling (see ``segment_indices``); returns ``{"clip": indices}``."""

    num_segments: int
    twice: bool = False
    short_video: str = "loop"

    def __post_init__(self):
        _check_positive(num_segments=self.num_segments)
        _check_policy(self.short_video)

    def indices(self, num_frames: int, mode: str = "train", rng=None, start_frame: int = 0) -> dict[str, np.ndarray]:
        clip = segment_indices(
            num_frames, self.num_segments, mode, rng, self.twice, start_frame=start_frame, short_video=self.short_video
        )
        return {"clip": clip}

    def clip_views(self, mode: str = "test") -> int:
        """Clips per video: 2 with ``twice`` at test (centre clip, start clip), else 1."""
        return 2 if (self.twice and _check_mode(mode) == "test") else 1

    @property
    def frames_per_view(self) -> dict[str, int]:
        return {"clip": self.num_segments}


@dataclass(frozen=True)
class DenseSampler:
    """Dense clips (see ``dense_indices``); returns ``{"clip": indices}``; ``num_clips`` clip views at test."""

    clip_len: int
    frame_interval: int
    num_clips: int = 1
    short_video: str = "loop"

    def __post_init__(self):
        _check_positive(clip_len=self.clip_len, frame_interval=self.frame_interval, num_clips=self.num_clips)
        _check_policy(self.short_video)

    def indices(self, num_frames: int, mode: str = "train", rng=None, start_frame: int = 0) -> dict[str, np.ndarray]:
        clips = self._clips(mode)
        clip = dense_indices(
            num_frames,
            self.clip_len,
            self.frame_interval,
            clips,
            mode,
            rng,
            start_frame=start_frame,
            short_video=self.short_video,
        )
        return {"clip": clip}

    def clip_views(self, mode: str = "test") -> int:
        """Clips per video: ``num_clips`` at test, 1 in train mode (one random clip per visit)."""
        return self._clips(mode)

    def _clips(self, mode: str) -> int:
        return self.num_clips if _check_mode(mode) == "test" else 1

    @property
    def frames_per_view(self) -> dict[str, int]:
        return {"clip": self.clip_len}


@dataclass(frozen=True)
class MultiPathwaySampler:
    """One window read by several pathways (see ``multi_pathway_indices``); ``num_clips`` windows at test.

    ``pathways`` maps a name to ``(T, interval)``, e.g. the hierarchical network's
    ``{"event": (4, 16), "set": (8, 8), "element": (32, 2)}``.
    """

    pathways: Mapping[str, tuple[int, int]]
    num_clips: int = 1
    short_video: str = "loop"

    def __post_init__(self):
        _check_pathways(self.pathways)
        _check_positive(num_clips=self.num_clips)
        _check_policy(self.short_video)
        # a private plain copy: the caller's dict may change later, a frozen sampler must not
        object.__setattr__(self, "pathways", {name: (int(t), int(i)) for name, (t, i) in self.pathways.items()})

    def indices(self, num_frames: int, mode: str = "train", rng=None, start_frame: int = 0) -> dict[str, np.ndarray]:
        clips = self.num_clips if _check_mode(mode) == "test" else 1
        return multi_pathway_indices(
            num_frames, self.pathways, mode, rng, clips, start_frame=start_frame, short_video=self.short_video
        )

    def clip_views(self, mode: str = "test") -> int:
        """Windows per video: ``num_clips`` at test, 1 in train mode."""
        return self.num_clips if _check_mode(mode) == "test" else 1

    @property
    def window(self) -> int:
        """Frames spanned by one window: max(T * interval)."""
        return max(t * i for t, i in self.pathways.values())

    @property
    def frames_per_view(self) -> dict[str, int]:
        return {name: t for name, (t, _) in self.pathways.items()}


def sampler_for(clip_specs: Mapping, num_clips: int = 1, twice: bool = False, short_video: str = "loop"):
    """The frame sampler a model's clip specs ({pathway: ClipSpec}) call for: segments, one dense clip, or
    several pathways sharing one window."""
    if len(clip_specs) == 1:
        spec = next(iter(clip_specs.values()))
        if spec.frame_interval is None:
            if num_clips > 1:
                raise ConfigError(f"data.test_clips={num_clips}: segment sampling (TSN/TSM) takes one clip per "
                                  "video; use data.twice_sample=true for a second clip, or dense sampling "
                                  "(model.args.frame_interval) for several clips")
            return SegmentSampler(spec.num_frames, twice=twice, short_video=short_video)
        return DenseSampler(spec.num_frames, spec.frame_interval, num_clips=num_clips, short_video=short_video)
    segment_paths = [name for name, spec in clip_specs.items() if spec.frame_interval is None]
    if segment_paths:
        raise ConfigError(f"pathways {segment_paths} use segment sampling; multi-pathway models need dense "
                          "pathways (frames and interval) that share one window")
    return MultiPathwaySampler({name: (s.num_frames, s.frame_interval) for name, s in clip_specs.items()},
                               num_clips=num_clips, short_video=short_video)


# --------------------------------------------------------------------------------------------- helpers


def _generator(rng: np.random.Generator | None) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng()


def _finish(indices: np.ndarray, num_frames: int, start_frame: int, short_video: str) -> np.ndarray:
    """Map indices past the end by the short-video policy, then shift into the sample's window."""
    indices = np.asarray(indices, np.int64)
    if short_video == "loop":
        indices = indices % num_frames
    else:
        indices = np.minimum(indices, num_frames - 1)
    return indices + start_frame


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"sampling mode must be one of {MODES}, got {mode!r}")
    return mode


def _check_policy(short_video: str) -> None:
    if short_video not in SHORT_VIDEO_POLICIES:
        raise ConfigError(f"short_video must be one of {SHORT_VIDEO_POLICIES}, got {short_video!r}")


def _check_common(num_frames: int, mode: str, short_video: str) -> None:
    _check_mode(mode)
    _check_policy(short_video)
    if int(num_frames) < 1:
        raise VideoError(f"cannot sample frames from a video with {num_frames} frames")


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _check_pathways(pathways: Mapping[str, tuple[int, int]]) -> None:
    if not isinstance(pathways, Mapping) or not pathways:
        raise ConfigError(f"pathways must be a non-empty mapping name -> (T, interval), got {pathways!r}")
    for name, spec in pathways.items():
        if not isinstance(spec, (tuple, list)) or len(spec) != 2:
            raise ConfigError(f"pathway {name!r} must be (T, interval), got {spec!r}")
        _check_positive(**{f"pathway {name!r} T": spec[0], f"pathway {name!r} interval": spec[1]})
