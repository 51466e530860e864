"""The test protocol in one place: which frames, which crops, and the clip x crop views of one video.

    views = TestViews.from_config(cfg.data, model.clip_specs)
    clips = views.of_video("clip.mp4")          # {pathway: uint8 (V, C, T, H, W)}, V = clip_views * crop_views
    inputs = views.model_input(clips)           # normalised float32, on the clips' device

A video is seen at test time as `clip_views` clips (the frame sampler's: `data.test_clips` dense windows, or 2
TSN segment clips with `data.twice_sample`) times `crop_views` crops (the transform's: `data.test_crops` = 1, 3
or 10), clip-major: view `c * crop_views + k` is crop k of clip c. Evaluation (the datamodule's test datasets),
`fineact predict`, feature extraction and Grad-CAM all read their clips through this module, so a video is
seen the same way by each; export describes the same input size and normalisation. Views are uint8 until
`model_input` (fineact.data.model_input) normalises them, on the device where the model runs.

The test protocol draws no random numbers (centred windows and crops), so its views depend on the video only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fineact.data.model_input import Normalization, normalization_for
from fineact.data.sampling import sampler_for
from fineact.data.transforms import Compose, build_test_transform, resize_target
from fineact.data.video import probe_video, read_frames_multi

__all__ = ["TestViews", "stack_views"]


def stack_views(frames: Mapping[str, Any], label: Any, clip_views: int, transform: Compose,
                rng: np.random.Generator) -> tuple[dict[str, torch.Tensor], Any]:
    """Decoded frames of `clip_views` clips (clip-major, as the samplers return them) -> every clip's crops.

    -> ({pathway: (clip_views * crop_views, C, T, H, W)}, label): each clip goes through the transform on its
    own (it crops one clip into `crop_views` views, or gives one view without a view axis), then the views are
    concatenated clip by clip.
    """
    per_clip = {name: f.reshape(clip_views, -1, *f.shape[1:]) for name, f in frames.items()}
    outputs = []
    for c in range(clip_views):
        clips, label = transform({name: f[c] for name, f in per_clip.items()}, label, rng)
        outputs.append({name: t if t.dim() == 5 else t.unsqueeze(0) for name, t in clips.items()})
    return {name: torch.cat([o[name] for o in outputs]) for name in outputs[0]}, label


@dataclass(frozen=True)
class TestViews:
    """A frame sampler and a test transform, applied as the test protocol: every clip, every crop."""

    __test__ = False  # not a pytest test class, despite the name

    frame_sampler: Any   # SegmentSampler | DenseSampler | MultiPathwaySampler
    transform: Compose
    crop_size: int
    normalization: Normalization = Normalization()

    @classmethod
    def from_config(cls, data, clip_specs: Mapping) -> "TestViews":
        """The views `data` (the config's data section) asks for, for a model's `clip_specs`."""
        frame_sampler = sampler_for(clip_specs, num_clips=data.test_clips, twice=data.twice_sample,
                                    short_video=data.short_video)
        transform = build_test_transform(data.crop_size, resize_target(data.resize), data.test_crops)
        return cls(frame_sampler, transform, data.crop_size, normalization_for(data))

    @property
    def clip_views(self) -> int:
        """Clips per video (frame windows, or TSN segment clips)."""
        return self.frame_sampler.clip_views("test")

    @property
    def crop_views(self) -> int:
        """Crops per clip."""
        return self.transform.crop_views

    @property
    def views(self) -> int:
        """Views per video: clips x crops."""
        return self.clip_views * self.crop_views

    @property
    def mean(self) -> tuple[float, ...]:
        return self.normalization.mean

    @property
    def std(self) -> tuple[float, ...]:
        return self.normalization.std

    def model_input(self, clips):
        """uint8 views (a tensor or {pathway: tensor}, any leading axes) -> the model's normalised float input."""
        return self.normalization.clips(clips)

    def indices(self, num_frames: int, rng: np.random.Generator, start_frame: int = 0) -> dict[str, np.ndarray]:
        """Frame indices of every clip view: {pathway: (clip_views * T,)}."""
        return self.frame_sampler.indices(num_frames, "test", rng, start_frame=start_frame)

    def of_frames(self, frames: Mapping[str, Any], label: Any, rng: np.random.Generator):
        """Decoded frames at `indices` -> ({pathway: uint8 (views, C, T, H, W)}, label)."""
        return stack_views(frames, label, self.clip_views, self.transform, rng)

    def of_video(self, source: str | Path) -> dict[str, torch.Tensor]:
        """Every view of a whole video file (or frame folder): {pathway: uint8 (views, C, T, H, W)}."""
        rng = np.random.default_rng(0)  # the protocol draws nothing; a fixed generator keeps it so regardless
        frames = read_frames_multi(source, self.indices(probe_video(source).num_frames, rng))
        return self.of_frames(frames, None, rng)[0]

    def placeholder(self) -> dict[str, torch.Tensor]:
        """Zero views shaped like a real video's: {pathway: uint8 (views, 3, T, crop_size, crop_size)}."""
        size = self.crop_size
        return {name: torch.zeros(self.views, 3, t, size, size, dtype=torch.uint8)
                for name, t in self.frame_sampler.frames_per_view.items()}
