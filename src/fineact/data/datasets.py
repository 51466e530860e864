"""Torch datasets built from the pieces of the pipeline: samples -> indices -> decoded frames -> transforms.

Randomness is keyed, not global: the sampler (`KeyedSampler`) hands the dataset `(index, seed)` pairs made in
the main process from (base seed, epoch, position), and all randomness of a sample (frame choice, crop, flip,
replacement of an unreadable video) comes from a generator seeded with that key. Results are therefore the same
with 0 or 8 workers, on 1 or 4 processes, and after resuming from a checkpoint.

Unreadable videos (missing, corrupt, truncated, empty, too short): in training the sample is replaced by
another one drawn from the key's generator; in evaluation it becomes a placeholder with label -1 that the
metrics ignore (a replacement would count another video twice). Either way its path travels in the batch
("skipped") so the training process can count and name every one, across workers and processes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from fineact.data.annotations import Sample
from fineact.data.test_views import TestViews
from fineact.data.transforms import RandomHorizontalFlip
from fineact.data.unreadable import UnreadableVideo
from fineact.data.unreadable import encode as encode_unreadable
from fineact.data.video import probe_video, read_frames_union
from fineact.data.video_pool import read_window_union
from fineact.errors import ConfigError, VideoError

MAX_REPLACEMENTS = 20


def sample_seed(base_seed: int, epoch: int, position: int) -> int:
    return int(np.random.SeedSequence([base_seed, epoch, position]).generate_state(1)[0])


class KeyedSampler(Sampler):
    """Yields (dataset index, seed) keys: shuffled per epoch for training, in order for evaluation.

    With several processes, process `rank` takes positions rank, rank + world, ... Training pads the order so
    every process runs the same number of steps (a few samples repeat); evaluation does not pad, so each video
    is counted exactly once across processes.
    """

    def __init__(self, length: int, shuffle: bool, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.length, self.shuffle, self.seed = length, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self._resume: tuple[int, int] | None = None  # (epoch, this process's first position) of a resumed run
        self.first_position = 0                       # where the current pass over the epoch started

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, skip: int) -> None:
        """The next pass over `epoch` starts after this process's first `skip` keys (a mid-epoch resume): the
        keys after them are the same as in an uninterrupted pass. A pass over another epoch starts at 0."""
        self._resume = (int(epoch), int(skip))

    def _order(self) -> list[int]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.length).tolist()
            per_rank = math.ceil(self.length / self.world_size)
            order += order[: per_rank * self.world_size - self.length]
            return order
        return list(range(self.length))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = self._order()
        resume, self._resume = self._resume, None
        self.first_position = resume[1] if resume is not None and resume[0] == self.epoch else 0
        for position in range(self.rank + self.first_position * self.world_size, len(order), self.world_size):
            yield order[position], sample_seed(self.seed, self.epoch, position)

    def __len__(self) -> int:
        if self.shuffle:
            return math.ceil(self.length / self.world_size)
        return len(range(self.rank, self.length, self.world_size))


@dataclass
class ClipDatasetOptions:
    mode: str = "train"                   # train: one random view; test: every view (clips x crops)
    filename_template: str = "img_{:05d}.jpg"
    start_index: int = 1
    decode_threads: int = 1               # FFmpeg threads per worker (data.decode_threads)
    # Training's horizontal flip, drawn here after the transform (the numbers the transform's own flip step would
    # draw) and done on the device (model_input.flip_marked): mirroring is a copy of every byte, slow on a CPU
    # (1-2 ms for a 32-frame clip at 224, a third of the crop's resize) and free on a GPU.
    device_flip: RandomHorizontalFlip | None = None


class VideoClipDataset(Dataset):
    """Decoded, transformed clips of `samples` for a model's clip specs."""

    def __init__(self, samples: Sequence[Sample], frame_sampler, transform, options: ClipDatasetOptions,
                 crop_size: int):
        if not samples:
            raise ConfigError("dataset has no samples")
        self.samples = samples if isinstance(samples, Sequence) else list(samples)  # a pack's are read lazily
        self.frame_sampler = frame_sampler
        self.transform = transform
        self.options = options
        self.crop_size = crop_size
        self._frame_counts: dict[str, int] = {}  # per worker: probing a container costs an open

    def __len__(self) -> int:
        return len(self.samples)

    def _read_options(self, sample: Sample) -> dict:
        return {"filename_template": sample.filename_template if sample.is_frame_folder else
                self.options.filename_template,
                "start_index": sample.start_index if sample.is_frame_folder else self.options.start_index,
                "decode_threads": self.options.decode_threads}

    def frame_count(self, sample: Sample) -> int:
        """Frames in the sample's window: from the annotation when known, else probed once per worker."""
        if sample.end_frame is not None:
            return sample.end_frame - sample.start_frame
        if sample.num_frames is not None:
            return sample.num_frames
        if sample.source not in self._frame_counts:
            opts = self._read_options(sample)
            info = probe_video(sample.source, filename_template=opts["filename_template"],
                               start_index=opts["start_index"])
            self._frame_counts[sample.source] = info.num_frames - sample.start_frame
        count = self._frame_counts[sample.source]
        if count <= 0:
            raise VideoError(f"{sample.source}: no frames in the window starting at frame {sample.start_frame}")
        return count

    def load(self, sample: Sample, rng: np.random.Generator):
        """-> ({pathway: clip}, label, flipped) for one sample; raises VideoError when it cannot be read.

        Training gives one clip per pathway (C, T, H, W); evaluation every test view (V, C, T, H, W); uint8 with
        the standard transforms (normalised on the device: fineact.data.model_input). A training transform maps
        frames to frames (uint8 (T, H, W, 3) -> (C, T, H, W), the same crop and flip for every frame), so it runs
        once on the union of the pathways' frames. ``flipped``: the device is to mirror the clips
        (``options.device_flip``; the label is already the flipped clip's)."""
        mode = self.options.mode
        indices = self.frame_sampler.indices(self.frame_count(sample), mode, rng, start_frame=sample.start_frame)
        # Windows of untrimmed videos go through the per-worker pool of open videos (data/video_pool.py).
        read = read_window_union if sample.start_seconds is not None else read_frames_union
        union = read(sample.source, indices, **self._read_options(sample))
        if mode == "train":
            # The pathways share the crop and the flip, frame by frame: transform the union of their frames
            # once (the three pathways of 4x16, 8x8 and 32x2 share all 32 frames) and take each pathway's after.
            clip, label = self.transform(union.frames, sample.label, rng)
            flipped, flip = False, self.options.device_flip
            if flip is not None:
                flipped, label = flip.decide(label, rng)
            return union.take(clip), label, flipped
        return (*self._test_views.of_frames(union.split(), sample.label, rng), False)

    @property
    def _test_views(self) -> TestViews:
        return TestViews(self.frame_sampler, self.transform, self.crop_size)

    def placeholder(self):
        """Zero clips shaped like a real evaluation sample (label -1: ignored by the metrics)."""
        return self._test_views.placeholder()

    def __getitem__(self, key) -> dict:
        index, seed = key if isinstance(key, tuple) else (key, key)
        return self.keyed_item(index, seed)

    def keyed_item(self, index: int, seed: int, sample: Sample | None = None) -> dict:
        """Sample `index` (given as `sample` when the caller has it) with the randomness of key `seed`."""
        rng = np.random.default_rng(seed)
        skipped: list[UnreadableVideo] = []
        for _ in range(MAX_REPLACEMENTS):
            sample = sample or self.samples[index]
            try:
                clips, label, flipped = self.load(sample, rng)
                return self._item(clips, label, index, skipped, flipped)
            except VideoError as error:
                skipped.append(UnreadableVideo(str(sample.source), str(error)))
                if self.options.mode != "train":
                    return self._item(self.placeholder(), -1, index, skipped)
                index, sample = int(rng.integers(len(self.samples))), None
        raise VideoError(f"{MAX_REPLACEMENTS} unreadable videos in a row while drawing replacements; last: "
                         f"{skipped[-1].describe()}. Run `fineact check-data` on this config to list every bad video.")

    def _item(self, clips: dict, label: int, index: int, skipped: list[UnreadableVideo],
              flipped: bool = False) -> dict:
        single = list(clips) == ["clip"]
        item = {"clips": clips["clip"] if single else clips, "label": torch.tensor(label, dtype=torch.long),
                "index": torch.tensor(index, dtype=torch.long), "skipped": encode_unreadable(skipped)}
        if self.options.device_flip is not None:  # only then has the device flips to do
            item["flipped"] = torch.tensor(flipped)
        return item
