"""uint8 clips -> the model's float input: the one normalisation of every path.

Clips travel from the decoder through the DataLoader as uint8 ``(..., C, T, H, W)``: a quarter of the bytes of
float32 to copy between processes, pin and send to the device. They become the model's input only where the
model runs, as ``(x / 255 - mean) / std`` per channel:

* Lightning batches (train, validation, test, predict): ``RecognitionModule.on_after_batch_transfer``, i.e. on
  the device, after the transfer, which first does training's flips (``flip_marked``);
  ``RecognitionModule.forward`` normalises uint8 clips handed to it directly (``Predictor``) the same way;
* feature extraction and Grad-CAM: ``TestViews.model_input`` / ``Normalization.clips``;
* export: the JSON beside an exported model states these ``mean`` and ``std``, so a deployment feeds the graph
  the same numbers.

The arithmetic is ``x * scale + shift`` with ``scale = 1 / (255 * std)`` and ``shift = -mean / std`` in float32,
two elementwise operations: the same bits on any device and in the CPU transform ``Normalize``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data._utils.collate import default_collate

from fineact.errors import ConfigError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Normalization", "collate_batch", "flip_marked", "normalize"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float], channel_axis: int) -> torch.Tensor:
    """``(clip / 255 - mean) / std`` per channel of float (or uint8) ``clip`` -> float32, as ``x * scale + shift``."""
    trailing = (1,) * (-channel_axis - 1)  # the axes after the channel axis, broadcast
    std_t = torch.tensor(std, device=clip.device)
    scale = (1.0 / (255.0 * std_t)).view(3, *trailing)
    shift = (-torch.tensor(mean, device=clip.device) / std_t).view(3, *trailing)
    return clip.float() * scale + shift


@dataclass(frozen=True)
class Normalization:
    """Per-channel statistics of the model's input (ImageNet's by default) and the conversion to it."""

    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __post_init__(self):
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ConfigError(f"normalisation needs 3 means and 3 positive stds, got mean={self.mean}, "
                              f"std={self.std}")
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))

    def clip(self, clip: torch.Tensor) -> torch.Tensor:
        """A uint8 clip ``(..., C, T, H, W)`` -> the normalised float32 clip; a float clip is taken as already
        normalised and returned as it is (features, user tensors)."""
        if clip.dtype != torch.uint8:
            return clip
        # contiguous: the model sees the layout it always saw (trainer.channels_last converts it afterwards)
        return normalize(clip, self.mean, self.std, channel_axis=-4).contiguous()

    def clips(self, clips):
        """``clip`` on a clip tensor or on each pathway of a {pathway: clip} dict."""
        if isinstance(clips, dict):
            return {name: self.clip(clip) for name, clip in clips.items()}
        return self.clip(clips)


def flip_marked(clips, flipped: torch.Tensor):
    """Mirror along the width the clips of the samples marked in ``flipped`` (B,) bool: training's horizontal
    flip, drawn per sample in the worker (``ClipDatasetOptions.device_flip``, which also swapped the label) and
    done here, on the device, for a batch (B, ...) or each pathway of a {pathway: batch} dict."""
    def one(batch: torch.Tensor) -> torch.Tensor:
        if batch.device.type == "cpu":  # training on the CPU: copy only the marked clips, once
            marked = flipped.nonzero().flatten()
            if marked.numel():
                batch = batch.clone()
                batch[marked] = batch[marked].flip(-1)
            return batch
        marked = flipped.to(batch.device).view(-1, *(1,) * (batch.dim() - 1))
        return torch.where(marked, batch.flip(-1), batch)  # on an accelerator: no host sync on the flags

    return {name: one(t) for name, t in clips.items()} if isinstance(clips, dict) else one(clips)


def normalization_for(data_cfg=None) -> Normalization:
    """The normalisation a config's data pipeline uses (the ImageNet statistics; the one place to change it)."""
    return Normalization()


def collate_batch(items: list[dict]) -> dict:
    """``default_collate`` of dataset items, stacking uint8 clips in their memory order (channels innermost, as
    ``ToLoaderLayout`` leaves them): a plain copy into the worker's shared memory instead of a transpose. The
    batch has the usual axes, (B, C, T, H, W) or (B, V, C, T, H, W)."""
    items = [{**item, "clips": _map_uint8(item["clips"], lambda t: t.movedim(-4, -1))} for item in items]
    batch = default_collate(items)
    batch["clips"] = _map_uint8(batch["clips"], lambda t: t.movedim(-1, -4))
    return batch


def _map_uint8(clips, fn):
    one = lambda t: fn(t) if t.dtype == torch.uint8 else t  # noqa: E731
    return {name: one(t) for name, t in clips.items()} if isinstance(clips, dict) else one(clips)
