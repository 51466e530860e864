"""`--render annotated.mp4`: the video with the current label of every level and its probability on each frame.

One more sequential decode of the source (PyAV), a caption band drawn under each frame with Pillow, H.264 out
(PyAV). Small videos are enlarged (nearest neighbour) to at least 480 pixels wide so the text stays readable.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fineact.windows.segments import BACKGROUND, Timeline
from fineact.windows.stream import decoded_frames

__all__ = ["render_annotated"]

MIN_WIDTH = 480
LINE_HEIGHT = 16


def render_annotated(source: str | os.PathLike, timeline: Timeline, path: str | Path, *,
                     decode_threads: int = 0, progress: bool = False) -> Path:
    """Write ``path`` (.mp4): every frame of ``source`` with "level: label  p=0.87" lines under it."""
    path = Path(path)
    labels = {level: timeline.frame_labels(level) for level in timeline.levels}
    scores = {level: _frame_scores(timeline, level) for level in timeline.levels}
    names = {level: {s.index: s.name for s in segs} for level, segs in timeline.level_segments.items()}
    font = ImageFont.load_default()
    wanted = np.ones(timeline.num_frames, bool)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=timeline.num_frames, unit="frame", desc=f"render {path.name}", mininterval=1.0)
    fps = Fraction(timeline.fps).limit_denominator(1001)
    with av.open(os.fspath(path), "w") as container:
        stream = None
        for number, rgb in decoded_frames(source, wanted, decode_threads=decode_threads):
            if rgb is None:
                continue
            lines = [_caption(level, labels[level][number], scores[level][number], names[level])
                     for level in timeline.levels]
            image = _annotate(rgb, lines, font)
            if stream is None:
                stream = container.add_stream("libx264", rate=fps)
                stream.width, stream.height, stream.pix_fmt = image.width, image.height, "yuv420p"
                stream.options = {"crf": "23", "preset": "veryfast"}
            frame = av.VideoFrame.from_image(image)
            container.mux(stream.encode(frame))
            if bar is not None:
                bar.update(1)
        if stream is not None:
            container.mux(stream.encode(None))
    if bar is not None:
        bar.close()
    return path


def _frame_scores(timeline: Timeline, level: str) -> np.ndarray:
    scores = np.full(timeline.num_frames, np.nan, np.float32)
    for seg in timeline.level_segments[level]:
        scores[seg.start_frame:seg.end_frame] = seg.score
    return scores


def _caption(level: str, label: int, score: float, names: dict[int, str]) -> str:
    if label == BACKGROUND:
        return f"{level}: -"
    probability = "" if math.isnan(score) else f"  p={score:.2f}"
    return f"{level}: {names.get(int(label), str(label))}{probability}"


def _annotate(rgb: np.ndarray, lines: list[str], font) -> Image.Image:
    image = Image.fromarray(rgb)
    scale = max(1, math.ceil(MIN_WIDTH / image.width))
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    band = LINE_HEIGHT * len(lines) + 4
    width, height = image.width + image.width % 2, image.height + band
    height += height % 2  # H.264 in yuv420p wants even sizes
    canvas = Image.new("RGB", (width, height), (16, 16, 16))
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for k, line in enumerate(lines):
        draw.text((4, image.height + 2 + k * LINE_HEIGHT), line, fill=(255, 255, 255), font=font)
    return canvas
