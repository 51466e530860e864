"""`fineact prepare finegym`: trimmed element clips from the untrimmed videos, for users who want files anyway.

fineact does not need this step (it reads the untrimmed videos through the annotation JSON), but other tools
(MMAction2) want one clip per element. Per element of the split files:
- its frames are exactly those the untrimmed path reads (`finegym_json.frame_span`, the video's own rate),
- re-encoded with PyAV's libx264 at the native frame rate and size (never a stream copy: copying cuts only at
  keyframes and leaves most clips unplayable, mmaction2 #743),
- written atomically (a hidden partial file renamed into place), so finished clips are exactly the files named
  `<clip_id>.mp4` and an interrupted run resumes by skipping them;
- in parallel worker processes, one untrimmed video per task (each is opened once), with a progress bar.

Decoding follows data/video.py's frame numbering: in a container that proves a constant rate, each window is
reached by seeking to the keyframe before it and every frame's number is checked from its pts (one frame after
the previous one); anything irregular, and every other container, is served by one sequential pass over the
video that counts frames (the reference protocol). Decoded frames are re-encoded as they come (no RGB round
trip, nothing but the current frame in memory).

Writes, under the output folder: `videos/<clip_id>.mp4`; per split file, the same file name with the lines of
the clips that exist (`<clip_id> <Clabel>`: fineact's `data.format: finegym` reads it with
`data_root: <out>/videos`) and `<split stem>_videos.txt` (`<clip_id>.mp4 <Clabel>`, an MMAction2 video list);
`missing_videos.json` (the table of data/untrimmed.py).
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator, Sequence

import av
from av.video.frame import PictureType

from fineact.data.annotations import read_finegym_untrimmed_split
from fineact.data.untrimmed import MISSING_VIDEOS_FILE, UntrimmedSplits
from fineact.data.video import (MIN_SEEK_GAIN, _constant_rate, _FrameClock, _keyframe_numbers, _open_container,
                               _UnreliableTimestamps)
from fineact.data.video_pool import proves_constant_rate, warn_not_seekable
from fineact.errors import ConfigError, VideoError

__all__ = ["PrepareSummary", "prepare_finegym"]

VIDEOS_DIR = "videos"
DEFAULT_ENCODING = {"crf": "18", "preset": "fast"}


@dataclass(frozen=True)
class Window:
    clip_id: str
    first: int
    end: int  # exclusive


@dataclass
class PrepareSummary:
    out_dir: Path
    written: int
    skipped: int           # already there from an earlier run
    left_out: int          # samples of missing or unreadable videos
    split_lists: list[Path]
    missing_videos: Path


# ----------------------------------------------------------------------------------------------------------
# Decoding the frames of a set of windows, in order
# ----------------------------------------------------------------------------------------------------------

def _merged(windows: Sequence[Window]) -> list[tuple[int, int]]:
    spans: list[list[int]] = []
    for w in sorted(windows, key=lambda w: w.first):
        if spans and w.first <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], w.end)
        else:
            spans.append([w.first, w.end])
    return [(a, b) for a, b in spans]


def _sequential(path: Path, spans: list[tuple[int, int]]) -> Iterator[tuple[int, av.VideoFrame]]:
    """The reference protocol: decode from the start, frame i = the i-th decoded frame."""
    container, stream = _open_container(path, 1)
    last = spans[-1][1]
    with container:
        for number, frame in enumerate(container.decode(stream)):
            if number >= last:
                return
            if any(a <= number < b for a, b in spans):
                yield number, frame


def _seeking(path: Path, spans: list[tuple[int, int]]) -> Iterator[tuple[int, av.VideoFrame]]:
    """Seek to the keyframe before each span, number frames by pts; _UnreliableTimestamps on any irregularity."""
    container, stream = _open_container(path, 1)
    with container:
        frames_per_tick = _constant_rate(stream)
        decoded = container.decode(stream)
        first = next(decoded, None)
        if first is None or first.pts is None:
            raise _UnreliableTimestamps("no first frame")
        clock, position = _FrameClock(first.pts, frames_per_tick), -1
        keyframes = _keyframe_numbers(stream, clock)
        if keyframes is None:
            raise _UnreliableTimestamps("no complete sample index")
        decoded = _chain(first, decoded)
        for a, b in spans:
            keyframe = max([k for k in keyframes if k <= a], default=0)
            after_seek = keyframe - position > MIN_SEEK_GAIN
            if after_seek:
                container.seek(clock.pts(keyframe), stream=stream, backward=True)
                decoded, position = container.decode(stream), None
            for frame in decoded:
                if position is None and not frame.key_frame:
                    continue  # a leading picture after the seek point
                number = clock.number(frame.pts)
                if (position is None and number > a) or (position is not None and number != position + 1):
                    raise _UnreliableTimestamps(f"frame {number} after {position}")
                position = number
                if a <= number < b:
                    yield number, frame
                if number == b - 1:
                    break
            else:
                raise VideoError(f"{path}: the video ends at frame {position}, before frame {b - 1}")


def _chain(first, rest):
    yield first
    yield from rest


# ----------------------------------------------------------------------------------------------------------
# Encoding
# ----------------------------------------------------------------------------------------------------------

class _ClipWriter:
    """One element clip being written into a hidden partial file, renamed into place when complete."""

    def __init__(self, final: Path, rate: Fraction, width: int, height: int, encoding: dict[str, str]):
        self.final = final
        self.partial = final.with_name(f".{final.stem}.{socket.gethostname()}-{os.getpid()}.partial.mp4")
        self.container = av.open(str(self.partial), "w", format="mp4")
        self.stream = self.container.add_stream("libx264", rate=rate)
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        self.stream.options = dict(encoding)
        self.time_base = Fraction(1) / rate
        self.count = 0

    def add(self, frame: av.VideoFrame) -> None:
        frame = frame.reformat(format="yuv420p") if frame.format.name != "yuv420p" else frame
        frame.pts, frame.time_base = self.count, self.time_base
        frame.pict_type = PictureType.NONE  # libx264 would otherwise copy the source's I/P/B decisions
        self.container.mux(self.stream.encode(frame))
        self.count += 1

    def finish(self) -> None:
        self.container.mux(self.stream.encode(None))
        self.container.close()
        os.replace(self.partial, self.final)

    def abandon(self) -> None:
        self.container.close()
        self.partial.unlink(missing_ok=True)


def _trim_video(path: str, windows: list[Window], out_dir: str, encoding: dict[str, str]) -> int:
    """Write every window of one untrimmed video; returns how many clips were written."""
    video, out = Path(path), Path(out_dir)
    container, stream = _open_container(video, 1)
    with container:
        rate = Fraction(stream.average_rate)
        width, height = stream.codec_context.width, stream.codec_context.height
    seekable, _ = proves_constant_rate(video)
    spans = _merged(windows)
    try:
        return _write_windows(_seeking(video, spans) if seekable else _sequential(video, spans), windows, out, rate,
                              width, height, encoding)
    except _UnreliableTimestamps:
        return _write_windows(_sequential(video, spans), windows, out, rate, width, height, encoding)


def _write_windows(frames, windows: list[Window], out: Path, rate, width, height, encoding) -> int:
    pending = sorted(windows, key=lambda w: w.first)
    active: dict[str, tuple[Window, _ClipWriter]] = {}
    written = 0
    try:
        for number, frame in frames:
            while pending and pending[0].first <= number:
                w = pending.pop(0)
                active[w.clip_id] = (w, _ClipWriter(out / f"{w.clip_id}.mp4", rate, width, height, encoding))
            for clip_id, (w, writer) in list(active.items()):
                if w.first <= number < w.end:
                    writer.add(frame)
                if number == w.end - 1:
                    writer.finish()
                    del active[clip_id]
                    written += 1
    except BaseException:
        for _, writer in active.values():
            writer.abandon()
        raise
    if active or pending:
        for _, writer in active.values():
            writer.abandon()
        raise VideoError(f"{len(active) + len(pending)} clip(s) could not be completed: the video ended early")
    return written


# ----------------------------------------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------------------------------------

def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="clip", desc="fineact prepare", disable=not enabled)


def prepare_finegym(annotations: str | os.PathLike, videos: str | os.PathLike, splits: Sequence[str | os.PathLike],
                    out: str | os.PathLike, workers: int = 2, encoding: dict[str, str] | None = None,
                    progress: bool = True) -> PrepareSummary:
    """Trim every element of `splits` out of the untrimmed videos in `videos` (see the module doc)."""
    if not splits:
        raise ConfigError("prepare finegym: give at least one split file (--splits)")
    if workers < 1:
        raise ConfigError(f"prepare finegym: --workers must be >= 1, found {workers}")
    out_dir = Path(out).absolute()
    clips_dir = out_dir / VIDEOS_DIR
    clips_dir.mkdir(parents=True, exist_ok=True)
    samples = {Path(s).name: read_finegym_untrimmed_split(s, videos, annotations) for s in splits}
    scanned = UntrimmedSplits.scan(samples, workers=max(2, workers))
    by_video: dict[str, dict[str, Window]] = {}
    for name in samples:
        for s in scanned.samples(name):
            by_video.setdefault(s.source, {})[s.sample_id] = Window(s.sample_id, s.start_frame, s.end_frame)
    todo = {path: [w for w in windows.values() if not (clips_dir / f"{w.clip_id}.mp4").is_file()]
            for path, windows in by_video.items()}
    skipped = sum(len(w) for w in by_video.values()) - sum(len(w) for w in todo.values())
    todo = {path: windows for path, windows in todo.items() if windows}
    for path, state in scanned.states.items():
        if path in todo and not state.seekable:
            warn_not_seekable(path)  # prepare still works: one sequential pass over such a video
    written = _run(todo, clips_dir, {**DEFAULT_ENCODING, **(encoding or {})}, workers, progress)
    lists = _write_lists(out_dir, scanned, samples, clips_dir)
    table = scanned.table.write(out_dir / MISSING_VIDEOS_FILE)
    left_out = sum(total["left_out"] for total in scanned.table.totals.values())
    return PrepareSummary(out_dir, written, skipped, left_out, lists, table)


def _run(todo: dict[str, list[Window]], clips_dir: Path, encoding: dict[str, str], workers: int,
         progress: bool) -> int:
    written = 0
    with _progress(sum(len(w) for w in todo.values()), progress) as bar:
        if workers == 1 or len(todo) < 2:
            for path, windows in todo.items():
                count = _trim_video(path, windows, str(clips_dir), encoding)
                written += count
                bar.update(count)
            return written
        # "spawn": children start clean of the parent's FFmpeg threads and torch state
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_trim_video, path, windows, str(clips_dir), encoding)
                       for path, windows in todo.items()]
            try:
                for future in as_completed(futures):
                    count = future.result()
                    written += count
                    bar.update(count)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    return written


def _write_lists(out_dir: Path, scanned: UntrimmedSplits, samples: dict, clips_dir: Path) -> list[Path]:
    paths = []
    for name in samples:
        present = [s for s in scanned.samples(name) if (clips_dir / f"{s.sample_id}.mp4").is_file()]
        split_list = out_dir / name
        split_list.write_text("".join(f"{s.sample_id} {s.label}\n" for s in present), encoding="utf-8")
        video_list = out_dir / f"{Path(name).stem}_videos.txt"
        video_list.write_text("".join(f"{s.sample_id}.mp4 {s.label}\n" for s in present), encoding="utf-8")
        paths += [split_list, video_list]
    return paths
