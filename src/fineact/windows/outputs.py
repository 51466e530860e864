"""The files a sliding-window run writes: timeline.json, segments.csv and timeline.png.

segments.csv  one row per segment (a run of one label at every level; all-background runs left out), columns
              start_s, end_s, start_frame, end_frame (exclusive), then per level <level> (class name, or
              "background"), <level>_index (-1 for background) and <level>_score (mean smoothed probability of
              the label over the segment; empty for background).
timeline.json the video (path, fps, frames), the windows (span, stride, starts), the method and its options, the
              segments as in the CSV, per-level segments, and per window the label and score of every level.
timeline.png  one band per level coloured by class (background left blank) with the longest segments' labels
              written on them and a legend of the top classes by time, above a strip of each level's smoothed
              top-label probability per window with the background threshold. With known truth (a generated
              routine) a thin strip along the top of each band shows the true segments in the same colours.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np

from fineact.windows.segments import BACKGROUND, Timeline

__all__ = ["plot_timeline", "segment_rows", "timeline_json", "write_segments_csv", "write_timeline_json"]


def segment_rows(timeline: Timeline) -> list[dict]:
    """The rows of segments.csv, as dicts in column order."""
    rows = []
    for seg in timeline.segments:
        if seg.is_background:
            continue
        row = {"start_s": round(seg.start_s, 4), "end_s": round(seg.end_s, 4), "start_frame": seg.start_frame,
               "end_frame": seg.end_frame}
        for level in timeline.levels:
            background = seg.labels[level] == BACKGROUND
            row[level] = seg.names[level]
            row[f"{level}_index"] = seg.labels[level]
            row[f"{level}_score"] = "" if background else round(seg.scores[level], 4)
        rows.append(row)
    return rows


def write_segments_csv(timeline: Timeline, path: str | Path) -> Path:
    path = Path(path)
    columns = ["start_s", "end_s", "start_frame", "end_frame"]
    for level in timeline.levels:
        columns += [level, f"{level}_index", f"{level}_score"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(segment_rows(timeline))
    return path


def timeline_json(timeline: Timeline, video: str, window: dict) -> dict:
    """A JSON-ready description of the timeline (no NaN: background scores are null)."""
    return {"video": str(video), "fps": timeline.fps, "num_frames": timeline.num_frames,
            "duration_s": round(timeline.duration_s, 4), "levels": timeline.levels, "window": window,
            "method": timeline.method(), "segments": segment_rows(timeline),
            "level_segments": {level: [_finite(asdict(s)) for s in segs]
                               for level, segs in timeline.level_segments.items()},
            "windows": {"centre_frame": [round(float(c), 2) for c in timeline.centres],
                        "labels": {lv: timeline.window_labels[lv].tolist() for lv in timeline.levels},
                        "scores": {lv: [None if math.isnan(v) else round(float(v), 4) for v in
                                        timeline.window_scores[lv]] for lv in timeline.levels}}}


def write_timeline_json(timeline: Timeline, path: str | Path, video: str, window: dict) -> Path:
    path = Path(path)
    path.write_text(json.dumps(timeline_json(timeline, video, window), indent=1) + "\n")
    return path


def _finite(row: dict) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


def plot_timeline(timeline: Timeline, path: str | Path, title: str = "", label_count: int = 12,
                  truth: dict[str, list[tuple[float, float, int]]] | None = None) -> Path:
    """The timeline PNG (see the module documentation). ``truth``: {level: [(start_s, end_s, class index)]}
    drawn as a thin strip along the top of each level's band, in the same colours (for known-truth videos)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    levels = timeline.levels
    fig, axes = plt.subplots(len(levels) + 1, 1, figsize=(14, 1.25 * len(levels) + 2.6), sharex=True,
                             gridspec_kw={"height_ratios": [1] * len(levels) + [1.6]})
    duration = timeline.duration_s
    for ax, level in zip(axes, levels):
        segments = [s for s in timeline.level_segments[level] if s.index != BACKGROUND]
        true = (truth or {}).get(level, [])
        colours = _class_colours(sorted({s.index for s in segments} | {t[2] for t in true}))
        height = 0.8 if truth else 1.0
        for seg in segments:
            ax.broken_barh([(seg.start_s, seg.end_s - seg.start_s)], (0, height), facecolors=colours[seg.index],
                           edgecolors="white", linewidth=0.4)
        for start, end, index in true:
            ax.broken_barh([(start, end - start)], (0.84, 0.16), facecolors=colours[index], edgecolors="black",
                           linewidth=0.4)
        for seg in sorted(segments, key=lambda s: s.end_s - s.start_s, reverse=True)[:label_count]:
            width = seg.end_s - seg.start_s
            if width > duration / 60:  # write only where the band is wide enough to hold some text
                ax.text(seg.start_s + width / 2, height / 2, _short(seg.name, width / duration), ha="center",
                        va="center", fontsize=7, clip_on=True)
        ax.set_yticks([])
        ax.set_ylim(0, 1)
        ax.set_ylabel(level + ("\n(top strip:\ntruth)" if truth else ""), rotation=0, ha="right", va="center",
                      fontsize=10 if not truth else 8.5)
        top = _top_classes(segments, 6)
        ax.legend(handles=[Patch(color=colours[i], label=name[:44]) for i, name in top], fontsize=6.5,
                  loc="center left", bbox_to_anchor=(1.005, 0.5), frameon=False)
    strip = axes[-1]
    seconds = timeline.centres / timeline.fps
    for level in levels:
        top = timeline.smoothed[level].max(1)
        strip.plot(seconds, top, lw=1, label=f"{level} top-1")
    threshold = timeline.options.threshold
    if not isinstance(threshold, dict) and timeline.options.background_class is None and threshold > 0:
        strip.axhline(threshold, color="grey", ls="--", lw=0.8, label="background threshold")
    strip.set_ylim(0, 1.02)
    strip.set_ylabel("probability", fontsize=9)
    strip.set_xlabel("time (s)")
    strip.set_xlim(0, duration)
    strip.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.005, 0.5), frameon=False)
    if title:
        axes[0].set_title(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _class_colours(indices: list[int]) -> dict[int, tuple]:
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return {index: cmap(index % 20) for index in indices}


def _top_classes(segments, count: int) -> list[tuple[int, str]]:
    seconds: dict[int, float] = {}
    names: dict[int, str] = {}
    for seg in segments:
        seconds[seg.index] = seconds.get(seg.index, 0.0) + seg.end_s - seg.start_s
        names[seg.index] = seg.name
    ranked = sorted(seconds, key=lambda i: seconds[i], reverse=True)[:count]
    return [(i, names[i]) for i in ranked]


def _short(name: str, fraction: float) -> str:
    """A class name cut to what a band of ``fraction`` of the figure's width can hold (~110 chars in all)."""
    room = max(3, int(fraction * 110))
    return name if len(name) <= room else name[:room - 1] + "."


def summary_counts(timeline: Timeline) -> dict:
    """Segments per level (background excluded) and the fraction of frames labelled."""
    return {level: {"segments": sum(s.index != BACKGROUND for s in segs),
                    "labelled_fraction": float(np.mean(timeline.frame_labels(level) != BACKGROUND))}
            for level, segs in timeline.level_segments.items()}
