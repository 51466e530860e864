"""One sequential decode of a whole video serving every sliding window, with bounded memory.

    for i, frames in window_frames(source, plan):      # frames: {pathway: (T, H, W, 3) uint8}
        ...

The video is decoded ONCE from the first frame to the last frame any window needs, in order, counting frames
(frame ``i`` is the i-th frame a sequential decode yields: the numbering of ``fineact.data.video``). No window
re-opens or re-seeks the file. Only frames some window reads are converted to RGB and kept; window ``i`` is
handed out as soon as its last frame is decoded, and frames before the first frame of the next pending window
are dropped (a frame may be preprocessed once as it enters the buffer: ``prepare``). So the buffer holds at
most one window's span of frames, whatever the video's length: a 2-hour video costs the memory of a few
seconds of it.

A video whose probed frame count was too high (a count from packets, a truncated file) ends early: the windows
still pending get their missing frames from the last decoded one ("clamp").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

from fineact.data.video import _open_container, read_frames
from fineact.errors import VideoError
from fineact.windows.plan import WindowPlan

__all__ = ["decoded_frames", "window_frames"]


def decoded_frames(source: str | os.PathLike, wanted: np.ndarray, *, decode_threads: int = 0,
                   filename_template: str = "img_{:05d}.jpg", start_index: int = 1
                   ) -> Iterator[tuple[int, np.ndarray | None]]:
    """(frame number, RGB array or None) for every frame in order; RGB only where ``wanted[number]`` is true.

    Stops after the last wanted frame. Frame folders read one file per wanted frame.
    """
    path = Path(source)
    last = int(np.flatnonzero(wanted)[-1]) if wanted.any() else -1
    if path.is_dir():
        for number in range(last + 1):
            frame = read_frames(path, [number], filename_template=filename_template, start_index=start_index,
                                kind="frames")[0] if wanted[number] else None
            yield number, frame
        return
    container, stream = _open_container(path, decode_threads)
    with container:
        try:
            for number, frame in enumerate(container.decode(stream)):
                keep = number < len(wanted) and wanted[number]
                yield number, frame.to_ndarray(format="rgb24") if keep else None
                if number >= last:
                    return
        except av.FFmpegError as exc:
            raise VideoError(f"{path}: truncated or corrupt video, decoding failed ({exc})") from None


def window_frames(source: str | os.PathLike, plan: WindowPlan, *, decode_threads: int = 0,
                  on_frame: Callable[[int], None] | None = None, prepare: Callable[[np.ndarray], Any] | None = None,
                  combine: Callable[[list], Any] = np.stack, **folder_options) -> Iterator[tuple[int, dict[str, Any]]]:
    """(window number, {pathway: (T, H, W, 3) uint8}) for every window of ``plan``, in order, from one decode.

    ``prepare(rgb)``: applied once to every kept frame before it is buffered (per-frame preprocessing, so
    that overlapping windows do not redo it); ``combine(list of prepared frames)`` then builds each pathway's
    clip (default: ``np.stack`` of the RGB frames). ``on_frame(number)`` is called for every decoded frame (a
    progress bar). ``folder_options``: filename_template / start_index for frame folders.
    """
    prepare = prepare or (lambda rgb: rgb)
    wanted = np.zeros(plan.num_frames, bool)
    for idx in plan.indices.values():
        wanted[idx.reshape(-1)] = True
    first, last = plan.first_frames, plan.last_frames
    buffer: dict[int, np.ndarray] = {}  # the ring: frames of pending windows only
    latest: tuple[int, np.ndarray] | None = None  # last RGB frame seen, for a video that ends early
    pending = 0
    for number, rgb in decoded_frames(source, wanted, decode_threads=decode_threads, **folder_options):
        if on_frame is not None:
            on_frame(number)
        if rgb is None:
            continue
        buffer[number] = prepared = prepare(rgb)
        latest = (number, prepared)
        while pending < plan.num_windows and last[pending] <= number:
            yield pending, _gather(plan, pending, buffer, latest, combine)
            pending += 1
            _drop_before(buffer, first[pending] if pending < plan.num_windows else number + 1)
    if latest is None:
        raise VideoError(f"{source}: contains no decodable video frames")
    if pending < plan.num_windows:  # the video ended before the probed frame count: clamp to its last frame
        end = number
        if latest[0] != end:  # the last frame was not wanted, so not converted: read it (this rare case only)
            latest = (end, prepare(read_frames(source, [end], **folder_options)[0]))
        while pending < plan.num_windows:
            yield pending, _gather(plan, pending, buffer, latest, combine)
            pending += 1


def _gather(plan: WindowPlan, i: int, buffer: dict, latest: tuple, combine: Callable[[list], Any]) -> dict:
    """Window ``i``'s frames per pathway; a frame past the decoded end is the last decoded one."""
    end, last_frame = latest
    return {name: combine([buffer[n] if n <= end else last_frame for n in idx[i].tolist()])
            for name, idx in plan.indices.items()}


def _drop_before(buffer: dict, keep_from: int) -> None:
    for number in [n for n in buffer if n < keep_from]:
        del buffer[number]
