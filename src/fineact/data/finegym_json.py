"""The official FineGym annotation JSON (`finegym_annotation_info_v1.0.json` / v1.1): reading it, mapping the
split files' clip ids to element spans in seconds, and seconds -> frame indices of an untrimmed video.

Schema (shared/REFERENCE.md section 6):
    {youtube_id: {"E_XXXXXX_YYYYYY": {"event": int, "timestamps": [[start, end]],
                                      "segments": {"A_ZZZZ_WWWW": {"stages": int, "timestamps": [[s, e], ...]}}
                                                  | null}}}
Event timestamps are absolute seconds; segment timestamps are relative to the event's start, one [s, e] per
stage (vault: 3). The element of clip id `<youtube_id>_<E key>_<A key>` spans
    event_start + stages[0][0]  ..  event_start + stages[-1][1]
(all of a vault's stages). The numbers inside the ids are those times truncated to whole seconds and are never
used as times. Every deviation from the schema is an AnnotationError naming the file and the key path; a split
line whose id the JSON does not hold is one naming the split file's line.

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

import json
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from fineact.data.textfiles import closest_hint, read_text
from fineact.errors import AnnotationError

__all__ = ["ElementSpan", "FineGymAnnotations", "exact_seconds", "frame_span", "load_finegym_annotations"]


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


# ----------------------------------------------------------------------------------------------------------
# The JSON
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ElementSpan:
    """Where one element of the JSON is in its untrimmed video (absolute seconds, as the JSON wrote them)."""

    youtube_id: str
    event_key: str
    segment_key: str
    event: int
    start: float
    end: float
    stages: int


def _key_path(keys: tuple[str, ...]) -> str:
    return "".join(f"[{key!r}]" for key in keys) or "the top level"


def _found(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Checker:
    def __init__(self, path: str):
        self.path = path

    def fail(self, keys: tuple[str, ...], expected: str, value) -> AnnotationError:
        return AnnotationError(f"{self.path}: at {_key_path(keys)}: expected {expected}, found {_found(value)} "
                               f"(the official FineGym annotation schema, see the README's 'FineGym from scratch')")

    def mapping(self, value, keys: tuple[str, ...], what: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(keys, what, value)
        return value

    def number(self, value, keys: tuple[str, ...]) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise self.fail(keys, "seconds as a number >= 0", value)
        return float(value)

    def spans(self, value, keys: tuple[str, ...], what: str) -> list[tuple[float, float]]:
        if not isinstance(value, list) or not value:
            raise self.fail(keys, what, value)
        spans = []
        for i, pair in enumerate(value):
            if not isinstance(pair, list) or len(pair) != 2:
                raise self.fail((*keys, str(i)), "a [start, end] pair of seconds", pair)
            start, end = (self.number(x, (*keys, str(i))) for x in pair)
            if end < start:
                raise self.fail((*keys, str(i)), "end >= start", pair)
            spans.append((start, end))
        return spans


class FineGymAnnotations:
    """The validated JSON: element spans by (youtube_id, event key, segment key)."""

    def __init__(self, path: str, document: object):
        self.path = path
        check = _Checker(path)
        self.events: dict[tuple[str, str], tuple[int, float, dict[str, tuple[float, float, int]] | None]] = {}
        self.videos: dict[str, list[str]] = {}
        for youtube_id, events in check.mapping(document, (), "an object {youtube_id: {event id: ...}}").items():
            events = check.mapping(events, (youtube_id,), "an object {event id: {event, timestamps, segments}}")
            self.videos[youtube_id] = list(events)
            for event_key, entry in events.items():
                self.events[youtube_id, event_key] = self._event(check, (youtube_id, event_key), entry)

    @staticmethod
    def _event(check: _Checker, keys: tuple[str, ...], entry):
        entry = check.mapping(entry, keys, "an object with 'event', 'timestamps' and 'segments'")
        for key in ("event", "timestamps", "segments"):
            if key not in entry:
                raise check.fail(keys, f"the key {key!r} (keys found: {sorted(entry)})", entry)
        if isinstance(entry["event"], bool) or not isinstance(entry["event"], int):
            raise check.fail((*keys, "event"), "an integer event class", entry["event"])
        (start, _end), *more = check.spans(entry["timestamps"], (*keys, "timestamps"), "[[start, end]] in seconds")
        if more:
            raise check.fail((*keys, "timestamps"), "one [start, end] pair", entry["timestamps"])
        if entry["segments"] is None:  # a men's event: event-level annotations only
            return entry["event"], start, None
        segments = {}
        raw = check.mapping(entry["segments"], (*keys, "segments"), "null or an object {segment id: ...}")
        for segment_key, segment in raw.items():
            where = (*keys, "segments", segment_key)
            segment = check.mapping(segment, where, "an object with 'stages' and 'timestamps'")
            stages = segment.get("stages")
            if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
                raise check.fail((*where, "stages"), "a number of stages >= 1", stages)
            spans = check.spans(segment.get("timestamps"), (*where, "timestamps"),
                                "a list of [start, end] pairs, one per stage")
            if len(spans) != stages:
                raise check.fail((*where, "timestamps"), f"{stages} [start, end] pairs ('stages' is {stages})",
                                 segment.get("timestamps"))
            segments[segment_key] = (spans[0][0], spans[-1][1], stages)
        return entry["event"], start, segments

    def element(self, youtube_id: str, event_key: str, segment_key: str, where: str) -> ElementSpan:
        """The span of one split-file id; `where` ('split file:line') names the line in errors."""
        clip = f"{youtube_id}_{event_key}_{segment_key}"
        if youtube_id not in self.videos:
            raise AnnotationError(f"{where}: clip id {clip!r} is not in {self.path}: it has no video "
                                  f"{youtube_id!r}{closest_hint(youtube_id, self.videos)}")
        if (youtube_id, event_key) not in self.events:
            raise AnnotationError(f"{where}: clip id {clip!r} is not in {self.path}: video {youtube_id!r} has no "
                                  f"event {event_key!r} (its events: {', '.join(self.videos[youtube_id])})")
        event, start, segments = self.events[youtube_id, event_key]
        if segments is None:
            raise AnnotationError(f"{where}: clip id {clip!r}: in {self.path}, event {event_key!r} of video "
                                  f"{youtube_id!r} has 'segments': null (a men's event, annotated at event level "
                                  f"only), so it has no element {segment_key!r}")
        if segment_key not in segments:
            raise AnnotationError(f"{where}: clip id {clip!r} is not in {self.path}: event {event_key!r} of video "
                                  f"{youtube_id!r} has no segment {segment_key!r} (its segments: "
                                  f"{', '.join(segments) or 'none'})")
        rel_start, rel_end, stages = segments[segment_key]
        # Sums of the decimals as written: 12.345 + 0.655 is exactly 13.0, not 12.999999999999998.
        begin, finish = exact_seconds(start) + exact_seconds(rel_start), exact_seconds(start) + exact_seconds(rel_end)
        return ElementSpan(youtube_id, event_key, segment_key, event, _as_float(begin), _as_float(finish), stages)


def _as_float(value: Fraction) -> float:
    """The float whose repr is the exact decimal (JSON times have at most a few decimals)."""
    return float(round(value, 9))


@lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int, size: int) -> FineGymAnnotations:
    text = read_text(path, "FineGym annotation JSON")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise AnnotationError(f"{path}:{err.lineno}: expected the FineGym annotation JSON, found invalid JSON "
                              f"({err.msg} at column {err.colno})") from None
    return FineGymAnnotations(path, document)


def load_finegym_annotations(path: str | os.PathLike) -> FineGymAnnotations:
    """Read and validate the JSON once (cached while the file is unchanged: every split reads the same file)."""
    path = os.path.abspath(os.fspath(path))
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise AnnotationError(f"{path}: FineGym annotation JSON not found (data.finegym_annotations)") from None
    return _load(path, stat.st_mtime_ns, stat.st_size)
