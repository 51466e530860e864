"""The LightningDataModule: datasets and loaders built from the config and the model's clip specs."""

from __future__ import annotations

import gc
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader

from fineact.data.annotations import Sample, read_annotations, read_finegym_untrimmed_split
from fineact.data.datasets import ClipDatasetOptions, KeyedSampler, VideoClipDataset
from fineact.data.model_input import collate_batch
from fineact.data.sampling import sampler_for
from fineact.data.test_views import TestViews
from fineact.data.transforms import RandomHorizontalFlip, build_train_transform, resize_target
from fineact.data.unreadable import UnreadableVideo
from fineact.data.untrimmed import MISSING_VIDEOS_FILE, UntrimmedSplits
from fineact.engine.resumable_loader import ResumableLoaderMixin
from fineact.errors import ConfigError, FineactError
from fineact.labels import LabelLevels


class ForkSafeDataLoader(DataLoader):
    """A DataLoader that collects garbage before it starts worker processes.

    Objects in reference cycles are freed whenever the collector runs; in a forked worker that means freeing
    copies of the parent's objects, e.g. decoded video frames whose FFmpeg threads exist only in the parent, and
    freeing those joins threads that are not there (a segfault mid-epoch). Collecting in the parent first leaves
    the workers nothing of the kind to free.
    """

    def __iter__(self):
        if self.num_workers > 0:
            gc.collect()
        return super().__iter__()


class ResumableTrainLoader(ResumableLoaderMixin, ForkSafeDataLoader):
    """The training loader: resumes in the middle of an epoch (engine/resumable_loader.py)."""


def read_split(cfg: DictConfig, levels: LabelLevels, split: str) -> list[Sample]:
    """Samples of `data.<split>` in the configured annotation format."""
    data = cfg.data
    node = data[split]
    if node is None:
        raise ConfigError(f"data.{split}: not configured")
    fmt = data.format
    options: dict = {}
    if fmt in ("finegym", "diving48", "frame_list", "sthv1_list", "sthv1_csv"):
        options["filename_template"] = data.filename_template
        options["start_index"] = data.start_index
    if fmt in ("finegym", "diving48"):
        options["frame_folders"] = data.frame_folders
    if fmt == "finegym":
        options["levels"] = levels
    elif fmt in ("sthv1_csv", "kinetics_csv"):
        options["label_names"] = levels.class_names[levels.finest]
    elif fmt in ("video_list", "frame_list", "sthv1_list", "diving48"):
        options["num_classes"] = levels.num_classes[levels.finest]
    if fmt == "finegym" and data.finegym_annotations:
        if data.frame_folders:
            raise ConfigError("data.finegym_annotations reads untrimmed videos; it cannot be combined with "
                              "data.frame_folders=true (frame folders are trimmed clips)")
        return read_finegym_untrimmed_split(node.annotations, node.data_root, data.finegym_annotations,
                                            levels=levels)
    return read_annotations(fmt, node.annotations, node.data_root, **options)


def scan_untrimmed(cfg: DictConfig, levels: LabelLevels, splits: list[str] | None = None) -> UntrimmedSplits:
    """Untrimmed FineGym: read `splits` (default: every configured one) and probe each of their videos once."""
    splits = splits or [s for s in ("train", "val", "test") if cfg.data[s] is not None]
    return UntrimmedSplits.scan({split: read_split(cfg, levels, split) for split in splits})


class VideoDataModule(L.LightningDataModule):
    def __init__(self, cfg: DictConfig, levels: LabelLevels, model: nn.Module):
        super().__init__()
        self.cfg = cfg
        self.levels = levels
        self.clip_specs = model.clip_specs
        self.eval_split = "val"
        self._datasets: dict[str, VideoClipDataset] = {}
        self.untrimmed: UntrimmedSplits | None = None  # data.finegym_annotations: the up-front video scan
        self._train_loader: DataLoader | None = None
        self._train_loader_state: dict | None = None  # from a checkpoint, for the next train loader

    # -- datasets ----------------------------------------------------------------------------------------
    def dataset(self, split: str, mode: str | None = None) -> VideoClipDataset:
        """`split`'s dataset; mode "train" (random view, augmented) by default for train, else "test"."""
        mode = mode or ("train" if split == "train" else "test")
        key = f"{split}/{mode}"
        if key not in self._datasets:
            data = self.cfg.data
            device_flip = None
            if mode == "train":
                frame_sampler = sampler_for(self.clip_specs, short_video=data.short_video)
                # the flip is drawn by the dataset and done on the device (ClipDatasetOptions.device_flip)
                transform = build_train_transform(data.train_crop, data.crop_size, resize_target(data.resize),
                                                  flip=False)
                if data.flip:
                    device_flip = RandomHorizontalFlip(0.5, dict(data.flip_label_map) or None)
            else:
                views = TestViews.from_config(data, self.clip_specs)
                frame_sampler, transform = views.frame_sampler, views.transform
            options = ClipDatasetOptions(mode=mode, filename_template=data.filename_template,
                                         start_index=data.start_index, decode_threads=data.decode_threads,
                                         device_flip=device_flip)
            if data[split] is not None and data[split].shards:
                self._datasets[key] = pack_dataset(self.cfg, split, frame_sampler, transform, options)
            else:
                self._datasets[key] = VideoClipDataset(self.split_samples(split, mode), frame_sampler,
                                                       transform, options, data.crop_size)
        return self._datasets[key]

    # -- untrimmed FineGym ---------------------------------------------------------------------------------
    def split_samples(self, split: str, mode: str = "test") -> list[Sample]:
        """`split`'s samples; untrimmed FineGym: those of present videos, after one scan of the videos (of every
        configured split when training starts, so the missing-video table is complete before the first step)."""
        if not self.cfg.data.finegym_annotations:
            return read_split(self.cfg, self.levels, split)
        if self.untrimmed is None or split not in self.untrimmed.all_samples:
            self.untrimmed = scan_untrimmed(self.cfg, self.levels, None if mode == "train" else [split])
            if any(total["left_out"] for total in self.untrimmed.table.totals.values()):
                print(f"fineact: {self.untrimmed.table.format()}", flush=True)
        if mode == "train":
            self.untrimmed.raise_if_too_many_missing(split, self.cfg.data.max_bad_fraction)
        return self.untrimmed.samples(split)

    def write_missing_videos(self, output_dir) -> None:
        """<output_dir>/missing_videos.json (untrimmed FineGym only)."""
        if self.untrimmed is not None:
            self.untrimmed.table.write(Path(output_dir) / MISSING_VIDEOS_FILE)

    def coverage(self, split: str) -> dict:
        """For the results file: what the evaluation of `split` covered (untrimmed FineGym only, else {})."""
        if self.untrimmed is None or split not in self.untrimmed.all_samples:
            return {}
        return {"coverage": self.untrimmed.coverage(split)}

    # -- loaders -----------------------------------------------------------------------------------------
    def keyed_sampler(self, length: int, shuffle: bool) -> KeyedSampler:
        """This process's share of (index, seed) keys over `length` samples (see KeyedSampler)."""
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        return KeyedSampler(length, shuffle=shuffle, seed=self.cfg.seed, rank=rank, world_size=world)

    def train_dataloader(self) -> DataLoader:
        loader = self._loader(self.dataset("train"), shuffle=True, loader_class=ResumableTrainLoader)
        if self._train_loader_state is not None:
            loader.load_state_dict(self._train_loader_state)
            self._train_loader_state = None
        self._train_loader = loader
        return loader

    # -- mid-epoch resume (engine/resumable_loader.py): the train loader's position travels in checkpoints ---
    def state_dict(self) -> dict:
        loader = self._train_loader
        if loader is None or not callable(getattr(loader, "state_dict", None)):
            return {}
        trainer = self.trainer
        if hasattr(loader, "epoch_length") and trainer is not None and trainer.num_training_batches != float("inf"):
            loader.epoch_length = int(trainer.num_training_batches)
        return {"train_loader": loader.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self._train_loader_state = state.get("train_loader")

    def eval_dataloader(self, split: str) -> DataLoader:
        """Every video of `split` (any split, the train split too) once, in order, with all its test views."""
        return self._loader(self.dataset(split, "test"), shuffle=False)

    def val_dataloader(self) -> DataLoader:
        return self.eval_dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self.eval_dataloader(self.eval_split)

    def predict_dataloader(self) -> DataLoader:
        return self.eval_dataloader(self.eval_split)

    def _loader(self, dataset: VideoClipDataset, shuffle: bool, loader_class=ForkSafeDataLoader) -> DataLoader:
        data = self.cfg.data
        workers = data.num_workers
        if not isinstance(dataset, VideoClipDataset):  # a pack: LitData orders and shares out the records
            return pack_loader(dataset, self, workers)
        # A generator of its own: a loader's iterator then never draws from the global RNG, whose stream
        # (dropout) is thus the same in a resumed run as in an uninterrupted one.
        generator = torch.Generator().manual_seed(self.cfg.seed)
        return loader_class(dataset, batch_size=data.batch_size, generator=generator,
                                  sampler=self.keyed_sampler(len(dataset), shuffle), num_workers=workers,
                                  collate_fn=collate_batch,
                                  pin_memory=data.pin_memory and torch.cuda.is_available(),
                                  persistent_workers=data.persistent_workers and workers > 0, drop_last=False,
                                  prefetch_factor=data.prefetch_factor if workers > 0 else None,
                                  multiprocessing_context="fork" if workers > 0 and _fork_ok() else None)

    # -- bad videos --------------------------------------------------------------------------------------
    def raise_if_too_many_bad(self, skipped: list[UnreadableVideo], split: str = "train") -> None:
        """Fail loudly when more than data.max_bad_fraction of a split's videos could not be read."""
        bad = sorted({video.path for video in skipped})
        if not bad or f"{split}/train" not in self._datasets:
            return
        dataset = self._datasets[f"{split}/train"]
        total = getattr(dataset, "num_records", None) or len(dataset)
        share = len(bad) / total
        if share > self.cfg.data.max_bad_fraction:
            listing = "\n  ".join(bad[:50]) + (f"\n  ... ({len(bad)} in all)" if len(bad) > 50 else "")
            raise FineactError(f"{len(bad)} of {total} videos ({100 * share:.1f}%) in data.{split} could not be "
                               f"read, more than data.max_bad_fraction={self.cfg.data.max_bad_fraction}:\n  "
                               f"{listing}")


def pack_dataset(cfg: DictConfig, split: str, frame_sampler, transform, options: ClipDatasetOptions):
    """data.<split>.shards: the pack's dataset, once its index shows it was made from this config's data."""
    from fineact.data.pack_dataset import PackClipDataset
    from fineact.data.packs import PackIndex

    location = cfg.data[split].shards
    index = PackIndex.read(location)
    index.check_matches(cfg, split, location)
    return PackClipDataset(location, index.num_samples, frame_sampler, transform, options, cfg.data.crop_size,
                           seed=cfg.seed)


def pack_loader(dataset, datamodule: VideoDataModule, workers: int) -> DataLoader:
    """LitData's loader over a pack; its epochs follow the trainer's (see PackLoader)."""
    from fineact.data.pack_dataset import PackLoader

    data = datamodule.cfg.data
    epoch_of = (lambda: datamodule.trainer.current_epoch) if datamodule.trainer is not None else None
    return PackLoader(dataset.for_this_process(), epoch_of=epoch_of, batch_size=data.batch_size,
                      num_workers=workers, collate_fn=collate_batch,
                      pin_memory=data.pin_memory and torch.cuda.is_available(),
                      prefetch_factor=data.prefetch_factor if workers > 0 else None,
                      multiprocessing_context="fork" if workers > 0 and _fork_ok() else None)


def _fork_ok() -> bool:
    import multiprocessing as mp

    return "fork" in mp.get_all_start_methods()
