"""`fineact check-data`: find every unreadable or too-short video of a config's splits before training.

Per sample: the frame count is probed, then the first and last frame of its window are decoded (a truncated
file loses its end; a corrupt header fails the probe). `full=True` decodes every frame of the window instead,
which also finds damage in the middle at the cost of a full decode. A video is "too short" when its window has
fewer frames than the model's sampling window (dense and multi-pathway clips; segment sampling needs one frame
per segment) and would therefore be looped or clamped.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from fineact.data.annotations import Sample
from fineact.data.video import probe_video, read_frames
from fineact.data.video_pool import read_window
from fineact.errors import VideoError
from fineact.models.base import ClipSpec


@dataclass
class Problem:
    split: str
    sample_id: str
    source: str
    problem: str
    kind: str  # "unreadable" | "too short"


def frames_needed(clip_specs: dict[str, ClipSpec]) -> int:
    return max(spec.num_frames if spec.frame_interval is None else spec.num_frames * spec.frame_interval
               for spec in clip_specs.values())


def check_sample(sample: Sample, needed: int, full: bool = False) -> tuple[str, str] | None:
    """(kind, problem) for a bad sample, None for a good one."""
    opts = {"filename_template": sample.filename_template, "start_index": sample.start_index}
    try:
        if sample.end_frame is not None:
            count = sample.end_frame - sample.start_frame
        else:
            count = probe_video(sample.source, **opts).num_frames - sample.start_frame
        if count <= 0:
            return "unreadable", f"no frames in the window starting at frame {sample.start_frame}"
        window = np.arange(sample.start_frame, sample.start_frame + count)
        indices = window if full else np.unique(window[[0, -1]])
        if sample.start_seconds is not None:  # a window of an untrimmed video: through the pool of open videos
            read_window(sample.source, indices, decode_threads=1)
        else:
            read_frames(sample.source, indices, decode_threads=1, **opts)
    except VideoError as error:
        return "unreadable", str(error)
    if count < needed:
        return "too short", f"{count} frames, the model's sampling window needs {needed}"
    return None


def check_samples(split: str, samples: list[Sample], needed: int, full: bool = False,
                  workers: int = 2) -> list[Problem]:
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # PyAV releases the GIL while decoding
        verdicts = list(pool.map(lambda s: check_sample(s, needed, full), samples))
    return [Problem(split, s.sample_id or s.source, s.source, problem, kind)
            for s, verdict in zip(samples, verdicts) if verdict is not None for kind, problem in [verdict]]


def format_problems(problems: list[Problem], totals: dict[str, int]) -> str:
    lines = []
    for split, total in totals.items():
        bad = [p for p in problems if p.split == split]
        unreadable = sum(p.kind == "unreadable" for p in bad)
        lines.append(f"{split}: {total} samples, {unreadable} unreadable, {len(bad) - unreadable} too short")
    for p in problems:
        lines.append(f"  [{p.split}] {p.kind}: {p.source}: {p.problem}")
    return "\n".join(lines)
