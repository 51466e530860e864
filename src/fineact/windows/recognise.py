"""A whole video -> sliding windows -> per-window scores -> segments -> files (`Predictor.predict_video`).

    result = recognise_video(predictor, "routine.mp4", stride=8)
    result.timeline.segments                 # labelled segments, consistent across levels
    result.write("runs/routine")             # timeline.json, segments.csv, timeline.png (+ annotated.mp4)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from fineact.data.video import probe_video
from fineact.errors import ConfigError
from fineact.windows.outputs import plot_timeline, write_segments_csv, write_timeline_json
from fineact.windows.plan import is_segment_model, plan_windows
from fineact.windows.scoring import WindowScores, score_windows
from fineact.windows.segments import SegmentOptions, Timeline, decode_segments

__all__ = ["DEFAULT_STRIDE", "VideoTimeline", "recognise_video", "window_length"]

DEFAULT_STRIDE = 8  # frames between window starts: 1/8 of a 64-frame clip, ~0.3 s at 25 fps


@dataclass
class VideoTimeline:
    """The windows, their scores and the decoded timeline of one video."""

    source: str
    scores: WindowScores
    timeline: Timeline

    @property
    def probabilities(self) -> dict[str, np.ndarray]:
        """{level: (num_windows, num_classes)} raw per-window probabilities (before smoothing)."""
        return self.scores.probabilities

    def window_info(self) -> dict:
        plan = self.scores.plan
        return {"span_frames": plan.span, "stride_frames": plan.stride, "count": plan.num_windows,
                "span_s": round(plan.span / plan.fps, 4), "stride_s": round(plan.stride / plan.fps, 4)}

    def write(self, out_dir: str | os.PathLike, render: str | os.PathLike | None = None,
              progress: bool = False) -> dict[str, Path]:
        """timeline.json, segments.csv, timeline.png and window_scores.safetensors in ``out_dir``; with
        ``render`` (a file name, relative to out_dir) also the annotated video."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files = {"timeline": write_timeline_json(self.timeline, out / "timeline.json", self.source,
                                                 self.window_info()),
                 "segments": write_segments_csv(self.timeline, out / "segments.csv"),
                 "plot": plot_timeline(self.timeline, out / "timeline.png", title=Path(self.source).name),
                 "scores": out / "window_scores.safetensors"}
        save_file({f"probabilities/{level}": p for level, p in self.probabilities.items()}
                  | {"window_start": self.scores.plan.starts}, str(files["scores"]))
        if render is not None:
            from fineact.windows.render import render_annotated

            files["render"] = render_annotated(self.source, self.timeline, out / render, progress=progress)
        return files


def window_length(clip_specs, window_s: float | None, fps: float | None, training_clips: dict | None) -> int | None:
    """Window length in frames for a segment model (None for dense models, whose clip fixes it).

    ``window_s`` if given, else the recorded typical training clip duration (seconds at the video's fps, or the
    recorded frame count when either frame rate is unknown)."""
    if not is_segment_model(clip_specs):
        if window_s is not None:
            raise ConfigError("--window applies only to segment models (TSN/TSM); this model's clip (frames x "
                              "interval) fixes its window")
        return None
    if window_s is not None:
        if not window_s > 0:
            raise ConfigError(f"--window must be a positive number of seconds, got {window_s!r}")
        if not fps:
            raise ConfigError("--window SECONDS needs the video's frame rate; frame folders have none")
        return max(1, round(window_s * fps))
    recorded = training_clips or {}
    if recorded.get("seconds") and fps:
        return max(1, round(recorded["seconds"] * fps))
    if recorded.get("frames"):
        return max(1, round(recorded["frames"]))
    raise ConfigError("a segment model (TSN/TSM) needs a window length: give --window SECONDS; this checkpoint's "
                      "export JSON records no typical training clip duration (exports written by `fineact train` "
                      "record it)")


def recognise_video(predictor, source: str | os.PathLike, *, stride: int = DEFAULT_STRIDE,
                    window_s: float | None = None, batch_size: int = 16, options: SegmentOptions | None = None,
                    progress: bool = False, training_clips: dict | None = None) -> VideoTimeline:
    """Slide ``predictor``'s clip window over ``source``; decode segments (``fineact.windows.segments``)."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch size must be a positive number of windows, got {batch_size!r}")
    module = predictor.module
    data = module.cfg.data
    info = probe_video(source, filename_template=data.filename_template, start_index=data.start_index)
    specs = module.model.clip_specs
    length = window_length(specs, window_s, info.fps, training_clips)
    fps = info.fps or (training_clips or {}).get("fps") or 25.0  # frame folders: seconds at the training fps
    plan = plan_windows(specs, info.num_frames, fps, stride, length)
    scores = score_windows(predictor, source, plan, batch_size=batch_size, progress=progress)
    levels = module.levels.select(module.trained_levels)
    timeline = decode_segments(scores.probabilities, plan.centres, plan.num_frames, fps, levels, options,
                               weights=getattr(module, "loss_weights", None))
    return VideoTimeline(str(source), scores, timeline)
