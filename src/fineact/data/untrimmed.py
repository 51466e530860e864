"""Untrimmed FineGym videos, checked once and up front: which are missing or unreadable, what that takes away
from each split, and each element's frame window.

`UntrimmedSplits.scan({split: samples})` probes every distinct video of all splits once (before training
starts, never mid-epoch): a video is "present" (its frame rate and frame count known, its first and last frame
decoded), "missing" (no file: YouTube videos that are gone) or "unreadable" (a file that cannot be opened or
decoded). Samples of present videos get their frame window from their seconds (`finegym_json.frame_span`, the
video's own rate); samples of missing or unreadable videos are left out and counted in the table
(`MissingVideos`): each such video with how many samples of each split it takes away, and the totals. The
evaluation results record the coverage (`coverage(split)`), so that a number says what it was measured on.

An element that ends after its video does is an AnnotationError naming the sample (split file:line, clip id),
the video and its length: a wrong JSON or a different upload of the video, never something to clamp silently.

How missing videos count against `data.max_bad_fraction`: the samples that missing and unreadable videos take
away from the training split, as a share of that split's samples, are checked against it up front
(`raise_if_too_many_missing`). FineGym as downloadable today lacks some videos (REFERENCE.md section 6), so a
real download needs a larger limit than the default 0.01; the error says by how much.
"""

from __future__ import annotations

import dataclasses
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from fineact.data.annotations import Sample
from fineact.data.finegym_json import frame_span
from fineact.data.video import probe_video, read_frames
from fineact.data.video_pool import proves_constant_rate, warn_not_seekable
from fineact.errors import AnnotationError, FineactError, VideoError

__all__ = ["MissingVideos", "UntrimmedSplits", "VideoState", "probe_untrimmed"]

MISSING_VIDEOS_FILE = "missing_videos.json"


@dataclass(frozen=True)
class VideoState:
    path: str
    status: str                  # "present" | "missing" | "unreadable"
    reason: str = ""
    fps: Fraction | None = None
    num_frames: int = 0
    seekable: bool = True        # the container proves a constant frame rate (else: sequential decoding)

    @property
    def youtube_id(self) -> str:
        return Path(self.path).stem

    @property
    def duration(self) -> float:
        return self.num_frames / float(self.fps) if self.fps else 0.0


def probe_untrimmed(path: str) -> VideoState:
    """The state of one untrimmed video: frame rate and count, readability of its first and last frame."""
    if not os.path.isfile(path):
        return VideoState(path, "missing", "no such file")
    try:
        info = probe_video(path, kind="video")
        constant, rate = proves_constant_rate(path)
        if not rate:
            raise VideoError(f"{path}: no frame rate in the container, so seconds cannot become frames")
        if constant:  # a cheap check with seeking; without it, decoding to the last frame would read it all
            read_frames(path, [0, info.num_frames - 1], kind="video", decode_threads=1)
    except VideoError as error:
        return VideoState(path, "unreadable", str(error))
    return VideoState(path, "present", fps=rate, num_frames=info.num_frames, seekable=constant)


def _window(sample: Sample, state: VideoState) -> Sample:
    first, end = frame_span(sample.start_seconds, sample.end_seconds, state.fps)
    seconds = f"{sample.start_seconds:.3f}-{sample.end_seconds:.3f} s"
    if end > state.num_frames:
        raise AnnotationError(f"{sample.where}: sample {sample.sample_id!r} spans {seconds} (frames {first}-"
                              f"{end - 1}), past the end of its video {state.path}, which is {state.duration:.3f} s "
                              f"long ({state.num_frames} frames at {float(state.fps):g} fps); the annotation JSON "
                              f"and the video do not match (another upload of the video?)")
    if end <= first:
        raise AnnotationError(f"{sample.where}: sample {sample.sample_id!r} spans {seconds}, less than one frame "
                              f"at {float(state.fps):g} fps of {state.path}")
    return dataclasses.replace(sample, start_frame=first, end_frame=end, num_frames=end - first)


@dataclass
class MissingVideos:
    """Each missing or unreadable video with the samples it takes away per split, and the totals per split."""

    rows: list[dict] = field(default_factory=list)    # {youtube_id, path, status, reason, samples: {split: n}}
    totals: dict[str, dict[str, int]] = field(default_factory=dict)  # {split: {samples, present, left_out}}

    def as_dict(self) -> dict:
        return {"videos": self.rows, "totals": self.totals}

    def write(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    def format(self) -> str:
        splits = list(self.totals)
        lines = [f"{len(self.rows)} untrimmed video(s) missing or unreadable"
                 + (":" if self.rows else "")]
        if self.rows:
            width = max(len(r["youtube_id"]) for r in self.rows)
            lines.append(f"  {'video':<{width}}  {'status':<10}  " + "  ".join(f"{s:>7}" for s in splits)
                         + "  reason")
            for row in self.rows:
                counts = "  ".join(f"{row['samples'].get(s, 0):>7}" for s in splits)
                lines.append(f"  {row['youtube_id']:<{width}}  {row['status']:<10}  {counts}  {row['reason']}")
        for split, total in self.totals.items():
            lines.append(f"{split}: {total['present']} of {total['samples']} samples present, "
                         f"{total['left_out']} left out")
        return "\n".join(lines)


class UntrimmedSplits:
    """Samples of every split with their frame windows, once each video has been probed (see module doc)."""

    def __init__(self, samples: dict[str, list[Sample]], states: dict[str, VideoState]):
        self.states = states
        self.all_samples = samples
        self._present = {split: [_window(s, states[s.source]) for s in items if states[s.source].status == "present"]
                         for split, items in samples.items()}
        self.table = self._table()

    @classmethod
    def scan(cls, samples: dict[str, list[Sample]], workers: int = 4) -> "UntrimmedSplits":
        sources = sorted({s.source for items in samples.values() for s in items})
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # PyAV releases the GIL while decoding
            states = dict(zip(sources, pool.map(probe_untrimmed, sources)))
        for state in states.values():
            if state.status == "present" and not state.seekable:
                warn_not_seekable(state.path)
        return cls(samples, states)

    def samples(self, split: str) -> list[Sample]:
        """The split's samples whose video is present, with start_frame / end_frame set."""
        return self._present[split]

    def _table(self) -> MissingVideos:
        table = MissingVideos()
        for path, state in sorted(self.states.items(), key=lambda item: Path(item[0]).stem):
            if state.status != "present":
                counts = {split: sum(s.source == path for s in items) for split, items in self.all_samples.items()}
                table.rows.append({"youtube_id": state.youtube_id, "path": path, "status": state.status,
                                   "reason": state.reason, "samples": counts})
        for split, items in self.all_samples.items():
            present = len(self._present[split])
            table.totals[split] = {"samples": len(items), "present": present, "left_out": len(items) - present}
        return table

    def coverage(self, split: str) -> dict:
        """For a results file: samples evaluated out of the split's total, and the videos left out."""
        missing = sorted({self.states[s.source].youtube_id for s in self.all_samples[split]
                          if self.states[s.source].status != "present"})
        total = self.table.totals[split]
        return {"num_videos": total["present"], "split_total": total["samples"], "left_out": total["left_out"],
                "missing_videos": missing}

    def raise_if_too_many_missing(self, split: str, max_bad_fraction: float) -> None:
        total = self.table.totals.get(split)
        if not total or not total["left_out"]:
            return
        share = total["left_out"] / total["samples"]
        if share > max_bad_fraction:
            raise FineactError(f"missing or unreadable untrimmed videos take away {total['left_out']} of "
                               f"{total['samples']} samples ({100 * share:.1f}%) of data.{split}, more than "
                               f"data.max_bad_fraction={max_bad_fraction}. To train on what is present, set "
                               f"data.max_bad_fraction={np.ceil(share * 1000) / 1000:g} or more.\n"
                               f"{self.table.format()}")
