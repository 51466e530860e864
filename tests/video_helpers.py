"""Tiny real videos for tests: H.264 with B-frames, a fixed GOP and frames that all differ.

``make_h264_video`` returns the frames as a plain full sequential PyAV decode yields them (the ground truth that
``fineact.data.video`` must reproduce exactly), decoded independently of fineact.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def moving_pattern(index: int, width: int, height: int) -> np.ndarray:
    """An RGB frame that moves with ``index``: drifting colour ramps plus a bright square walking the frame."""
    x = np.arange(width)[None, :]
    y = np.arange(height)[:, None]
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = (x * 4 + index * 9) % 256
    frame[..., 1] = (y * 5 + index * 5) % 256
    frame[..., 2] = ((x + y) * 2 + index * 13) % 256
    size = max(4, min(width, height) // 6)
    top = (index * 3) % (height - size)
    left = (index * 7) % (width - size)
    frame[top : top + size, left : left + size] = 255
    return frame


def make_h264_video(
    path: str | Path,
    num_frames: int,
    width: int,
    height: int,
    fps: int = 25,
    gop: int = 24,
    bframes: int = 2,
    *,
    pts_offset: int = 0,
    frame_pts: list[int] | None = None,
    container_options: dict[str, str] | None = None,
) -> np.ndarray:
    """Encode ``num_frames`` of ``moving_pattern`` with libx264 and return the decoded frames (N, H, W, 3).

    The container follows the suffix (.mp4, .mkv, .ts). ``gop`` is the exact keyframe interval (scene-cut
    keyframes are disabled), ``bframes`` the number of consecutive B-frames. ``pts_offset`` starts the
    timestamps at that many frames instead of 0; ``frame_pts`` gives each frame's pts in units of 1/fps (a
    variable frame rate when the steps are uneven). ``container_options`` go to the muxer (e.g.
    ``{"movflags": "faststart"}`` puts the MP4 index before the data).
    """
    pts = frame_pts if frame_pts is not None else [pts_offset + i for i in range(num_frames)]
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(
            "libx264",
            rate=fps,
            options={
                "g": str(gop),
                "keyint_min": str(gop),
                "sc_threshold": "0",
                "bf": str(bframes),
                "preset": "veryfast",
                "crf": "20",
            },
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(moving_pattern(i, width, height), format="rgb24")
            frame.pts, frame.time_base = pts[i], Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return decode_all(path)


def decode_all(path: str | Path) -> np.ndarray:
    """Every frame of the first video stream, in the order a plain sequential decode yields them."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
