"""Reading windows of long (untrimmed) videos: an LRU of open videos per process, each probed once.

`read_frames` (data/video.py) opens a video, decodes its first frame to fix the frame clock, builds the keyframe
list from the container's index and then seeks: right for a trimmed clip, wasteful for a 30-minute video, whose
index holds tens of thousands of entries and which is read again for every sample. Here each video is opened and
probed ONCE per process (per DataLoader worker) and kept open: a read seeks straight to the keyframe before the
window and decodes only the window (same protocol and same checks as data/video.py: frames are numbered by
their pts, any irregularity falls back to the sequential reference decode, so a wrong frame is never returned).

At most `POOL_SIZE` videos stay open per process and thread (least recently used closed first): FineGym samples come from
a few hundred videos, and a worker meets a handful at a time. The pool belongs to the process that opened the
videos: a forked worker starts with an empty pool and never frees its parent's containers (freeing FFmpeg state
of another process's threads crashes; see the note in data/video.py's `_SeekingReader.read`).

Containers that cannot prove a constant frame rate (no complete sample index: Matroska/WebM, MPEG-TS) cannot be
seeked safely, so every read decodes from the start of the video: `warn_not_seekable` says so once per video,
with the remux command that fixes it (`ffmpeg -i in.mkv -c copy in.mp4`: no re-encoding, seconds).
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path
from typing import Mapping, Sequence

import av
import numpy as np

from fineact.data import video as _video
from fineact.errors import VideoError

__all__ = ["POOL_SIZE", "close_videos", "proves_constant_rate", "read_window", "read_window_union", "warn_not_seekable"]

POOL_SIZE = 8
_warned: set[str] = set()


def warn_not_seekable(path: str) -> None:
    """Once per video and process: this container forces decoding from the start on every read."""
    if path in _warned:
        return
    _warned.add(path)
    target = Path(path).with_suffix(".mp4")
    warnings.warn(f"{path}: this container cannot prove a constant frame rate (it has no complete sample index, "
                  f"as Matroska/WebM/MPEG-TS files), so fineact cannot seek in it: every sample decodes the video "
                  f"from its start (minutes for a window near the end of a 2-hour video). Remux it once, without "
                  f"re-encoding: ffmpeg -i '{path}' -c copy '{target}' (then remove the original, so that "
                  f"'{target.name}' is the file found)", UserWarning, stacklevel=2)


def _index_is_complete(stream, frames_per_tick: Fraction) -> bool:
    entries = stream.index_entries
    if stream.frames < 2 or len(entries) < stream.frames:
        return False
    timestamps = np.fromiter((entry.timestamp for entry in entries), np.int64, len(entries))
    steps = np.diff(timestamps) * float(frames_per_tick)
    return bool(np.abs(steps - 1.0).max() <= _video.PTS_TOLERANCE_FRAMES)


def proves_constant_rate(path: str | os.PathLike) -> tuple[bool, Fraction | None]:
    """(whether seeking by timestamps is safe in this container, the stream's average frame rate)."""
    container, stream = _video._open_container(Path(path), 1)
    with container:
        rate = Fraction(stream.average_rate) if stream.average_rate else None
        try:
            frames_per_tick = _video._constant_rate(stream)
        except _video._UnreliableTimestamps:
            return False, rate
        return _index_is_complete(stream, frames_per_tick), rate


class _OpenVideo:
    """One open container with its frame clock and keyframe numbers (None: not seekable)."""

    def __init__(self, path: Path, decode_threads: int):
        self.path = path
        self.container, self.stream = _video._open_container(path, decode_threads)
        self.frames_per_tick = self.clock = self.keyframes = None
        try:
            frames_per_tick = _video._constant_rate(self.stream)
            probe = _video._SeekingReader(self.container, self.stream, frames_per_tick, [0])
            probe.read()  # decodes frame 0: fixes the clock and reads the keyframes from the index
            self.frames_per_tick, self.clock, self.keyframes = frames_per_tick, probe.clock, probe.keyframes
        except (_video._UnreliableTimestamps, _video._EndOfStream):
            pass

    def close(self) -> None:
        self.container.close()


class _Pool:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.videos: OrderedDict[tuple[str, int], _OpenVideo] = OrderedDict()

    def get(self, path: Path, decode_threads: int) -> _OpenVideo:
        key = (str(path), decode_threads)
        if key in self.videos:
            self.videos.move_to_end(key)
            return self.videos[key]
        try:
            video = _OpenVideo(path, decode_threads)
        except av.FFmpegError as exc:
            raise VideoError(f"{path}: truncated or corrupt video, decoding failed ({exc})") from None
        self.videos[key] = video
        while len(self.videos) > POOL_SIZE:
            self.videos.popitem(last=False)[1].close()
        return video

    def drop(self, path: Path) -> None:
        for key in [k for k in self.videos if k[0] == str(path)]:
            self.videos.pop(key).close()


_local = threading.local()  # one pool per thread: an open container must not be used by two threads at once
_inherited: list[_Pool] = []  # a parent's pools in a forked child: kept alive, never freed here


def _this_process_pool() -> _Pool:
    pool = getattr(_local, "pool", None)
    if pool is None or pool.pid != os.getpid():
        if pool is not None:
            _inherited.append(pool)
        pool = _local.pool = _Pool()
    return pool


def close_videos() -> None:
    """Close this thread's open videos (an open decoder keeps one preallocated frame alive; tests free them)."""
    pool = getattr(_local, "pool", None)
    if pool is not None and pool.pid == os.getpid():
        for video in pool.videos.values():
            video.close()
        pool.videos.clear()


def _read_unique(path: Path, targets: list[int], decode_threads: int) -> dict[int, np.ndarray]:
    pool = _this_process_pool()
    video = pool.get(path, decode_threads)
    if video.clock is None:
        warn_not_seekable(str(path))
        return _video._read_video_frames(path, np.asarray(targets), decode_threads)[0]
    reader = _video._SeekingReader(video.container, video.stream, video.frames_per_tick, targets,
                                   clock=video.clock, keyframes=video.keyframes)
    try:
        return reader.read()
    except _video._UnreliableTimestamps:
        pool.drop(path)  # the reference protocol decides; the next read opens the video afresh
        return _video._read_video_frames(path, np.asarray(targets), decode_threads)[0]
    except _video._EndOfStream as end:
        raise _video._past_end_error(path, targets[-1], end.available, end.declared) from None
    except av.FFmpegError as exc:
        pool.drop(path)
        raise VideoError(f"{path}: truncated or corrupt video, decoding failed ({exc})") from None


def read_window(source: str | os.PathLike, indices: Sequence[int] | np.ndarray, *,
                decode_threads: int = 1) -> np.ndarray:
    """`data.video.read_frames` for a video file, through this process's pool of open videos."""
    path = _video._checked_source(source, "video")
    wanted = _video._checked_indices(indices, path)
    if len(wanted) == 0:
        info = _video.probe_video(path, kind="video")
        return np.zeros((0, info.height, info.width, 3), np.uint8)
    frames = _read_unique(path, sorted(set(wanted.tolist())), decode_threads)
    return np.stack([frames[i] for i in wanted.tolist()])


def read_window_union(source: str | os.PathLike, index_lists: Mapping[str, Sequence[int] | np.ndarray], *,
                      decode_threads: int = 1, **_ignored) -> _video.FrameUnion:
    """`data.video.read_frames_union` through the pool: one decode of the union of the index lists."""
    union, positions = _video.FrameUnion.of(index_lists)
    return _video.FrameUnion(read_window(source, union, decode_threads=decode_threads), positions)
