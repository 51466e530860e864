"""A training loader that can resume in the middle of an epoch, exactly.

Its state is (epoch, batches the training loop has taken this epoch). Lightning does not pre-fetch from a loader
with a length, so the batches this loader's iterator has yielded are exactly the batches trained on when a
checkpoint is written (worker pre-fetching happens behind the iterator and is not counted). On resume the keyed
sampler skips those batches' keys (no video is decoded for them), and every later batch is the one the
uninterrupted run would have had: same samples, same per-sample seeds (see data/datasets.py, KeyedSampler).

The state travels in the checkpoint through the datamodule (`VideoDataModule.state_dict`, any train loader with
`state_dict` / `load_state_dict`, a streaming pack's too) and is handed to the loader when it is built, before
its first iterator: Lightning restores the datamodule before it builds the loaders, while its own loader-state
slot (`fit_loop.state_dict.combined_loader`) is restored after the first loader was built and iterated for
`estimated_stepping_batches` (configure_optimizers), hence too late. The state also sets the sampler's epoch:
Lightning sets it only after creating the epoch's iterator, and a worker process starts drawing keys at once.
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import DataLoader


class _CountingIterator:
    """The DataLoader's iterator, counting the batches it hands out."""

    def __init__(self, iterator, loader: "ResumableLoaderMixin"):
        self._iterator, self._loader = iterator, loader

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self._iterator)
        self._loader._batches_yielded += 1
        return batch

    def __len__(self) -> int:
        return len(self._iterator)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._iterator, name)


class ResumableLoaderMixin:
    """For a DataLoader whose sampler has `epoch`, `set_epoch`, `resume_at(epoch, skip)` (KeyedSampler)."""

    _batches_yielded = 0
    epoch_length: int | None = None  # batches the training loop takes per epoch (limit_train_batches); None: all

    def __iter__(self):
        self._batches_yielded = 0
        return _CountingIterator(super().__iter__(), self)

    def state_dict(self) -> dict:
        sampler = self.sampler
        skipped = sampler.first_position // self.batch_size  # batches the resumed pass did not yield again
        batches = skipped + self._batches_yielded
        length = self.epoch_length if self.epoch_length is not None else len(self)
        return {"epoch": int(sampler.epoch), "batches": batches, "batch_size": int(self.batch_size),
                "world_size": int(sampler.world_size), "epoch_finished": batches >= length}

    def load_state_dict(self, state: dict) -> None:
        if state["epoch_finished"]:  # an end-of-epoch checkpoint: the next epoch, from its start
            self.sampler.set_epoch(state["epoch"] + 1)
            return
        # Keys taken by all processes, shared out again: another process count with the same global batch
        # (resume_check.py allows it) continues at the same place of the epoch's order.
        taken = state["batches"] * state["batch_size"] * state["world_size"]
        self.sampler.set_epoch(state["epoch"])
        self.sampler.resume_at(state["epoch"], taken // self.sampler.world_size)


class ResumableDataLoader(ResumableLoaderMixin, DataLoader):
    pass
