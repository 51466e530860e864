"""The Callback that accounts for unreadable videos: collect them from every batch, gather them across
processes, name each one once, and stop a training run when too many of a split cannot be read.

Datasets replace an unreadable training video by another sample and turn an unreadable evaluation video into
a placeholder the metrics ignore (data/datasets.py); each batch says which videos that happened to
(data/unreadable.py). This callback is the one place that keeps count:
- training: each new video is printed once, at the end of the epoch that met it, with its reason; past
  `data.max_bad_fraction` of the training split the run stops with the list (VideoDataModule.raise_if_too_many_bad);
- validation: printed once as "left out of the validation metrics";
- testing: kept in `evaluated` for the results file (every process's, gathered).
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback

from fineact.data.unreadable import UnreadableVideo, decode


def gather(videos: list[UnreadableVideo]) -> list[UnreadableVideo]:
    """Every process's `videos` (all-gathered under DDP; the list itself in a single process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        parts: list = [None] * dist.get_world_size()
        dist.all_gather_object(parts, videos)
        return [video for part in parts for video in part]
    return list(videos)


class UnreadableVideos(Callback):
    def __init__(self) -> None:
        self.training: list[UnreadableVideo] = []   # replaced by other samples
        self.evaluated: list[UnreadableVideo] = []  # left out of validation / test metrics
        self._reported: set[tuple[str, str]] = set()

    # -- collecting ------------------------------------------------------------------------------------------
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.training += decode(batch.get("skipped"))

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self.evaluated += decode(batch.get("skipped"))

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self.evaluated += decode(batch.get("skipped"))

    def on_test_start(self, trainer, pl_module) -> None:
        self.evaluated = []

    # -- reporting -------------------------------------------------------------------------------------------
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        videos = gather(self.training)
        self._report_new(trainer, videos, "data.train", "replaced by other samples")
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "raise_if_too_many_bad"):
            datamodule.raise_if_too_many_bad(videos)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._report_new(trainer, gather(self.evaluated), "data.val", "left out of the validation metrics")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.evaluated = gather(self.evaluated)

    def _report_new(self, trainer: L.Trainer, videos: list[UnreadableVideo], split_key: str,
                    what_happened: str) -> None:
        """Name each unreadable video once, with its reason, the first time an epoch meets it."""
        new: dict[str, UnreadableVideo] = {}
        for video in videos:
            if (split_key, video.path) not in self._reported:
                self._reported.add((split_key, video.path))
                new[video.path] = video
        if new and trainer.is_global_zero:
            lines = "".join(f"\n  {new[path].describe()}" for path in sorted(new))
            print(f"fineact: {len(new)} unreadable video(s) in {split_key}, {what_happened}:{lines}", flush=True)
