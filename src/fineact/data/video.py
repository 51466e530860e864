"""Frame-accurate decoding of videos (PyAV) and frame folders (Pillow).

Frame numbering protocol
------------------------
Frame ``i`` (0-based) of a video is the ``i``-th frame that a full sequential decode of its first video stream
yields, in presentation order. Frame ``i`` of a frame folder is the image file
``filename_template.format(start_index + i)`` (TSM / MMAction2 folders are 1-based: ``start_index=1``).

How a video is read
-------------------
Only the requested frames are converted to RGB, decoding stops after the last requested frame, unrequested
frames that no other frame references (most B-frames) are not decoded at all, and long gaps between requested
frames are skipped by seeking:

* Frame numbers and timestamps are related by ``i = (pts - pts_0) * time_base * fps`` where ``pts_0`` is the pts
  of the first decoded frame and ``fps`` the stream's average rate. This only holds for a constant frame rate,
  and a frame dropped anywhere before ``i`` would silently shift every later frame. So seeking is used only when
  the container PROVES a constant rate: a complete sample index (MP4/MOV) whose timestamps are equally spaced,
  a frame count equal to duration x fps, and an average rate equal to FFmpeg's guessed rate. Other containers
  (Matroska/WebM, MPEG-TS, ...) are decoded sequentially up to the last requested frame; remuxing them to MP4
  (``ffmpeg -i in.mkv -c copy out.mp4``) enables seeking.
* Before the next requested frame ``t``, the reader seeks when the last keyframe at or before ``t`` (from the
  index) lies more than ``MIN_SEEK_GAIN`` frames past the current decoding position.
* Frames are identified by their pts. After a seek, frames before the first keyframe (leading pictures of an
  open GOP, which reference frames before the seek point) are dropped and the first kept frame must not lie
  after ``t`` (else the seek is retried further back). Every frame must be exactly one frame after the previous
  one, except across frames whose packets were sent with ``skip_frame="NONREF"`` (unrequested frames, which the
  decoder drops when they are not references).
* Any violation (missing or irregular pts, a seek landing after the target twice) abandons seeking and the
  request is served by a plain sequential decode that counts frames, so a wrong frame is never returned.

Every user-facing failure (missing, unreadable, not a video, corrupt, empty, too short) raises ``VideoError``
naming the path and what was wrong.
"""

from __future__ import annotations

import bisect
import io
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from fineact.errors import ConfigError, VideoError

__all__ = ["EncodedVideo", "FrameUnion", "VideoInfo", "probe_video", "read_frames", "read_frames_multi",
           "read_frames_union"]

SOURCE_KINDS = ("auto", "video", "frames")
# Seeking costs a demuxer seek, a decoder flush and refilling the decoder's reorder/thread pipeline (a few
# frames): below this many skipped frames, decoding straight through is as fast.
MIN_SEEK_GAIN = 8
# A pts may be off by rounding to the time base; anything further than this from a whole frame is irregular.
PTS_TOLERANCE_FRAMES = 0.25


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe_video`` learns about a source.

    ``num_frames_from`` says where ``num_frames`` came from: "container" (the stream's frame count: the sample
    count of MP4/MOV), "packets" (video packets counted by demuxing without decoding: exact for codecs that put
    one frame in a packet, as H.264/HEVC/VP9 in common containers), "decoded" (a full decode: exact) or
    "files" (consecutive frame files of a folder). ``fps`` is None for frame folders.
    """

    num_frames: int
    fps: float | None
    width: int
    height: int
    is_frame_folder: bool
    num_frames_from: str = "container"


@dataclass(frozen=True)
class EncodedVideo:
    """A video file's bytes held in memory (a pack's record, data/packs.py), read like a file on disk.

    ``name`` stands for the path in every error message (e.g. "pack/ record 12 (train.txt:13 clip.mp4)")."""

    data: bytes
    name: str

    def __str__(self) -> str:
        return self.name

    def is_dir(self) -> bool:
        return False


# ----------------------------------------------------------------------------------------------- public API


def read_frames(
    source: str | os.PathLike | EncodedVideo,
    indices: Sequence[int] | np.ndarray,
    *,
    filename_template: str = "img_{:05d}.jpg",
    start_index: int = 1,
    kind: str = "auto",
    decode_threads: int = 0,
) -> np.ndarray:
    """Read frames ``indices`` (0-based; any order, repeats allowed) as uint8 RGB ``(len(indices), H, W, 3)``.

    ``source`` is a video file or a frame folder; ``kind="auto"`` decides by ``Path.is_dir()``, while "video" or
    "frames" insists on one (a directory given as a video, or a file given as a folder, is then an error).
    Frame folders use ``filename_template.format(start_index + i)``. ``decode_threads``: FFmpeg decoder threads
    (0 = FFmpeg's choice; use 1 inside many DataLoader workers). Raises ``VideoError`` for unreadable sources and
    for indices past the end (naming the index and the number of frames available).
    """
    path = source if isinstance(source, EncodedVideo) else _checked_source(source, kind)
    wanted = _checked_indices(indices, path)
    if len(wanted) == 0:
        return _empty_clip(path, filename_template, start_index)
    if path.is_dir():
        frames = _read_folder_frames(path, wanted, filename_template, start_index)
    else:
        frames = _read_video_frames(path, wanted, decode_threads)[0]
    return np.stack([frames[i] for i in wanted.tolist()])


@dataclass(frozen=True)
class FrameUnion:
    """The frames of several index lists (e.g. one per pathway), each decoded once: ``frames`` holds the sorted
    union of the indices, ``positions[name]`` where each list's frames are in it (repeats allowed)."""

    frames: np.ndarray                # uint8 (len(union), H, W, 3)
    positions: dict[str, np.ndarray]  # {name: int64 positions into frames}

    @staticmethod
    def of(index_lists: Mapping[str, Sequence[int] | np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """-> (the sorted unique indices to read, {name: positions in them})."""
        lists = {name: np.asarray(idx, dtype=np.int64).reshape(-1) for name, idx in index_lists.items()}
        union = np.unique(np.concatenate(list(lists.values()))) if lists else np.zeros(0, np.int64)
        return union, {name: np.searchsorted(union, idx) for name, idx in lists.items()}

    def split(self) -> dict[str, np.ndarray]:
        """{name: that list's frames}, copied out of the union."""
        return {name: self.frames[pos] for name, pos in self.positions.items()}

    def take(self, clip: torch.Tensor) -> dict[str, torch.Tensor]:
        """The union's frames after a per-frame transform, uint8 ``(C, T, H, W)`` in the loader's layout (channels
        innermost in memory) -> {name: that list's frames}, in the same layout; no copy when a list is the whole
        union in order (a single pathway)."""
        if not isinstance(clip, torch.Tensor) or clip.dim() != 4 or clip.shape[-3] != len(self.frames):
            found = f"{type(clip).__name__} {tuple(getattr(clip, 'shape', ()))}"
            raise ConfigError(f"a training transform must map the {len(self.frames)} frames (T, H, W, 3) it is given "
                              f"to one clip (C, T, H, W) with the same T (per-frame crops and flips), found {found}")
        every = np.arange(clip.shape[-3])
        frames_last = clip.movedim(-4, -1)  # (T, H, W, C): indexing T keeps the memory order
        return {name: clip if np.array_equal(pos, every) else frames_last[torch.from_numpy(pos)].movedim(-1, -4)
                for name, pos in self.positions.items()}


def read_frames_union(
    source: str | os.PathLike | EncodedVideo,
    index_lists: Mapping[str, Sequence[int] | np.ndarray],
    **read_kwargs,
) -> FrameUnion:
    """Read several index lists (e.g. one per pathway) with ONE decode of their union: a ``FrameUnion``.

    ``read_kwargs`` are passed to ``read_frames`` (filename_template, start_index, kind, decode_threads).
    """
    union, positions = FrameUnion.of(index_lists)
    return FrameUnion(read_frames(source, union, **read_kwargs), positions)


def read_frames_multi(
    source: str | os.PathLike | EncodedVideo,
    index_lists: Mapping[str, Sequence[int] | np.ndarray],
    **read_kwargs,
) -> dict[str, np.ndarray]:
    """Read several index lists with ONE decode of their union; returns {name: frames} (``read_frames_union``)."""
    return read_frames_union(source, index_lists, **read_kwargs).split()


def probe_video(
    source: str | os.PathLike,
    *,
    filename_template: str = "img_{:05d}.jpg",
    start_index: int = 1,
    kind: str = "auto",
    exact: bool = False,
) -> VideoInfo:
    """Frame count, fps and size of a video or frame folder.

    Videos: the count is the container's frame count when it has one (``stream.frames``), else the number of
    video packets (a demux, no decoding; durations are not used because demuxers disagree on whether they
    include the start time); ``exact=True`` decodes everything and counts the frames.
    Frame folders: the number of consecutive files from ``start_index``; fps is None.
    """
    path = _checked_source(source, kind)
    if path.is_dir():
        return _probe_folder(path, filename_template, start_index)
    return _probe_video_file(path, exact)


# --------------------------------------------------------------------------------------- argument checking


def _checked_source(source, kind: str) -> Path:
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"kind must be one of {SOURCE_KINDS}, got {kind!r}")
    path = Path(source)
    if not path.exists():
        raise VideoError(f"{path}: no such file or directory")
    if kind == "video" and path.is_dir():
        raise VideoError(f"{path}: expected a video file, found a directory (give kind='frames' for frame folders)")
    if kind == "frames" and not path.is_dir():
        raise VideoError(f"{path}: expected a frame folder, found a file (give kind='video' for video files)")
    if not os.access(path, os.R_OK):
        raise VideoError(f"{path}: permission denied (cannot read)")
    return path


def _checked_indices(indices, path: Path) -> np.ndarray:
    array = np.asarray(indices)
    if array.size == 0:
        return np.zeros(0, np.int64)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise VideoError(f"{path}: frame indices must be a 1-D sequence of integers, got {array.dtype} {array.shape}")
    if array.min() < 0:
        raise VideoError(f"{path}: frame indices must be >= 0, got {int(array.min())}")
    return array.astype(np.int64)


def _past_end_error(path: Path, index: int, available: int, declared: int = 0) -> VideoError:
    truncated = (
        f"; the container declares {declared} frames, so the file is truncated or corrupt"
        if declared > available
        else ""
    )
    return VideoError(
        f"{path}: frame {index} requested but only {available} frames are available "
        f"(valid indices 0..{available - 1}){truncated}"
    )


# ------------------------------------------------------------------------------------------- frame folders


def _frame_file(folder: Path, template: str, start_index: int, i: int) -> Path:
    try:
        return folder / template.format(start_index + i)
    except (IndexError, KeyError, ValueError) as exc:
        raise ConfigError(f"filename_template {template!r} cannot format a frame number: {exc}") from None


def _count_frame_files(folder: Path, template: str, start_index: int) -> int:
    """Number of consecutive frame files from start_index (one directory listing)."""
    names = set(os.listdir(folder))
    count = 0
    while _frame_file(folder, template, start_index, count).name in names:
        count += 1
    return count


def _has_frame_files_after(folder: Path, template: str, start_index: int, first: int) -> bool:
    """Whether any frame file numbered ``first`` or later exists (a gap in the numbering, not the end)."""
    names = set(os.listdir(folder))
    candidates = range(first, first + len(names) + 1)  # a later file implies one within len(names) numbers
    return any(_frame_file(folder, template, start_index, i).name in names for i in candidates)


def _load_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except PermissionError:
        raise VideoError(f"{path}: permission denied (cannot read frame file)") from None
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow's ways of saying "not an image I can read"
        raise VideoError(f"{path}: unreadable image: {exc}") from None


def _read_folder_frames(folder: Path, wanted: np.ndarray, template: str, start_index: int) -> dict[int, np.ndarray]:
    frames: dict[int, np.ndarray] = {}
    for i in sorted(set(wanted.tolist())):
        file = _frame_file(folder, template, start_index, i)
        if not file.is_file():
            raise _missing_frame_file_error(folder, template, start_index, i, file)
        frames[i] = _load_image(file)
    _check_same_size(folder, frames)
    return frames


def _missing_frame_file_error(folder: Path, template: str, start_index: int, i: int, file: Path) -> VideoError:
    available = _count_frame_files(folder, template, start_index)
    if available == 0:
        first = _frame_file(folder, template, start_index, 0).name
        return VideoError(
            f"{folder}: directory has no frames matching template {template!r} (first expected file {first}); "
            f"if it is not a frame folder, give the path of a video file"
        )
    if _has_frame_files_after(folder, template, start_index, available + 1):
        return VideoError(
            f"{folder}: frame file {file.name} (frame {i}) is missing; frames 0..{available - 1} exist, then the "
            f"numbering has a gap at frame {available}"
        )
    return _past_end_error(folder, i, available)


def _check_same_size(folder: Path, frames: dict[int, np.ndarray]) -> None:
    shapes = {frame.shape for frame in frames.values()}
    if len(shapes) > 1:
        raise VideoError(f"{folder}: frame files differ in size: {sorted(shapes)}")


def _probe_folder(folder: Path, template: str, start_index: int) -> VideoInfo:
    count = _count_frame_files(folder, template, start_index)
    if count == 0:
        raise _missing_frame_file_error(folder, template, start_index, 0, _frame_file(folder, template, start_index, 0))
    height, width = _load_image(_frame_file(folder, template, start_index, 0)).shape[:2]
    return VideoInfo(count, None, width, height, True, "files")


def _empty_clip(path: Path, template: str, start_index: int) -> np.ndarray:
    info = probe_video(path, filename_template=template, start_index=start_index)
    return np.zeros((0, info.height, info.width, 3), np.uint8)


# --------------------------------------------------------------------------------------------- video files


class _UnreliableTimestamps(Exception):
    """Internal: pts cannot be trusted to number frames; the caller falls back to sequential decoding."""


class _EndOfStream(Exception):
    """Internal: the stream ended after ``available`` frames (of ``declared`` in the container) too early."""

    def __init__(self, available: int, declared: int = 0):
        super().__init__(available)
        self.available, self.declared = available, declared


@dataclass
class DecodeStats:
    """How a request was served (for tests and benchmarks): mode, frames decoded, seeks made."""

    mode: str = "seek"
    decoded: int = 0
    seeks: int = 0


@dataclass(frozen=True)
class _FrameClock:
    """Maps pts <-> frame number for a constant-frame-rate stream: i = (pts - first_pts) * time_base * rate."""

    first_pts: int
    frames_per_tick: Fraction  # time_base * rate

    def number(self, pts: int | None) -> int:
        if pts is None:
            raise _UnreliableTimestamps("frame without pts")
        exact = (pts - self.first_pts) * self.frames_per_tick
        number = round(exact)
        if abs(exact - number) > PTS_TOLERANCE_FRAMES:
            raise _UnreliableTimestamps(f"pts {pts} is not on the frame grid")
        return number

    def pts(self, number: int) -> int:
        # Rounded up: a seek offset at or just after the frame's pts still finds the keyframe at that frame.
        return self.first_pts + math.ceil(number / self.frames_per_tick)


def _open_container(path: Path, decode_threads: int):
    try:
        container = av.open(io.BytesIO(path.data) if isinstance(path, EncodedVideo) else str(path), mode="r")
    except PermissionError:
        raise VideoError(f"{path}: permission denied (cannot read)") from None
    except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise VideoError(f"{path}: not a readable video file ({exc})") from None
    if not container.streams.video:
        found = ", ".join(s.type for s in container.streams) or "no streams at all"
        container.close()
        raise VideoError(f"{path}: contains no video stream (found: {found})")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame and slice threads: decoding is the bottleneck of a video loader
    stream.codec_context.thread_count = decode_threads
    return container, stream


def _read_video_frames(
    path: Path, wanted: np.ndarray, decode_threads: int = 0
) -> tuple[dict[int, np.ndarray], DecodeStats]:
    """Decode the sorted unique frames of ``wanted``; returns {frame number: RGB array} and how it went."""
    targets = sorted(set(wanted.tolist()))
    if not targets:
        return {}, DecodeStats()
    try:
        try:
            return _decode_with_seeking(path, targets, decode_threads)
        except _UnreliableTimestamps:
            return _decode_sequentially(path, targets, decode_threads)
    except _EndOfStream as end:
        if end.available == 0:
            raise VideoError(f"{path}: contains no decodable video frames") from None
        raise _past_end_error(path, targets[-1], end.available, end.declared) from None
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: truncated or corrupt video, decoding failed ({exc})") from None


def _decode_sequentially(path: Path, targets: list[int], decode_threads: int):
    """The reference protocol: decode from the start, count frames, keep the wanted ones, stop after the last."""
    stats = DecodeStats(mode="sequential")
    wanted, last = set(targets), targets[-1]
    frames: dict[int, np.ndarray] = {}
    container, stream = _open_container(path, decode_threads)
    with container:
        for number, frame in enumerate(container.decode(stream)):
            stats.decoded += 1
            if number in wanted:
                frames[number] = frame.to_ndarray(format="rgb24")
            if number == last:
                return frames, stats
        raise _EndOfStream(stats.decoded, stream.frames)


def _decode_with_seeking(path: Path, targets: list[int], decode_threads: int):
    container, stream = _open_container(path, decode_threads)
    with container:
        reader = _SeekingReader(container, stream, _constant_rate(stream), targets)
        return reader.read(), reader.stats


def _constant_rate(stream) -> Fraction:
    """time_base * fps if the container describes a constant frame rate, else raise _UnreliableTimestamps."""
    rate, guessed, time_base = stream.average_rate, stream.guessed_rate, stream.time_base
    if not rate or not time_base or not guessed or abs(rate - guessed) > rate * Fraction(1, 1000):
        raise _UnreliableTimestamps("no constant frame rate declared")
    if stream.frames and stream.duration:
        # MP4 knows both: a VFR file or one with a hole has a duration that is not frames / fps.
        if abs(stream.duration * time_base * rate - stream.frames) >= Fraction(1, 2):
            raise _UnreliableTimestamps("duration does not match frame count")
    return Fraction(time_base) * Fraction(rate)


def _keyframe_numbers(stream, clock: _FrameClock) -> list[int] | None:
    """Frame numbers of all keyframes from a complete sample index (MP4/MOV), else None.

    MOV index timestamps are decode timestamps; a keyframe's pts is its dts plus the stream's constant
    reorder delay (first pts - first dts), so the numbers are exact for the usual constant-delay encoders and
    only steer the seek decision (correctness never depends on them). A complete index also lets us check that
    samples are equally spaced, i.e. that the frame rate really is constant.
    """
    entries = stream.index_entries
    count = len(entries)
    if stream.frames < 2 or count < stream.frames:  # e.g. Matroska cues list only some keyframes
        return None
    timestamps = np.fromiter((entry.timestamp for entry in entries), np.int64, count)
    steps = np.diff(timestamps) * float(clock.frames_per_tick)
    if np.abs(steps - 1.0).max() > PTS_TOLERANCE_FRAMES:
        raise _UnreliableTimestamps("index timestamps are not equally spaced")
    delay = clock.first_pts - int(timestamps[0])
    keyframes = [clock.number(entry.timestamp + delay) for entry in entries if entry.is_keyframe]
    return sorted(set(max(0, k) for k in keyframes))


class _SeekingReader:
    """Serves sorted targets with forward decoding and keyframe seeks (protocol: see the module docstring).

    Decoding goes packet by packet so that each packet's pts (hence frame number) is known before it is
    decoded: packets of unwanted frames are decoded with ``skip_frame="NONREF"``, which drops them when no
    other frame references them (x264's default B-frames: about half of all frames). A gap in the decoded
    numbers is accepted only where such packets were sent; any other gap means the timestamps lie.
    """

    def __init__(self, container, stream, frames_per_tick: Fraction, targets: list[int],
                 clock: _FrameClock | None = None, keyframes: list[int] | None = None):
        self.container, self.stream, self.frames_per_tick = container, stream, frames_per_tick
        self.targets, self.wanted = targets, set(targets)
        self.clock: _FrameClock | None = clock  # known once the first frame is decoded
        self.keyframes: list[int] = keyframes or []  # frame numbers of all keyframes, from the container's index
        self.skippable: set[int] = set()  # frames whose packets were sent with skip_frame="NONREF"
        self.stats = DecodeStats(mode="seek")
        self.position = -1  # number of the last frame the current run produced
        self.run: Iterator = self._numbered(after_seek=False)
        if clock is not None:  # a container kept open (data/video_pool.py): at an unknown place, so seek first
            self.run, self.position = (frame for frame in ()), -(MIN_SEEK_GAIN + 1)

    def read(self) -> dict[int, np.ndarray]:
        try:
            return self._read()
        finally:
            # A suspended decoding run refers back to this reader, a cycle that only the garbage collector frees,
            # and holds its last decoded frame. Close it now: a frame left for the collector may be freed in a
            # forked DataLoader worker, where freeing it joins the parent's FFmpeg threads and crashes.
            self.run.close()

    def _read(self) -> dict[int, np.ndarray]:
        # Decode frame 0 first: it defines the clock and the keyframe numbers that the seek decisions need.
        if self.clock is None:
            first = next(self.run, None)
            if first is None:
                raise _EndOfStream(0)
            self.run = _prepend(first, self.run)
        frames: dict[int, np.ndarray] = {}
        for target in self.targets:
            if self._worth_seeking(target):
                self._seek_before(target)
            for number, frame in self.run:
                if number in self.wanted:
                    frames[number] = frame.to_ndarray(format="rgb24")
                if number == target:
                    break
            else:
                raise _EndOfStream(self.position + 1, self.stream.frames)
        return frames

    # -- seek decision ----------------------------------------------------------------------------------
    def _worth_seeking(self, target: int) -> bool:
        """Seek iff the keyframe that a seek would land on skips more than MIN_SEEK_GAIN frames."""
        at = bisect.bisect_right(self.keyframes, target) - 1
        keyframe = self.keyframes[at] if at >= 0 else 0
        return keyframe - self.position > MIN_SEEK_GAIN

    def _seek_before(self, target: int) -> None:
        """Seek so that the next run starts at a keyframe at or before ``target``."""
        self.run.close()  # the run before the seek is done with (see read)
        for back_off in (0, 32):  # a demuxer may land one GOP late (dts vs pts); one retry further back
            self.container.seek(self.clock.pts(max(0, target - back_off)), stream=self.stream, backward=True)
            self.stats.seeks += 1
            run = self._numbered(after_seek=True)
            first = next(run, None)
            if first is not None and first[0] <= target:
                self.run = _prepend(first, run)
                return
            run.close()
        raise _UnreliableTimestamps(f"seeking cannot reach frame {target}")

    # -- decoding runs ----------------------------------------------------------------------------------
    def _numbered(self, *, after_seek: bool) -> Iterator:
        """Yield (frame number, frame) from the demuxer's position, checking the numbers (see class doc)."""
        previous = None if after_seek else -1
        for frame in self._decoded():
            self.stats.decoded += 1
            if after_seek and previous is None and not frame.key_frame:
                continue  # a leading picture: it may reference frames from before the seek point
            number = self._number(frame)
            if previous is not None and not self._only_skipped_between(previous, number):
                raise _UnreliableTimestamps(f"frame {number} follows frame {previous}")
            previous = self.position = number
            yield number, frame

    def _decoded(self) -> Iterator:
        codec = self.stream.codec_context
        for packet in self.container.demux(self.stream):  # ends with an empty packet that flushes the decoder
            codec.skip_frame = "NONREF" if self._unwanted(packet) else "DEFAULT"
            yield from self.stream.decode(packet)

    def _unwanted(self, packet) -> bool:
        if self.clock is None or packet.pts is None:
            return False
        number = self.clock.number(packet.pts)
        if number in self.wanted:
            return False
        self.skippable.add(number)
        return True

    def _number(self, frame) -> int:
        if self.clock is None:  # the first frame of the video defines frame 0
            if frame.pts is None:
                raise _UnreliableTimestamps("first frame has no pts")
            self.clock = _FrameClock(frame.pts, self.frames_per_tick)
            keyframes = _keyframe_numbers(self.stream, self.clock)
            if keyframes is None:
                raise _UnreliableTimestamps("no complete sample index to prove a constant frame rate")
            self.keyframes = keyframes
        return self.clock.number(frame.pts)

    def _only_skipped_between(self, previous: int, number: int) -> bool:
        return number > previous and all(n in self.skippable for n in range(previous + 1, number))


def _prepend(item, iterator: Iterator) -> Iterator:
    yield item
    yield from iterator


def _probe_video_file(path: Path, exact: bool) -> VideoInfo:
    container, stream = _open_container(path, 0)
    with container:
        rate = stream.average_rate or stream.guessed_rate
        width, height = stream.codec_context.width, stream.codec_context.height
        count, source = (stream.frames, "container") if stream.frames > 0 else (None, "")
        if count is None and not exact:
            count, source = _count_packets(path, container, stream), "packets"
    if exact:
        count, source = _count_decoded_frames(path), "decoded"
    if count == 0:
        raise VideoError(f"{path}: contains no decodable video frames")
    return VideoInfo(count, float(rate) if rate else None, width, height, False, source)


def _count_packets(path: Path, container, stream) -> int:
    try:
        return sum(1 for packet in container.demux(stream) if packet.size > 0)  # size 0: the end-of-stream flush
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: truncated or corrupt video, demuxing failed ({exc})") from None


def _count_decoded_frames(path: Path) -> int:
    """Decode everything (no RGB conversion) and count the frames."""
    container, stream = _open_container(path, 0)
    try:
        with container:
            return sum(1 for _ in container.decode(stream))
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: truncated or corrupt video, decoding failed ({exc})") from None
