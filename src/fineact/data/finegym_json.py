"""Seconds of the official FineGym annotation JSON -> frame indices of an untrimmed video.

Rounding (the one rule every path of fineact uses: the reader, `fineact prepare` and the test generator):
frame ``i`` is shown during ``[i / fps, (i + 1) / fps)`` seconds after the first frame, and a span
``[start, end)`` in seconds holds the frames whose display START lies in it:

    first = ceil(start * fps),   end = ceil(end * fps)   (exclusive)

This is what trimming with FFmpeg's output seeking (``-ss start -t end-start``, how MMAction2 cuts FineGym)
keeps: frames with ``start <= pts < end``, so a clip trimmed that way and the same span read from the untrimmed
video hold the same frames. Rounding to the nearest frame instead would move a boundary half a frame for no
gain, and truncation would take a frame that begins before the element does. The arithmetic is exact: seconds
are taken as the decimal the JSON wrote (``Fraction(repr(seconds))``, millisecond precision) and fps as the
stream's rational rate (30000/1001 stays 30000/1001), so a boundary that falls exactly on a frame never rounds
the wrong way through a float error.
"""

from __future__ import annotations

import math
from fractions import Fraction

__all__ = ["exact_seconds", "frame_span"]


def exact_seconds(seconds: float | int | str | Fraction) -> Fraction:
    """The decimal a JSON number was written as, exactly (12.345 -> 12345/1000, not the nearest double)."""
    if isinstance(seconds, Fraction):
        return seconds
    if isinstance(seconds, float):
        return Fraction(repr(seconds))
    return Fraction(seconds)


def frame_span(start: float | Fraction, end: float | Fraction, fps: float | Fraction) -> tuple[int, int]:
    """(first frame, end frame exclusive) of the span ``[start, end)`` seconds at ``fps`` (see module doc)."""
    rate = exact_seconds(fps) if not isinstance(fps, Fraction) else fps
    first = math.ceil(exact_seconds(start) * rate)
    last = math.ceil(exact_seconds(end) * rate)
    return first, last
