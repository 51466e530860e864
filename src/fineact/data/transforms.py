"""Transforms of decoded uint8 clips: resize, crops, flips, in uint8, for the DataLoader to carry.

Protocol
--------
A sample is ``{pathway name: clip}`` (a single clip is accepted too and comes back single). Decoded clips are
uint8 ``(T, H, W, 3)`` RGB, numpy or torch. Every transform is called as
``transform(clips, label=None, rng=None) -> (clips, label)``: random transforms draw their parameters ONCE per
call from the numpy ``rng`` and apply them to every frame of every pathway, so all pathways of a sample see the
same crop and flip (pathways must share H and W). Only the flip touches the label (left/right class swap).

Inside the pipeline clips are ``(T, C, H, W)``: ``AsTensor`` views the decoded uint8 frames so (no copy, the
channels stay innermost in memory), ``ToFloat`` converts them to float32 in [0, 255] instead; multi-view test
crops add a leading view axis, ``(V, T, C, H, W)``; ``ToModelLayout`` gives the model layout ``(C, T, H, W)``
or ``(V, C, T, H, W)``. ``Normalize`` maps float clips to ``(x / 255 - mean) / std``.

``build_train_transform`` / ``build_test_transform`` assemble the standard recipes (TSM / ARC / SlowOnly) in
uint8 and leave the normalisation to the device (fineact.data.model_input). Every pixel is resampled once, in
uint8 (antialiased bilinear, like PIL), and only for the pixels the model will see: a training crop is drawn on
the frame as the recipe's resize would make it (short side 256), then cut from the source pixels it covers and
resized straight to 224 (``_ResizingCrop``), so the full frame is never resized; a test crop is a view of the
resized frame. The only per-pixel copies on the CPU are that one resize, the flip and the layout (and, for
several pathways, each pathway's frames taken from their union); fineact's training leaves the flip to the
device too (``ClipDatasetOptions.device_flip``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fineact.data.model_input import IMAGENET_MEAN, IMAGENET_STD, normalize
from fineact.errors import ConfigError, VideoError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SSV1_FLIP_LABEL_MAP",
    "AsTensor",
    "CentreCrop",
    "ClipTransform",
    "Compose",
    "MultiScaleCrop",
    "Normalize",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "Resize",
    "TenCrop",
    "ThreeCrop",
    "ToFloat",
    "ToLoaderLayout",
    "ToModelLayout",
    "build_test_transform",
    "build_train_transform",
    "resize_target",
]

# Something-Something V1, classes in sorted-name order: "... from left to right" <-> "... from right to left".
SSV1_FLIP_LABEL_MAP = {86: 87, 87: 86, 93: 94, 94: 93, 166: 167, 167: 166}

Clips = dict[str, torch.Tensor]
Box = tuple[int, int, int, int]  # top, left, height, width


# ------------------------------------------------------------------------------------------------ base


class ClipTransform:
    """Base class: accepts one clip or a dict of pathway clips; subclasses implement ``apply`` on the dict."""

    def __call__(self, clips, label: Any = None, rng: np.random.Generator | None = None):
        single = not isinstance(clips, Mapping)
        as_dict = {"clip": clips} if single else dict(clips)
        out, label = self.apply(as_dict, label, rng if rng is not None else np.random.default_rng())
        return (out["clip"] if single else out), label

    def apply(self, clips: Clips, label: Any, rng: np.random.Generator) -> tuple[Clips, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Compose(ClipTransform):
    """Applies transforms in order with one rng; ``crop_views`` is the number of test crops it makes per clip."""

    def __init__(self, transforms: Sequence[ClipTransform], crop_views: int = 1):
        self.transforms = list(transforms)
        self.crop_views = crop_views

    def apply(self, clips, label, rng):
        for transform in self.transforms:
            clips, label = transform.apply(clips, label, rng)
        return clips, label


class _Spatial(ClipTransform):
    """A transform whose parameters depend only on the shared frame size: one draw, every clip."""

    def apply(self, clips, label, rng):
        params = self.draw(_shared_size(clips), rng)
        return {name: self.transform(clip, params) for name, clip in clips.items()}, label

    def draw(self, size: tuple[int, int], rng: np.random.Generator):
        return None

    def transform(self, clip: torch.Tensor, params) -> torch.Tensor:
        raise NotImplementedError


# -------------------------------------------------------------------------------------- format / values


class AsTensor(ClipTransform):
    """uint8 ``(T, H, W, 3)`` numpy/torch -> uint8 ``(T, 3, H, W)``: a view of the same memory, no copy."""

    def apply(self, clips, label, rng):
        return {name: _frames_tensor(name, clip) for name, clip in clips.items()}, label


class ToFloat(ClipTransform):
    """uint8 ``(T, H, W, 3)`` numpy/torch -> float32 ``(T, 3, H, W)`` with values in [0, 255]."""

    def apply(self, clips, label, rng):
        return {name: _frames_tensor(name, clip).float() for name, clip in clips.items()}, label


class Normalize(ClipTransform):
    """``(x / 255 - mean) / std`` per channel (channel axis -3); ImageNet statistics by default."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ConfigError(f"Normalize needs 3 means and 3 positive stds, got mean={mean}, std={std}")
        self.mean, self.std = tuple(mean), tuple(std)

    def apply(self, clips, label, rng):
        return {name: normalize(clip, self.mean, self.std, channel_axis=-3) for name, clip in clips.items()}, label


class ToModelLayout(ClipTransform):
    """``(T, C, H, W)`` -> ``(C, T, H, W)`` and ``(V, T, C, H, W)`` -> ``(V, C, T, H, W)``, contiguous."""

    def apply(self, clips, label, rng):
        return {name: clip.transpose(-4, -3).contiguous() for name, clip in clips.items()}, label


class ToLoaderLayout(ClipTransform):
    """``(T, C, H, W)`` -> ``(C, T, H, W)`` (and with a view axis) as the DataLoader carries it: the model's axes,
    the decoder's memory order (channels innermost, ``(T, H, W, C)`` dense). At most one copy, none when the
    last step (a flip, a resize) already wrote the frames so; ``collate_batch`` stacks them without a transpose."""

    def apply(self, clips, label, rng):
        return {name: clip.movedim(-3, -1).contiguous().movedim(-1, -4) for name, clip in clips.items()}, label


# ------------------------------------------------------------------------------------------ geometry


class Resize(_Spatial):
    """Bilinear resize of every frame: ``size`` int = short side to ``size`` (long side ``int(long*size/short)``,
    as torchvision), or ``(H, W)`` fixed. Antialiased, so downscaling averages like PIL does; uint8 frames are
    resized in uint8 (rounded to the nearest level) and float frames in float."""

    def __init__(self, size: int | tuple[int, int]):
        self.size = _check_size(size, "Resize")

    def draw(self, size, rng):
        return _resized_shape(size, self.size)

    def transform(self, clip, params):
        return _resize(clip, params)


class CentreCrop(_Spatial):
    """Crop ``size`` (int or (H, W)) at the centre: top = (H - h) // 2, left = (W - w) // 2."""

    def __init__(self, size: int | tuple[int, int]):
        self.size = _pair(_check_size(size, "CentreCrop"))

    def draw(self, size, rng):
        return _centre_box(size, self.size)

    def transform(self, clip, box):
        return _crop(clip, box)


class _ResizingCrop(_Spatial):
    """A random crop resized to ``size``, drawn on the frames as ``resize`` would make them.

    ``resize`` (short side int, or (H, W); None = the frames as they are) is the recipe's resize before the crop:
    the box is drawn on frames of that size, exactly as if they had been resized, then mapped back to the source
    pixels it covers (rounded to whole source pixels) and resized from there to ``size``. One resampling instead
    of two (resize the frame, then the crop) and none of the full frame's pixels the crop drops; the drawn crop is
    the same region, placed to within half a source pixel. Subclasses draw the box (``draw_box``).
    """

    def __init__(self, size: int | tuple[int, int], resize: int | tuple[int, int] | None):
        self.size = _pair(_check_size(size, type(self).__name__))
        self.resize = None if resize is None else _check_size(resize, type(self).__name__)

    def draw(self, size, rng):
        drawn_on = size if self.resize is None else _resized_shape(size, self.resize)
        return _source_box(self.draw_box(drawn_on, rng), drawn_on, size)

    def draw_box(self, size: tuple[int, int], rng: np.random.Generator) -> Box:
        raise NotImplementedError

    def transform(self, clip, box):
        return _resize(_crop(clip, box), self.size)


class MultiScaleCrop(_ResizingCrop):
    """TSM's multi-scale crop, then a resize to ``size`` (drawn on frames resized so by ``resize``: above).

    With ``base = min(H, W)``, candidate crop sides are ``int(base * s)`` for s in ``scales``, snapped to the
    output side when within 3 pixels. A (width, height) pair is drawn uniformly among the sides whose scale
    positions differ by at most ``max_distort``. With ``fix_crop`` the offset is drawn uniformly among fixed
    positions on a grid of steps ``((W - w) // 4, (H - h) // 4)``: the 4 corners and the centre, plus (with
    ``more_fix_crop``) the 4 edge midpoints and the 4 quarter points; otherwise anywhere.
    """

    def __init__(
        self,
        size: int | tuple[int, int] = 224,
        scales: Sequence[float] = (1, 0.875, 0.75, 0.66),
        max_distort: int = 1,
        fix_crop: bool = True,
        more_fix_crop: bool = True,
        resize: int | tuple[int, int] | None = None,
    ):
        super().__init__(size, resize)
        if not scales or min(scales) <= 0 or max(scales) > 1:
            raise ConfigError(f"MultiScaleCrop scales must be in (0, 1], got {scales}")
        self.scales, self.max_distort = tuple(scales), max_distort
        self.fix_crop, self.more_fix_crop = fix_crop, more_fix_crop

    def candidate_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """The (crop_h, crop_w) pairs one draw chooses from."""
        out_h, out_w = self.size
        sides = [int(min(height, width) * s) for s in self.scales]
        # snapping can overshoot a frame just under the output size by 1-2 pixels: never crop past the frame
        heights = [min(height, out_h if abs(side - out_h) < 3 else side) for side in sides]
        widths = [min(width, out_w if abs(side - out_w) < 3 else side) for side in sides]
        return [
            (h, w)
            for i, h in enumerate(heights)
            for j, w in enumerate(widths)
            if abs(i - j) <= self.max_distort
        ]

    def candidate_offsets(self, height: int, width: int, crop_h: int, crop_w: int) -> list[tuple[int, int]]:
        """The (top, left) positions of a fixed crop, in TSM's order."""
        h_step, w_step = (height - crop_h) // 4, (width - crop_w) // 4
        grid = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)]  # (row, column) in steps: corners, then centre
        if self.more_fix_crop:
            grid += [(2, 0), (2, 4), (4, 2), (0, 2), (1, 1), (1, 3), (3, 1), (3, 3)]
        return [(row * h_step, col * w_step) for row, col in grid]

    def draw_box(self, size, rng):
        height, width = size
        pairs = self.candidate_sizes(height, width)
        crop_h, crop_w = pairs[rng.integers(len(pairs))]
        if self.fix_crop:
            offsets = self.candidate_offsets(height, width, crop_h, crop_w)
            top, left = offsets[rng.integers(len(offsets))]
        else:
            top, left = int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1))
        return (top, left, crop_h, crop_w)


class RandomResizedCrop(_ResizingCrop):
    """Inception-style crop (torchvision's algorithm), then a resize to ``size`` (drawn on frames resized so by
    ``resize``: ``_ResizingCrop``).

    Up to 10 tries: area fraction uniform in ``area``, aspect ratio log-uniform in ``ratio``,
    ``w = round(sqrt(A * r))``, ``h = round(sqrt(A / r))``; the first box that fits is placed uniformly.
    Otherwise the whole frame, cropped centrally to the nearest allowed aspect ratio.
    """

    def __init__(
        self,
        size: int | tuple[int, int] = 224,
        area: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        resize: int | tuple[int, int] | None = None,
    ):
        super().__init__(size, resize)
        if not 0 < area[0] <= area[1] <= 1 or not 0 < ratio[0] <= ratio[1]:
            raise ConfigError(f"RandomResizedCrop needs 0 < area <= 1 and 0 < ratio ranges, got {area}, {ratio}")
        self.area, self.ratio = tuple(area), tuple(ratio)

    def draw_box(self, size, rng):
        height, width = size
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target_area = height * width * rng.uniform(*self.area)
            aspect = math.exp(rng.uniform(*log_ratio))
            crop_w = round(math.sqrt(target_area * aspect))
            crop_h = round(math.sqrt(target_area / aspect))
            if 0 < crop_w <= width and 0 < crop_h <= height:
                top = int(rng.integers(0, height - crop_h + 1))
                left = int(rng.integers(0, width - crop_w + 1))
                return (top, left, crop_h, crop_w)
        return self._fallback_box(height, width)

    def _fallback_box(self, height: int, width: int) -> Box:
        aspect = width / height
        if aspect < self.ratio[0]:
            crop_w, crop_h = width, round(width / self.ratio[0])
        elif aspect > self.ratio[1]:
            crop_h, crop_w = height, round(height * self.ratio[1])
        else:
            crop_h, crop_w = height, width
        return ((height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w)


class RandomHorizontalFlip(ClipTransform):
    """Mirror every frame of every pathway with probability ``p``.

    ``label_map`` (int -> int) swaps direction-dependent classes (e.g. ``SSV1_FLIP_LABEL_MAP``); the label is
    swapped only when the clip was actually flipped, and labels not in the map are kept.
    """

    def __init__(self, p: float = 0.5, label_map: Mapping[int, int] | None = None):
        if not 0 <= p <= 1:
            raise ConfigError(f"flip probability must be in [0, 1], got {p}")
        self.p = p
        self.label_map = dict(label_map) if label_map else None

    def decide(self, label, rng: np.random.Generator) -> tuple[bool, Any]:
        """Draw the flip (one number from ``rng``) -> (flip or not, the label as the flipped clip has it). The
        datasets draw it so and leave the pixels to the device (``ClipDatasetOptions.device_flip``)."""
        if rng.random() >= self.p:
            return False, label
        return True, self._swap(label)

    def apply(self, clips, label, rng):
        flip, label = self.decide(label, rng)
        if not flip:
            return clips, label
        return {name: clip.flip(-1) for name, clip in clips.items()}, label

    def _swap(self, label):
        if self.label_map is None or label is None:
            return label
        try:
            key = int(label)
        except (TypeError, ValueError):
            raise ConfigError(f"flip label_map needs an integer label, got {label!r}") from None
        return self.label_map.get(key, key)


class ThreeCrop(_Spatial):
    """Three crops of ``size`` along the longer side (left, centre, right; or top, centre, bottom), centred
    across the shorter side; adds a view axis: ``(3, T, C, h, w)``."""

    def __init__(self, size: int | tuple[int, int]):
        self.size = _pair(_check_size(size, "ThreeCrop"))

    def draw(self, size, rng):
        height, width = size
        crop_h, crop_w = _fitting(size, self.size)
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        if width >= height:
            return [(top, x, crop_h, crop_w) for x in (0, left, width - crop_w)]
        return [(y, left, crop_h, crop_w) for y in (0, top, height - crop_h)]

    def transform(self, clip, boxes):
        return torch.stack([_crop(clip, box) for box in boxes])


class TenCrop(_Spatial):
    """Five crops of ``size`` (top-left, top-right, bottom-left, bottom-right, centre) followed by the same five
    mirrored; adds a view axis: ``(10, T, C, h, w)``."""

    def __init__(self, size: int | tuple[int, int]):
        self.size = _pair(_check_size(size, "TenCrop"))

    def draw(self, size, rng):
        height, width = size
        crop_h, crop_w = _fitting(size, self.size)
        bottom, right = height - crop_h, width - crop_w
        corners = [(0, 0), (0, right), (bottom, 0), (bottom, right), (bottom // 2, right // 2)]
        return [(top, left, crop_h, crop_w) for top, left in corners]

    def transform(self, clip, boxes):
        crops = [_crop(clip, box) for box in boxes]
        return torch.stack(crops + [crop.flip(-1) for crop in crops])


# ------------------------------------------------------------------------------------------- builders


def build_train_transform(
    kind: str = "multiscale",
    size: int = 224,
    resize: int | tuple[int, int] | None = 256,
    flip: bool = True,
    flip_label_map: Mapping[int, int] | None = None,
    *,
    scales: Sequence[float] = (1, 0.875, 0.75, 0.66),
    area: tuple[float, float] = (0.08, 1.0),
) -> Compose:
    """uint8 clips -> uint8 ``(C, T, size, size)``: a random crop of the frames as ``resize`` makes them (short
    side int, or (H, W); None = keep) ("multiscale": TSM's MultiScaleCrop with ``scales``; "random_resized":
    RandomResizedCrop with ``area``), resized to ``size`` from the source pixels in one step
    (``_ResizingCrop``), and an optional flip (with ``flip_label_map`` swaps); normalised on the device
    (model_input). The ARC SSv1 recipe is ``resize=(240, 320), kind="multiscale",
    flip_label_map=SSV1_FLIP_LABEL_MAP``."""
    if kind == "multiscale":
        crop: ClipTransform = MultiScaleCrop(size, scales, resize=resize)
    elif kind == "random_resized":
        crop = RandomResizedCrop(size, area, resize=resize)
    else:
        raise ConfigError(f"train transform kind must be 'multiscale' or 'random_resized', got {kind!r}")
    steps: list[ClipTransform] = [AsTensor(), crop]
    if flip:
        steps.append(RandomHorizontalFlip(0.5, flip_label_map))
    steps.append(ToLoaderLayout())
    return Compose(steps)


def build_test_transform(
    size: int = 224,
    resize: int | tuple[int, int] | None = 256,
    crops: int = 1,
) -> Compose:
    """uint8 clips -> resize (short side 256 by default) -> 1 centre crop, uint8 ``(C, T, size, size)``, or 3 /
    10 crops ``(V, C, T, size, size)``; normalised on the device (model_input). The result's ``crop_views``
    attribute is the number of crops."""
    view_crops: dict[int, Callable[[Any], ClipTransform]] = {1: CentreCrop, 3: ThreeCrop, 10: TenCrop}
    if crops not in view_crops:
        raise ConfigError(f"test crops must be 1, 3 or 10, got {crops!r}")
    steps: list[ClipTransform] = [AsTensor()]
    if resize is not None:
        steps.append(Resize(resize))
    steps += [view_crops[crops](size), ToLoaderLayout()]
    return Compose(steps, crop_views=crops)


def resize_target(sizes: Sequence[int]) -> int | tuple[int, int]:
    """The config's ``data.resize`` as ``Resize`` takes it: ``[short side]`` -> int, ``[H, W]`` -> (H, W)."""
    return sizes[0] if len(sizes) == 1 else tuple(sizes)


# -------------------------------------------------------------------------------------------- helpers


def _frames_tensor(name: str, clip) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(clip)) if isinstance(clip, np.ndarray) else clip
    is_frames = isinstance(tensor, torch.Tensor) and tensor.ndim == 4 and tensor.shape[-1] == 3
    if not is_frames or tensor.dtype != torch.uint8:
        found = f"{type(clip).__name__} {getattr(clip, 'dtype', '?')} {tuple(getattr(clip, 'shape', ()))}"
        raise VideoError(f"clip {name!r}: expected uint8 frames (T, H, W, 3), found {found}")
    return tensor.permute(0, 3, 1, 2)


def _shared_size(clips: Clips) -> tuple[int, int]:
    sizes = {name: tuple(clip.shape[-2:]) for name, clip in clips.items()}
    if len(set(sizes.values())) != 1:
        raise VideoError(f"pathway clips must share one frame size to share a crop, got {sizes}")
    return next(iter(sizes.values()))


def _resized_shape(size: tuple[int, int], target: int | tuple[int, int]) -> tuple[int, int]:
    if not isinstance(target, int):
        return target
    height, width = size
    if height <= width:
        return target, int(target * width / height)
    return int(target * height / width), target


def _source_box(box: Box, drawn_on: tuple[int, int], source: tuple[int, int]) -> Box:
    """A box on frames of size ``drawn_on`` -> the box of ``source``-sized frames covering the same region, its
    edges rounded to whole source pixels (at least one pixel, inside the frame)."""
    if tuple(drawn_on) == tuple(source):
        return box
    top, left, height, width = box

    def edges(start: int, length: int, scale: float, limit: int) -> tuple[int, int]:
        first = min(limit - 1, math.floor(start * scale + 0.5))
        last = max(first + 1, min(limit, math.floor((start + length) * scale + 0.5)))
        return first, last - first

    (y, h), (x, w) = (edges(top, height, source[0] / drawn_on[0], source[0]),
                      edges(left, width, source[1] / drawn_on[1], source[1]))
    return (y, x, h, w)


def _resize(clip: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    if tuple(clip.shape[-2:]) == tuple(shape):
        return clip
    frames = clip.reshape(-1, *clip.shape[-3:])  # interpolate wants (N, C, H, W): fold T (and V) into N
    # uint8 frames resize in uint8 (torch's integer kernels, fastest with the channels innermost, as decoded)
    resized = F.interpolate(frames, size=shape, mode="bilinear", align_corners=False, antialias=True)
    return resized.reshape(*clip.shape[:-2], *shape)


def _crop(clip: torch.Tensor, box: Box) -> torch.Tensor:
    top, left, height, width = box
    return clip[..., top : top + height, left : left + width]


def _centre_box(size: tuple[int, int], crop: tuple[int, int]) -> Box:
    crop_h, crop_w = _fitting(size, crop)
    return ((size[0] - crop_h) // 2, (size[1] - crop_w) // 2, crop_h, crop_w)


def _fitting(size: tuple[int, int], crop: tuple[int, int]) -> tuple[int, int]:
    if crop[0] > size[0] or crop[1] > size[1]:
        raise VideoError(f"crop {crop[0]}x{crop[1]} does not fit in frames of {size[0]}x{size[1]}; resize first")
    return crop


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else size


def _check_size(size, owner: str):
    if _positive_int(size):
        return int(size)
    if isinstance(size, (tuple, list)) and len(size) == 2 and all(_positive_int(s) for s in size):
        return (int(size[0]), int(size[1]))
    raise ConfigError(f"{owner} size must be a positive int or (height, width), got {size!r}")


def _positive_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0
