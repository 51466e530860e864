"""Untrimmed FineGym look-alikes: long videos with events and elements at known float timestamps, the official
annotation JSON and Gym99-style split files, for tests and for sliding-window prediction.

    truth = write_untrimmed_dataset(tmp_path, num_videos=3, duration=40.0)
    truth.annotation_json        # {youtube_id: {"E_...": {"event", "timestamps", "segments"}}} (official schema)
    truth.split_files["train"]   # `<youtube_id>_E_<6d>_<6d>_A_<4d>_<4d> <Clabel>` lines
    truth.videos[0].events[0].elements[0].start   # absolute seconds in the untrimmed video

What a video shows, frame by frame (frame i is shown from i / fps on; spans map to frames with
`fineact.data.finegym_json.frame_span`, the rule the readers use):
- inside an element: the demo's clip of that element (`fineact.demo.scenes.render_clip`, drawn over exactly the
  element's frames), so a model trained on the demo clips sees the same content;
- inside an event, between its elements: the event's empty arena (`render_scene`), the same for the whole event;
- outside every event, and inside men's events (which have `segments: null`): a dark "studio" frame with grain.

Event classes in the JSON follow FineGym: 2 FX, 3 BB, 4 UB (women's events, with element segments); men's events
get class 5 and `segments: null`. Elements of set 42 (flight between the bars: twist, flight, twist) have 3
stages like a vault, so the element spans stages[0][0] .. stages[-1][1]; the others have one stage. Timestamps
are drawn in milliseconds (the JSON's precision) and are deliberately not aligned with frames.

`missing` videos are listed in the JSON and the split files but not written (YouTube videos that are gone).
Everything depends only on `seed`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from fineact.data.finegym_json import frame_span
from fineact.demo.classes import ELEMENTS, EVENTS
from fineact.demo.dataset import category_lines, set_lines
from fineact.demo.scenes import render_clip, render_scene
from fineact.errors import ConfigError

__all__ = ["ElementTruth", "EventTruth", "UntrimmedDataset", "VideoTruth", "write_untrimmed_dataset",
           "encode_video"]

MEN_EVENT = 5          # FineGym's men's events carry no element segments
THREE_STAGE_SET = 42   # twist in hang, flight, twist in hang: written with 3 stages, like a vault
FILE_PREFIX = "synth16"
# A keyframe every 32 frames (about one per second at 25-30 fps, as YouTube's encodes have), 2 B-frames,
# no scene cuts (the arena changes at every element, which would otherwise add keyframes at random places).
X264_OPTIONS = {"crf": "14", "preset": "veryfast",
                "x264-params": "keyint=32:min-keyint=32:scenecut=0:bframes=2:threads=1:mbtree=0"}


# ----------------------------------------------------------------------------------------------------------
# Ground truth
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ElementTruth:
    """One element (a FineGym sub-action): where it is, in seconds and in frames of its video."""

    clip_id: str                 # the split files' id: <youtube_id>_<event key>_<segment key>
    segment_key: str             # "A_0012_0015" (truncated seconds relative to the event start)
    label: int                   # Clabel (fineact.demo.classes.ELEMENTS)
    split: str                   # which split file lists it
    start: float                 # absolute seconds in the untrimmed video
    end: float
    stages: tuple[tuple[float, float], ...]  # seconds relative to the event start, as in the JSON
    first_frame: int             # frame_span(start, end, fps)
    end_frame: int               # exclusive

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.first_frame


@dataclass(frozen=True)
class EventTruth:
    event_key: str               # "E_000123_000156" (truncated absolute seconds)
    event: int                   # event class in the JSON (2 FX, 3 BB, 4 UB; 5 = a men's event)
    start: float                 # absolute seconds
    end: float
    elements: tuple[ElementTruth, ...]  # () for men's events (`segments: null`)


@dataclass(frozen=True)
class VideoTruth:
    youtube_id: str
    path: Path                   # where the video is (or would be, when missing)
    present: bool                # False: listed in the JSON and split files, file not written
    fps: int
    num_frames: int
    size: int                    # frames are size x size
    events: tuple[EventTruth, ...]

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    @property
    def elements(self) -> list[ElementTruth]:
        return [element for event in self.events for element in event.elements]


@dataclass(frozen=True)
class UntrimmedDataset:
    """The files written and the ground truth of every video."""

    root: Path
    videos_dir: Path
    annotation_json: Path
    split_files: dict[str, Path]
    categories_file: Path
    set_categories_file: Path
    videos: tuple[VideoTruth, ...]
    params: dict = field(default_factory=dict)

    def elements(self, split: str | None = None, present_only: bool = False) -> list[ElementTruth]:
        """Elements of `split` (all when None), in split-file order; `present_only` drops missing videos."""
        chosen = [e for v in self.videos if v.present or not present_only for e in v.elements
                  if split is None or e.split == split]
        return sorted(chosen, key=lambda e: e.clip_id)

    def video(self, youtube_id: str) -> VideoTruth:
        return next(v for v in self.videos if v.youtube_id == youtube_id)

    @property
    def missing(self) -> list[str]:
        return [v.youtube_id for v in self.videos if not v.present]


# ----------------------------------------------------------------------------------------------------------
# Planning the timeline (seconds, then frames)
# ----------------------------------------------------------------------------------------------------------

def _ms(rng: np.random.Generator, low: float, high: float) -> float:
    """A duration in [low, high) seconds, whole milliseconds (the JSON's precision)."""
    return round(float(rng.uniform(low, high)), 3)


def _stages(rng: np.random.Generator, start: float, end: float, three: bool) -> tuple[tuple[float, float], ...]:
    if not three:
        return ((start, end),)
    third = (end - start) / 3
    cut1, cut2 = round(start + third, 3), round(start + 2 * third, 3)
    # Vault stages in the official JSON touch or leave small gaps; a 40 ms gap keeps both cases honest.
    return ((start, cut1), (round(cut1 + 0.04, 3), cut2), (round(cut2 + 0.04, 3), end))


def _plan_event(rng: np.random.Generator, youtube_id: str, event_class: int, start: float, element_seconds,
                fps: int, split: str, label_cursor: dict[int, int]) -> EventTruth:
    """Elements of one event, relative times in ms, stages for set 42, labels round-robin within the event."""
    offset, elements = _ms(rng, 0.6, 1.8), []
    count = int(rng.integers(2, 5)) if event_class != MEN_EVENT else 0
    labels = [e.clabel for e in ELEMENTS if e.event_id == event_class]
    plans = []
    for _ in range(count):
        label = labels[label_cursor.get(event_class, 0) % len(labels)]
        label_cursor[event_class] = label_cursor.get(event_class, 0) + 1
        length = _ms(rng, *element_seconds)
        plans.append((label, round(offset, 3), round(offset + length, 3)))
        offset += length + _ms(rng, 0.5, 2.0)
    length = offset + _ms(rng, 0.4, 1.5) if count else _ms(rng, 4.0, 8.0)
    end = round(start + length, 3)
    key = f"E_{int(start):06d}_{int(end):06d}"
    for label, rel_start, rel_end in plans:
        stages = _stages(rng, rel_start, rel_end, ELEMENTS[label].set_id == THREE_STAGE_SET)
        segment_key = f"A_{int(stages[0][0]):04d}_{int(stages[-1][1]):04d}"
        abs_start, abs_end = round(start + stages[0][0], 3), round(start + stages[-1][1], 3)
        first, stop = frame_span(abs_start, abs_end, fps)
        elements.append(ElementTruth(f"{youtube_id}_{key}_{segment_key}", segment_key, label, split, abs_start,
                                     abs_end, stages, first, stop))
    return EventTruth(key, event_class, start, end, tuple(elements))


def _plan_video(rng: np.random.Generator, youtube_id: str, duration: float, fps: int, split: str,
                men_events: bool, element_seconds, label_cursor: dict[int, int]) -> tuple[list[EventTruth], int]:
    women = sorted(EVENTS)
    events, clock, index = [], _ms(rng, 1.0, 3.0), 0
    while True:
        event_class = MEN_EVENT if men_events and index % 4 == 3 else women[int(rng.integers(len(women)))]
        event = _plan_event(rng, youtube_id, event_class, clock, element_seconds, fps, split, label_cursor)
        if events and event.end + 1.0 > duration:
            break
        events.append(event)
        clock, index = round(event.end + _ms(rng, 1.5, 4.0), 3), index + 1
    total_seconds = max(duration, events[-1].end + 1.0)
    return events, int(round(total_seconds * fps))


# ----------------------------------------------------------------------------------------------------------
# Drawing and encoding
# ----------------------------------------------------------------------------------------------------------

def _studio(rng: np.random.Generator, size: int) -> np.ndarray:
    base = np.full((size, size, 3), 38, np.float32) + rng.normal(0, 3, (size, size, 1)).astype(np.float32)
    return (np.clip(base, 0, 255) + 0.5).astype(np.uint8)


def _video_frames(video: VideoTruth, seed: Sequence[int], chunk: int = 256) -> Iterable[np.ndarray]:
    """Chunks (n, S, S, 3) of the video's frames in order, each element drawn over exactly its frames."""
    size, rng = video.size, np.random.default_rng(np.random.SeedSequence([*seed, 0x57D]))
    studio = _studio(rng, size)
    # What frame i shows: -1 studio, else an index into `layers`
    owner = np.full(video.num_frames, -1, np.int64)
    layers: list[tuple[int, np.ndarray]] = []  # (first frame, frames) or (-1, one arena frame)
    for e_index, event in enumerate(video.events):
        first, stop = frame_span(event.start, event.end, video.fps)
        if event.event != MEN_EVENT:
            layers.append((-1, render_scene(event.event, [*seed, e_index, 0xA7E], size=size)[None]))
            owner[first:stop] = len(layers) - 1
        for a_index, element in enumerate(event.elements):
            clip = render_clip(element.label, [*seed, e_index, a_index], size=size, num_frames=element.num_frames)
            layers.append((element.first_frame, clip))
            owner[element.first_frame:element.end_frame] = len(layers) - 1
    for begin in range(0, video.num_frames, chunk):
        frames = np.empty((min(chunk, video.num_frames - begin), size, size, 3), np.uint8)
        for offset in range(len(frames)):
            i = begin + offset
            layer = owner[i]
            if layer < 0:
                frames[offset] = studio
            else:
                start, pixels = layers[layer]
                frames[offset] = pixels[0] if start < 0 else pixels[i - start]
        yield frames


def encode_video(chunks: Iterable[np.ndarray], path: Path | str, fps: int | Fraction,
                 options: dict[str, str] | None = None) -> int:
    """Write chunks of (n, H, W, 3) uint8 RGB frames as H.264 yuv420p (container from the file extension:
    mp4, mkv, ...), one chunk in memory at a time; returns the number of frames written."""
    import av

    written = 0
    with av.open(os.fspath(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.options = dict(X264_OPTIONS if options is None else options)
        for frames in chunks:
            if written == 0:
                stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            for rgb in frames:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                frame.pts = written
                container.mux(stream.encode(frame))
                written += 1
        container.mux(stream.encode(None))
    return written


# ----------------------------------------------------------------------------------------------------------
# Files in the official formats
# ----------------------------------------------------------------------------------------------------------

def annotation_json(videos: Sequence[VideoTruth]) -> dict:
    """The official schema: {youtube_id: {event key: {"event", "timestamps", "segments"}}}."""
    document: dict = {}
    for video in videos:
        events = {}
        for event in video.events:
            segments = None if event.event == MEN_EVENT else {
                e.segment_key: {"stages": len(e.stages), "timestamps": [list(s) for s in e.stages]}
                for e in event.elements}
            events[event.event_key] = {"event": event.event, "timestamps": [[event.start, event.end]],
                                       "segments": segments}
        document[video.youtube_id] = events
    return document


def _youtube_id(rng: np.random.Generator, used: set[str]) -> str:
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"))
    while True:  # 11 characters like YouTube's; the first alphanumeric (a leading '-' reads as an option)
        vid = "".join(alphabet[np.concatenate([rng.integers(0, 62, 1), rng.integers(0, 64, 10)])])
        if vid not in used:
            used.add(vid)
            return vid


def _cycle(value, index: int):
    return value[index % len(value)] if isinstance(value, (list, tuple)) else value


def _check(name: str, value, ok: bool, expected: str) -> None:
    if not ok:
        raise ConfigError(f"untrimmed dataset parameter {name}: expected {expected}, found {value!r}")


def write_untrimmed_dataset(root: Path | str, *, num_videos: int = 3, duration: float = 40.0,
                            fps: int | Sequence[int] = 25, size: int = 64, seed: int = 0,
                            splits: Sequence[str] = ("train", "val"), missing: int = 0,
                            extension: str | Sequence[str] = "mp4", men_events: bool = True,
                            element_seconds: tuple[float, float] = (2.2, 2.9),
                            write_videos: bool = True) -> UntrimmedDataset:
    """Write `num_videos` untrimmed videos of about `duration` seconds (more when one event needs it) under
    `root/videos/<youtube_id>.<extension>`, the annotation JSON, one split file per name in `splits` and the
    category files; return the ground truth.

    fps / extension: one value, or one per video (cycled). Video i's elements go to split splits[i % len]. The
    last `missing` videos are planned, annotated and listed but not written. Elements last `element_seconds`
    (the demo's clips are 64 frames at 25 fps = 2.56 s). `write_videos=False` writes only the text files.
    """
    _check("num_videos", num_videos, isinstance(num_videos, int) and num_videos >= 1, "an integer >= 1")
    _check("size", size, isinstance(size, int) and size >= 16 and size % 2 == 0, "an even number of pixels >= 16")
    _check("missing", missing, isinstance(missing, int) and 0 <= missing < num_videos,
           f"0 <= missing < num_videos ({num_videos})")
    _check("duration", duration, duration >= 10, "at least 10 seconds")
    _check("splits", splits, len(splits) >= 1 and all(isinstance(s, str) and s for s in splits), "split names")
    root = Path(root).absolute()
    videos_dir = root / "videos"
    videos_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x0F1]))
    used: set[str] = set()
    label_cursor: dict[int, int] = {}
    videos = []
    for index in range(num_videos):
        video_fps, ext = int(_cycle(fps, index)), str(_cycle(extension, index)).lstrip(".")
        _check("fps", video_fps, video_fps >= 1, "frame rates >= 1")
        youtube_id = _youtube_id(rng, used)
        events, num_frames = _plan_video(rng, youtube_id, float(duration), video_fps, splits[index % len(splits)],
                                         men_events, element_seconds, label_cursor)
        present = index < num_videos - missing
        videos.append(VideoTruth(youtube_id, videos_dir / f"{youtube_id}.{ext}", present, video_fps, num_frames,
                                 size, tuple(events)))
    if write_videos:
        for index, video in enumerate(videos):
            if video.present:
                encode_video(_video_frames(video, [seed, index]), video.path, video.fps)
    json_path = root / "finegym_annotation_info_v1.1.json"
    json_path.write_text(json.dumps(annotation_json(videos), indent=1) + "\n", encoding="utf-8")
    split_files = {}
    for split in dict.fromkeys(splits):
        elements = sorted((e for v in videos for e in v.elements if e.split == split), key=lambda e: e.clip_id)
        split_files[split] = root / f"{FILE_PREFIX}_{split}_element_v1.1.txt"
        split_files[split].write_text("".join(f"{e.clip_id} {e.label}\n" for e in elements), encoding="utf-8")
    categories, set_categories = root / f"{FILE_PREFIX}_categories.txt", root / "set_categories.txt"
    categories.write_text("".join(line + "\n" for line in category_lines()), encoding="utf-8")
    set_categories.write_text("".join(line + "\n" for line in set_lines()), encoding="utf-8")
    params = {"num_videos": num_videos, "duration": duration, "fps": fps, "size": size, "seed": seed,
              "splits": list(splits), "missing": missing, "extension": extension, "men_events": men_events,
              "element_seconds": list(element_seconds)}
    return UntrimmedDataset(root, videos_dir, json_path, split_files, categories, set_categories, tuple(videos),
                            params)
