"""The typical duration of the clips a model was trained on, recorded in its export's JSON.

Segment models (TSN/TSM) spread their frames over a whole clip, so sliding them over a long video needs a window
length; the natural default is the length of the clips they learnt from. `fineact train` measures it on the
training split (``typical_clip_duration``) and writes it to ``model.json`` as

    "training_clips": {"seconds": 2.56, "frames": 64, "fps": 25.0, "clips_measured": 64, "clips_total": 640}

(medians over up to ``MAX_PROBED`` clips spread evenly over the split; "seconds" and "fps" are null for frame
folders, which have no frame rate). ``recorded_training_clips`` reads it back for a checkpoint or an export.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from pathlib import Path

from fineact.data.video import probe_video
from fineact.errors import FineactError

__all__ = ["MAX_PROBED", "recorded_training_clips", "typical_clip_duration"]

MAX_PROBED = 64  # probing opens each file: a few dozen clips give a stable median at a negligible cost
FIELD = "training_clips"


def typical_clip_duration(samples: Sequence, max_probed: int = MAX_PROBED) -> dict | None:
    """Median frames, fps and seconds of up to ``max_probed`` training samples (None if none can be probed)."""
    if not samples:
        return None
    step = max(1, len(samples) // max_probed)
    frames, rates = [], []
    for sample in (samples[i] for i in range(0, len(samples), step)[:max_probed]):  # random access: no full copy
        if not isinstance(sample.source, (str, os.PathLike)):
            continue  # a pack's record (encoded bytes, no file to probe): packs record no clip duration yet
        try:
            info = probe_video(sample.source, filename_template=sample.filename_template,
                               start_index=sample.start_index)
        except FineactError:
            continue  # an unreadable clip is reported by training itself; it just does not count here
        count = sample.num_frames
        if count is None and sample.end_frame is not None:
            count = sample.end_frame - sample.start_frame
        frames.append(count if count is not None else info.num_frames - sample.start_frame)
        if info.fps:
            rates.append(info.fps)
    if not frames:
        return None
    median_frames = statistics.median(frames)
    seconds = statistics.median([f / r for f, r in zip(frames, rates)]) if len(rates) == len(frames) else None
    return {"seconds": None if seconds is None else round(seconds, 4), "frames": median_frames,
            "fps": statistics.median(rates) if rates else None, "clips_measured": len(frames),
            "clips_total": len(samples)}


def recorded_training_clips(checkpoint: str | Path) -> dict | None:
    """The ``training_clips`` an export's JSON (or, for a .ckpt, its run's model.json) records, else None."""
    from fineact.interop.sidecar import is_sidecar, read_sidecar, sidecar_path

    path = Path(checkpoint)
    if path.suffix == ".ckpt":
        candidates = [path.parent.parent / "model.json", path.parent / "model.json"]  # <run>/checkpoints/x.ckpt
    else:
        candidates = [sidecar_path(path.with_suffix(".safetensors"))]
    for candidate in candidates:
        if candidate.is_file() and is_sidecar(candidate):
            value = read_sidecar(candidate).get(FIELD)
            if isinstance(value, dict):
                return value
    return None
