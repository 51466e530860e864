"""Grad-CAM for any named layer of any fineact model (ARC paper appendix A.2, Fig. 5: CAMs on Res3 features).

    cams = grad_cam(model, clip, "backbone.layer2")                              # TSM / TSN / SlowOnly
    cams = grad_cam(model, clips, "pathways.element.backbone.layer3", level="element")   # multi-task
    save_cam_grid(frames, cams[0].numpy(), "cam.png")

Grad-CAM (Selvaraju et al.): for a layer with activations A (channels c) and a class score y, the weight of a
channel is its gradient averaged over positions, alpha_c = mean dy/dA_c, and the map is ReLU(sum_c alpha_c A_c).
For video we average the gradient over ALL positions of a clip (time and space), so one set of channel
weights explains the whole clip and the maps of different frames are comparable; each clip's map is then
divided by its maximum over all its frames (so a frame that matters less stays darker).

Layer layouts: a 2D model (TSM/TSN, 2D ARC) runs its frames as a batch, so a layer gives (N*T, C, h, w); it is
viewed as (N, T, C, h, w) from the clip's N and T. A 3D model (SlowOnly, SlowFast, the multi-task pathways)
gives (N, C, T', h, w); the map is upsampled in time from T' to the clip's T (SlowFast's slow pathway sees every
alpha-th frame). Every map is resized (bilinear in space, linear in time) to the clip's frames: the result is
(N, T, H, W) in [0, 1] for the clip the layer's pathway reads.

State: Grad-CAM runs the model in eval mode (dropout off, BN running statistics), with gradients enabled
through the chosen layer, and puts everything back afterwards: every module's train/eval flag, every
parameter's requires_grad flag, the multi-task model's frozen-pathway setting; parameter .grad fields are
never written (gradients are taken with torch.autograd.grad with respect to the layer's output only).
"""

from __future__ import annotations

import difflib
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import nn

from fineact.analysis.plotting import (as_uint8_frames, colorbar_strip, fit_text, font, overlay, pick_columns,
                                       resize_maps, scale_image, to_numpy, upscale_factor)
from fineact.errors import ModelError
from fineact.models.arc import ARCConv

PathLike = str | os.PathLike

LAYER_KINDS = ("conv", "block", "all")
_BLOCK_NAME = re.compile(r"(^|\.)layer[1-4](\.\d+)?$")


# -- layer names ------------------------------------------------------------------------------------------

def list_layers(model: nn.Module, kind: str = "conv") -> list[str]:
    """Qualified module names that `grad_cam` accepts, in model order.

    kind "conv": every 2D/3D convolution, an ARC-decorated conv counted as one layer (its inner parts are
    left out: each covers only some output channels). kind "block": the residual stages and blocks
    (`backbone.layer2`, `backbone.layer2.1`, `pathways.set.backbone.layer3`, `backbone.slow.layer2`, ...),
    the usual Grad-CAM targets (the ARC paper uses res3 = layer2). kind "all": every named module (any
    whose output is one 4D/5D feature map works).
    """
    if kind not in LAYER_KINDS:
        raise ModelError(f"list_layers: kind must be one of {LAYER_KINDS}, got {kind!r}")
    names = []
    arc_prefixes: list[str] = []
    for name, module in model.named_modules():
        if not name:
            continue
        if kind == "all":
            names.append(name)
            continue
        if any(name.startswith(p) for p in arc_prefixes):
            continue
        if kind == "conv":
            if isinstance(module, ARCConv):
                arc_prefixes.append(name + ".")
                names.append(name)
            elif isinstance(module, (nn.Conv2d, nn.Conv3d)):
                names.append(name)
        elif _BLOCK_NAME.search(name):
            names.append(name)
    return names


def default_cam_layers(model: nn.Module) -> list[str]:
    """The paper's Grad-CAM layer, res3 (`layer2`) output, of every backbone pathway in `model`
    (one name for TSM/TSN/SlowOnly, slow and fast for SlowFast, one per multi-task pathway)."""
    names = [n for n in list_layers(model, "block") if n.endswith("layer2")]
    if not names:
        raise ModelError(f"default_cam_layers: {type(model).__name__} has no ResNet stage 'layer2'; pick a layer "
                         f"from list_layers(model, 'block') or list_layers(model, 'conv')")
    return names


def _resolve_layer(model: nn.Module, layer: str) -> nn.Module:
    modules = dict(model.named_modules())
    if not isinstance(layer, str) or layer not in modules or not layer:
        candidates = list_layers(model, "all")
        close = difflib.get_close_matches(str(layer), candidates, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        examples = ", ".join(repr(n) for n in list_layers(model, "block")[:4])
        raise ModelError(f"grad_cam: {type(model).__name__} has no layer {layer!r}.{hint} Layers are qualified "
                         f"module names (e.g. {examples}); list them with "
                         f"fineact.analysis.gradcam.list_layers(model, 'block' | 'conv' | 'all')")
    return modules[layer]


# -- model state ------------------------------------------------------------------------------------------

@contextmanager
def preserved_state(model: nn.Module) -> Iterator[nn.Module]:
    """Restore every module's train/eval flag, every parameter's requires_grad and a multi-task model's
    frozen-pathway flag on exit, whatever happens inside."""
    training = {m: m.training for m in model.modules()}
    requires = {p: p.requires_grad for p in model.parameters()}
    frozen = getattr(model, "freeze_pathways", None)
    try:
        yield model
    finally:
        if frozen is not None and hasattr(model, "set_pathways_frozen"):
            model.set_pathways_frozen(frozen)
        for p, flag in requires.items():
            p.requires_grad_(flag)
        for m, flag in training.items():
            m.training = flag


# -- inputs and targets -----------------------------------------------------------------------------------

def _clip_for_layer(clips, layer: str) -> tuple[str | None, torch.Tensor]:
    """The clip the layer reads: the tensor itself, the pathway named in the layer name, or the only one."""
    if isinstance(clips, torch.Tensor):
        return None, clips
    if not isinstance(clips, Mapping) or not clips:
        raise ModelError(f"grad_cam: expected a clip (N, C, T, H, W) or a dict {{pathway: clip}}, "
                         f"got {type(clips).__name__}")
    match = re.match(r"pathways\.([^.]+)\.", layer + ".")
    if match and match.group(1) in clips:
        return match.group(1), clips[match.group(1)]
    if len(clips) == 1:
        key = next(iter(clips))
        return key, clips[key]
    raise ModelError(f"grad_cam: cannot tell which of the clips {list(clips)} layer {layer!r} reads; use a layer "
                     f"under 'pathways.<name>.' (e.g. 'pathways.{next(iter(clips))}.backbone.layer2')")


def _check_clip(clip: torch.Tensor, what: str) -> None:
    if not isinstance(clip, torch.Tensor) or clip.dim() != 5 or not clip.is_floating_point():
        shape = tuple(clip.shape) if isinstance(clip, torch.Tensor) else type(clip).__name__
        raise ModelError(f"grad_cam: {what} must be a float clip (N, C, T, H, W), got {shape}")


def _pick_logits(output, level: str | None) -> torch.Tensor:
    if isinstance(output, Mapping):
        if level is None:
            if len(output) == 1:
                return next(iter(output.values()))
            raise ModelError(f"grad_cam: the model predicts several levels {list(output)}; pass level= one of them")
        if level not in output:
            raise ModelError(f"grad_cam: unknown level {level!r}; the model predicts {list(output)}")
        return output[level]
    if level is not None:
        raise ModelError(f"grad_cam: level={level!r} given, but the model has a single output (no levels)")
    if not isinstance(output, torch.Tensor) or output.dim() != 2:
        raise ModelError(f"grad_cam: expected the model to return logits (N, classes) or {{level: logits}}, got "
                         f"{type(output).__name__}{tuple(output.shape) if isinstance(output, torch.Tensor) else ''}")
    return output


def _targets(logits: torch.Tensor, target) -> torch.Tensor:
    n, k = logits.shape
    if target is None:
        return logits.argmax(1)
    t = torch.as_tensor(target, device=logits.device).long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise ModelError(f"grad_cam: target must be one class or one per clip ({n}), got {t.numel()} values")
    bad = t[(t < 0) | (t >= k)]
    if bad.numel():
        raise ModelError(f"grad_cam: target class {int(bad[0])} out of range 0..{k - 1}")
    return t


# -- Grad-CAM ---------------------------------------------------------------------------------------------

def grad_cam(model: nn.Module, clips, layer: str, target: int | Sequence[int] | torch.Tensor | None = None,
             level: str | None = None, eval_mode: bool = True) -> torch.Tensor:
    """Grad-CAM of `layer` for class `target` (default: each clip's predicted class) -> (N, T, H, W) in [0, 1].

    model:   any fineact model (TSM/TSN and ARC variants, SlowOnly, SlowFast, the multi-task networks) or any
             module mapping clips to logits / {level: logits}.
    clips:   (N, C, T, H, W), or {pathway: clip} for multi-pathway models.
    layer:   a qualified module name from `list_layers(model)`, e.g. "backbone.layer2" (res3),
             "backbone.layer3.1.conv2", "pathways.element.backbone.layer3", "backbone.slow.layer2". Its output
             must be one 4D (2D model, frames as batch) or 5D (3D model) tensor, and it must run once per forward.
    target:  a class index (for all clips) or one per clip; None = the predicted class.
    level:   which head's logits to explain for models with several levels ("event", "set", "element").
    eval_mode: run in eval mode (dropout off, BN running statistics), the usual setting; False keeps the
             model's mode (then BN in training mode mixes the clips of a batch and updates its running
             statistics, and dropout makes the map random).
    Returns the maps for the clip the layer reads (for a multi-task model, its pathway's clip), on CPU, each
    clip normalised by its own maximum (all zeros where the class has no positive evidence in the layer).
    The model's modes, requires_grad flags and frozen-pathway setting are restored; no .grad is written.
    """
    module = _resolve_layer(model, layer)
    pathway, clip = _clip_for_layer(clips, layer)
    _check_clip(clip, f"the clip of pathway {pathway!r}" if pathway else "the clip")
    n, _, t_clip, height, width = clip.shape
    captured: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        if not isinstance(output, torch.Tensor):
            raise ModelError(f"grad_cam: layer {layer!r} returns {type(output).__name__}, not one feature map; "
                             f"pick a layer whose output is a tensor")
        captured.append(output)
        # Downstream in-place ops (e.g. ReLU(inplace=True) after a BN) then act on the copy, so the captured
        # tensor keeps its values and stays differentiable.
        return output.clone()

    with preserved_state(model):
        if eval_mode:
            model.eval()
        if getattr(model, "freeze_pathways", False) and hasattr(model, "set_pathways_frozen"):
            model.set_pathways_frozen(False)  # frozen pathways run under no_grad; restored by preserved_state
        handle = module.register_forward_hook(hook)
        try:
            with torch.enable_grad():
                # Inputs that require grad give the layer a graph even when everything before it is frozen.
                output = model(_differentiable(clips))
                logits = _pick_logits(output, level)
                if not captured:
                    raise ModelError(f"grad_cam: layer {layer!r} did not run in the forward pass (is it part of "
                                     f"the model's computation for these clips?)")
                if len(captured) > 1:
                    raise ModelError(f"grad_cam: layer {layer!r} ran {len(captured)} times in one forward pass "
                                     f"(a shared module such as a ReLU or an ARC probe); pick a layer that runs "
                                     f"once, e.g. a block or a conv from list_layers(model)")
                activation = captured[0]
                if not activation.requires_grad:
                    raise ModelError(f"grad_cam: no gradient reaches layer {layer!r} (the model runs it without "
                                     f"autograd); Grad-CAM needs a differentiable path from the layer to the logits")
                classes = _targets(logits, target)
                score = logits.gather(1, classes[:, None]).sum()
                (grad,) = torch.autograd.grad(score, activation, allow_unused=True)
        finally:
            handle.remove()
    if grad is None:
        raise ModelError(f"grad_cam: the logits do not depend on layer {layer!r}")
    return _cam_from(activation.detach(), grad.detach(), n, t_clip, (height, width), layer)


def _differentiable(clips):
    if isinstance(clips, torch.Tensor):
        return clips.detach().requires_grad_(clips.is_floating_point())
    if isinstance(clips, Mapping):
        return {k: _differentiable(v) for k, v in clips.items()}
    return clips


def _cam_from(activation: torch.Tensor, grad: torch.Tensor, n: int, t_clip: int, size: tuple[int, int],
              layer: str) -> torch.Tensor:
    if activation.dim() == 4:  # 2D model: (N*T, C, h, w)
        if activation.shape[0] % n:
            raise ModelError(f"grad_cam: layer {layer!r} output has {activation.shape[0]} frames, not a multiple "
                             f"of the {n} clips")
        t = activation.shape[0] // n
        act = activation.reshape(n, t, *activation.shape[1:]).transpose(1, 2)  # (N, C, T, h, w)
        grd = grad.reshape(n, t, *grad.shape[1:]).transpose(1, 2)
    elif activation.dim() == 5:  # 3D model: (N, C, T', h, w)
        if activation.shape[0] != n:
            raise ModelError(f"grad_cam: layer {layer!r} output has batch {activation.shape[0]}, expected {n}")
        act, grd = activation, grad
    else:
        raise ModelError(f"grad_cam: layer {layer!r} output has shape {tuple(activation.shape)}; expected a feature "
                         f"map (N*T, C, h, w) or (N, C, T, h, w)")
    act, grd = act.float(), grd.float()
    weights = grd.mean(dim=(2, 3, 4), keepdim=True)                 # alpha_c per clip: (N, C, 1, 1, 1)
    cam = F.relu((weights * act).sum(1, keepdim=True))             # (N, 1, T', h, w)
    cam = F.interpolate(cam, size=(t_clip, *size), mode="trilinear", align_corners=False)[:, 0]
    cam = cam.clamp(min=0)
    peak = cam.flatten(1).amax(1).clamp(min=1e-12)[:, None, None, None]
    cam = torch.where(peak > 1e-12, cam / peak, torch.zeros_like(cam))
    return cam.clamp(0, 1).cpu()


# -- pictures ---------------------------------------------------------------------------------------------

def _cam_rows(cams, frames: np.ndarray) -> dict[str, np.ndarray]:
    rows = dict(cams) if isinstance(cams, Mapping) else {"Grad-CAM": cams}
    if not rows:
        raise ValueError("no CAMs given")
    out = {}
    t, h, w = frames.shape[:3]
    for label, cam in rows.items():
        arr = to_numpy(cam).astype(np.float32)
        if arr.ndim != 3 or arr.shape[0] != t:
            raise ValueError(f"CAM {label!r}: expected (T={t}, H, W) like the frames, got {arr.shape}")
        out[str(label)] = resize_maps(arr, (h, w))
    return out


def cam_grid_image(frames, cams, alpha: float = 0.5, cmap: str = "jet", max_columns: int = 8,
                   title: str | None = None, frame_labels: Sequence[str] | None = None) -> np.ndarray:
    """The picture `save_cam_grid` writes, as a uint8 array (rows: raw frames, then one overlay row per CAM).

    Frames are copied as they are (row 0 at the top, no flip or transpose); small frames are enlarged by an
    integer factor (nearest), large ones reduced. At most `max_columns` frames are shown, evenly spread.
    """
    frames = as_uint8_frames(frames)
    rows = _cam_rows(cams, frames)
    t, h, w = frames.shape[:3]
    columns = pick_columns(t, max_columns)
    labels = list(frame_labels) if frame_labels is not None else [f"frame {i}" for i in range(t)]
    factor = upscale_factor(h, w)
    tiles = [[scale_image(frames[i], factor) for i in columns]]
    row_names = ["RGB"]
    for name, cam in rows.items():
        tiles.append([scale_image(overlay(frames[i], cam[i], alpha, cmap), factor) for i in columns])
        row_names.append(name)
    th, tw = tiles[0][0].shape[:2]
    gap, left, head = 4, 118, 22 + (26 if title else 0)
    bar_h = 34
    width = left + len(columns) * (tw + gap) + gap
    height = head + len(tiles) * (th + gap) + bar_h + gap
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    small, big = font(12), font(15)
    if title:
        draw.text((gap, 4), fit_text(draw, title, big, width - 2 * gap), fill="black", font=big)
    for c, i in enumerate(columns):
        x = left + c * (tw + gap)
        draw.text((x, head - 17), fit_text(draw, labels[i], small, tw), fill="black", font=small)
    empty = [False] + [not np.any(cam[columns] > 0) for cam in rows.values()]
    for r, (row_name, row_tiles) in enumerate(zip(row_names, tiles)):
        y = head + r * (th + gap)
        draw.text((gap, y + th // 2 - 8), fit_text(draw, row_name, small, left - 2 * gap), fill="black", font=small)
        if empty[r]:  # an all-zero CAM looks like a uniform tint: say what it means
            draw.text((gap, y + th // 2 + 8), "(all zero: no positive", fill="#666666", font=font(10))
            draw.text((gap, y + th // 2 + 20), "evidence for the class)", fill="#666666", font=font(10))
        for c, tile in enumerate(row_tiles):
            canvas.paste(Image.fromarray(tile), (left + c * (tw + gap), y))
    # colour bar: what the overlay colours mean
    y = head + len(tiles) * (th + gap) + 4
    bar_w = min(220, width - left - 60)
    if bar_w > 40:
        canvas.paste(Image.fromarray(colorbar_strip(bar_w, 10, cmap)), (left, y))
        draw.text((left - 12, y - 2), "0", fill="black", font=small)
        draw.text((left + bar_w + 4, y - 2), "1", fill="black", font=small)
        draw.text((left, y + 12), "CAM (per clip max = 1)", fill="#444444", font=small)
    return np.asarray(canvas)


def save_cam_grid(frames, cams, path: PathLike, alpha: float = 0.5, cmap: str = "jet", max_columns: int = 8,
                  title: str | None = None, frame_labels: Sequence[str] | None = None) -> Path:
    """Write a PNG grid: the raw frames (T, H, W, 3) on the first row, the CAM overlaid below.

    cams: one map per frame (T, H, W) in [0, 1], or {row label: (T, H, W)} for several rows (e.g. baseline
    and ARC, as the paper's Fig. 5). Maps of another size than the frames are resized. `cmap` "jet" or
    "turbo"; `alpha` is the overlay's opacity. Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(cam_grid_image(frames, cams, alpha, cmap, max_columns, title, frame_labels)).save(path)
    return path


def cam_animation_frames(frames, cams, alpha: float = 0.5, cmap: str = "jet") -> list[np.ndarray]:
    """One picture per time step: the raw frame and each CAM overlay side by side, labelled; uint8 (h, w, 3)."""
    frames = as_uint8_frames(frames)
    rows = _cam_rows(cams, frames)
    t, h, w = frames.shape[:3]
    factor = upscale_factor(h, w, min_side=160)
    out = []
    small = font(12)
    for i in range(t):
        panels = [("RGB", scale_image(frames[i], factor))]
        panels += [(name, scale_image(overlay(frames[i], cam[i], alpha, cmap), factor)) for name, cam in rows.items()]
        ph, pw = panels[0][1].shape[:2]
        gap, head = 4, 20
        width = len(panels) * (pw + gap) + gap
        height = head + ph + gap
        width += width % 2  # even sizes for video encoders
        height += height % 2
        canvas = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(canvas)
        for p, (name, image) in enumerate(panels):
            x = gap + p * (pw + gap)
            label = f"{name}  t={i}" if p == 0 else name
            draw.text((x, 3), fit_text(draw, label, small, pw), fill="black", font=small)
            canvas.paste(Image.fromarray(image), (x, head))
        out.append(np.asarray(canvas))
    return out


def save_cam_animation(frames, cams, path: PathLike, fps: float = 4.0, alpha: float = 0.5,
                       cmap: str = "jet") -> Path:
    """Write the CAM overlay as an animation, one frame per time step: `.gif` (Pillow, loops) or `.mp4`
    (PyAV; H.264 where the PyAV build has it, else MPEG-4 Part 2). Frames (T, H, W, 3), cams as in
    `save_cam_grid`. Returns the path."""
    path = Path(path)
    pictures = cam_animation_frames(frames, cams, alpha, cmap)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        images = [Image.fromarray(p) for p in pictures]
        images[0].save(path, save_all=True, append_images=images[1:], duration=int(round(1000 / fps)), loop=0)
    elif suffix == ".mp4":
        _write_mp4(pictures, path, fps)
    else:
        raise ValueError(f"save_cam_animation: {path}: expected a .gif or .mp4 file name")
    return path


def _write_mp4(pictures: list[np.ndarray], path: Path, fps: float) -> None:
    import av
    from fractions import Fraction

    rate = Fraction(fps).limit_denominator(1000)
    with av.open(str(path), mode="w") as container:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = container.add_stream(codec, rate=rate)
        stream.height, stream.width = pictures[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for picture in pictures:
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


__all__ = ["cam_animation_frames", "cam_grid_image", "default_cam_layers", "grad_cam", "list_layers",
           "preserved_state", "save_cam_animation", "save_cam_grid"]
