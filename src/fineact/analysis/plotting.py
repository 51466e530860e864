"""Shared picture helpers for the analysis modules: figures, labels, colour maps, frame overlays.

Figures are built with `matplotlib.figure.Figure` on the Agg canvas directly, never through `pyplot`, so
nothing here touches matplotlib's global backend or state: the functions are safe in scripts, notebooks, tests
and worker processes alike, and need no display.

Image conventions (the same in every module): a frame is a uint8 array (H, W, 3), row 0 at the top, as
decoders return it; a map (CAM, channel-averaged state) is a float array (H, W) in the same orientation.
Nothing here transposes or flips: `imshow` is always called with origin="upper", and the Pillow-composed
pictures copy arrays row by row.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from fineact.data.transforms import IMAGENET_MEAN, IMAGENET_STD

PathLike = str | os.PathLike

DPI = 110
ELLIPSIS = "\u2026"


# -- figures ----------------------------------------------------------------------------------------------

def new_figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    """A matplotlib Figure on its own Agg canvas (no pyplot, no global state); size in inches."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: PathLike) -> Path:
    """Write `fig` to `path` (PNG unless the suffix says otherwise), creating the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white")
    return path


# -- labels -----------------------------------------------------------------------------------------------

def truncate(text: str, max_chars: int, where: str = "end") -> str:
    """`text` cut to at most `max_chars` characters, the cut marked with an ellipsis.

    where="end" keeps the beginning; where="middle" keeps both ends ("Something colliding wi…both come to a
    halt"), which is what tells fine-grained class names apart: they often differ only in their last words.
    """
    text = " ".join(str(text).split())
    if max_chars < 2 or len(text) <= max_chars:
        return text
    if where == "middle":
        head = (max_chars - 1) // 2
        tail = max_chars - 1 - head
        return text[:head].rstrip() + ELLIPSIS + text[len(text) - tail:].lstrip()
    return text[:max_chars - 1].rstrip() + ELLIPSIS


def short_labels(names: Sequence[str], max_chars: int) -> list[str]:
    """Class names shortened for axes (middle ellipsis), kept distinct: names that would collide are
    shortened less, and if they still collide their index is appended."""
    out = [truncate(n, max_chars, "middle") for n in names]
    seen: dict[str, int] = {}
    for label in out:
        seen[label] = seen.get(label, 0) + 1
    for i, label in enumerate(out):
        if seen[label] > 1:
            longer = truncate(names[i], max_chars + 16, "middle")
            out[i] = longer if sum(truncate(n, max_chars + 16, "middle") == longer for n in names) == 1 \
                else f"{longer} [{i}]"
    return out


# -- colours ----------------------------------------------------------------------------------------------

def colormap(name: str = "jet"):
    """A matplotlib colour map by name (e.g. "jet", "turbo", "viridis", "RdBu_r")."""
    try:
        return colormaps[name]
    except KeyError:
        raise ValueError(f"unknown colour map {name!r}; e.g. 'jet', 'turbo', 'viridis', 'magma'") from None


def heat_rgb(values: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """Values in [0, 1] (any shape) -> uint8 RGB (..., 3) through a colour map; NaN shows as 0."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    rgba = colormap(cmap)(np.clip(values, 0.0, 1.0))
    return (rgba[..., :3] * 255.0 + 0.5).astype(np.uint8)


def overlay(frame: np.ndarray, cam: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """A frame (H, W, 3) uint8 blended with a heat map (H, W) in [0, 1]: (1 - alpha) * frame + alpha * colour."""
    frame = as_uint8_frames(frame[None])[0]
    cam = np.asarray(cam, dtype=np.float64)
    if cam.shape != frame.shape[:2]:
        cam = resize_maps(cam[None], frame.shape[:2])[0]
    mixed = (1.0 - alpha) * frame.astype(np.float64) + alpha * heat_rgb(cam, cmap).astype(np.float64)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


# -- arrays -----------------------------------------------------------------------------------------------

def to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def as_uint8_frames(frames) -> np.ndarray:
    """Frames (T, H, W, 3) as uint8. Float frames are taken as [0, 1] if their maximum is <= 1, else [0, 255]."""
    frames = to_numpy(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames shaped (T, H, W, 3), got {frames.shape}")
    if frames.dtype == np.uint8:
        return frames
    frames = frames.astype(np.float64)
    if frames.size and np.nanmax(frames) <= 1.0:
        frames = frames * 255.0
    return np.clip(frames + 0.5, 0, 255).astype(np.uint8)


def resize_maps(maps, size: tuple[int, int]) -> np.ndarray:
    """Maps (K, h, w) -> (K, H, W) float, bilinearly (align_corners=False, as every upsampling here)."""
    arr = to_numpy(maps).astype(np.float32)
    if tuple(arr.shape[-2:]) == tuple(size):
        return arr
    t = torch.from_numpy(np.ascontiguousarray(arr))[:, None]
    return F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)[:, 0].numpy()


def clip_to_frames(clip, mean: Sequence[float] | None = IMAGENET_MEAN,
                   std: Sequence[float] | None = IMAGENET_STD) -> np.ndarray:
    """A normalised model clip (C, T, H, W) back to displayable uint8 frames (T, H, W, 3).

    `mean`/`std` are those the clip was normalised with (ImageNet by default, on pixels / 255); pass None for
    clips that hold plain [0, 1] pixels.
    """
    clip = to_numpy(clip).astype(np.float64)
    if clip.ndim != 4 or clip.shape[0] != 3:
        raise ValueError(f"expected one clip shaped (C=3, T, H, W), got {clip.shape}")
    if mean is not None and std is not None:
        clip = clip * np.asarray(std)[:, None, None, None] + np.asarray(mean)[:, None, None, None]
    return np.clip(clip.transpose(1, 2, 3, 0) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def pick_columns(count: int, max_columns: int) -> list[int]:
    """At most `max_columns` indices evenly spread over range(count), first and last included."""
    if count <= max_columns:
        return list(range(count))
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, max_columns)})


# -- Pillow composition (exact pixels, for frame grids and animations) --------------------------------------

def font(size: int = 13) -> ImageFont.ImageFont:
    """A TrueType font at `size` pixels (Pillow's bundled one), or the bitmap default where FreeType is missing."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def text_width(draw: ImageDraw.ImageDraw, text: str, fnt) -> int:
    box = draw.textbbox((0, 0), text, font=fnt)
    return box[2] - box[0]


def fit_text(draw: ImageDraw.ImageDraw, text: str, fnt, max_width: int) -> str:
    """`text` shortened (with an ellipsis) until it is at most `max_width` pixels wide."""
    text = " ".join(str(text).split())
    if text_width(draw, text, fnt) <= max_width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if text_width(draw, text[:mid].rstrip() + ELLIPSIS, fnt) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + ELLIPSIS


def upscale_factor(height: int, width: int, min_side: int = 112, max_side: int = 256) -> float:
    """Scale that brings the shorter side to at least `min_side` (integer factors, nearest neighbour, for small
    frames) or the longer side down to `max_side` for large ones; 1 otherwise."""
    if min(height, width) < min_side:
        return float(math.ceil(min_side / max(1, min(height, width))))
    if max(height, width) > max_side:
        return max_side / max(height, width)
    return 1.0


def scale_image(image: np.ndarray, factor: float) -> np.ndarray:
    """Integer factors repeat pixels (nearest: exact blocks); other factors resize bilinearly with Pillow."""
    if factor == 1.0:
        return image
    if float(factor).is_integer() and factor > 1:
        k = int(factor)
        return image.repeat(k, axis=0).repeat(k, axis=1)
    h, w = image.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))


def colorbar_strip(width: int, height: int, cmap: str) -> np.ndarray:
    """A horizontal colour-bar image (height, width, 3), 0 on the left, 1 on the right."""
    ramp = np.linspace(0.0, 1.0, max(2, width))[None, :].repeat(height, axis=0)
    return heat_rgb(ramp, cmap)
