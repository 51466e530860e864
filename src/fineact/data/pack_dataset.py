"""Reading a pack (data/packs.py) for training and evaluation: LitData streams it, fineact decodes each record.

LitData's `StreamingDataset` decides which records each process and loader worker reads and in which order:
whole chunks are assigned to ranks x workers, shuffled per epoch (training), read sequentially, from a local
folder or an object store (s3://, gs://, az:// through LitData's own clients). fineact then treats each record as
the file-reading dataset treats a video (datasets.py): same frame sampler, same transforms, same unreadable-
record policy, and the same key: a record gets exactly the seed `KeyedSampler` gives its sample in that epoch
(the key of the sample's first place in the epoch's order), so a sample's clip in epoch e is the same whether
it is read from the files or from the pack; only the order of samples within the epoch differs.

Each epoch reads every record once across all ranks x workers. In training with several processes LitData
drops the last few records of the shuffled epoch (fewer than ranks x workers x batch size; different ones
every epoch) so every process runs the same number of steps; evaluation reads every record exactly once.
`PackLoader.state_dict()` is LitData's loader state (the samples each worker has yielded): loaded into a new
loader, the epoch continues where it stopped (see PackLoader for what Lightning's checkpoints do with it).
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Callable

import numpy as np
from litdata import StreamingDataLoader, StreamingDataset

from fineact.data.annotations import Sample
from fineact.data.datasets import ClipDatasetOptions, VideoClipDataset, sample_seed
from fineact.data.packs import sample_of
from fineact.data.video import EncodedVideo


class PackRecords(Sequence):
    """The pack's records as Samples by position (random access: used for replacements of bad records)."""

    def __init__(self, pack: "PackClipDataset"):
        self.pack = pack

    def __len__(self) -> int:
        return self.pack.num_records

    def __getitem__(self, position: int) -> Sample:
        if isinstance(position, int) and not 0 <= position < len(self):
            raise IndexError(f"record {position} of a pack of {len(self)}")  # ends iteration, as a list does
        return self.pack.sample_at(position)


class PackClipDataset(StreamingDataset):
    """Decoded, transformed clips of a pack, streamed by LitData."""

    def __init__(self, location: str, num_records: int, frame_sampler, transform, options: ClipDatasetOptions,
                 crop_size: int, seed: int, cache_dir: str | None = None, storage_options: dict | None = None):
        self._arguments = (location, num_records, frame_sampler, transform, options, crop_size, seed, cache_dir,
                           storage_options)
        train = options.mode == "train"
        # Evaluation never drops: each video counted once. Training under DDP takes LitData's default (drop
        # the shuffled epoch's last few records so every process takes the same number of steps).
        super().__init__(location, shuffle=train, drop_last=None if train else False, seed=seed,
                         cache_dir=cache_dir, storage_options=storage_options or {})
        self.location, self.base_seed, self.num_records = location, seed, num_records  # len(self): this rank's
        self.clips = VideoClipDataset(PackRecords(self), frame_sampler, transform, options, crop_size)
        self._first_places: tuple[int, np.ndarray] | None = None

    @property
    def samples(self) -> PackRecords:
        """The records as Samples, as VideoClipDataset.samples (read e.g. for the typical clip duration)."""
        return self.clips.samples

    def for_this_process(self) -> "PackClipDataset":
        """The same dataset made anew: LitData learns the distributed world (ranks) when a dataset is made,
        and a run makes its datasets before DDP starts (to check the config early)."""
        return PackClipDataset(*self._arguments)

    def sample_at(self, position) -> Sample:
        """The record at `position` (an int, or LitData's ChunkedIndex) as a Sample; an unreadable record
        becomes a Sample whose video fails to open, naming the record and what went wrong."""
        try:
            record = super().__getitem__(position)
        except Exception as error:  # a damaged chunk: whatever LitData's deserializers raise
            number = getattr(position, "index", position)
            return Sample(source=EncodedVideo(b"", f"record {number} of pack {self.location} (unreadable "
                                                    f"record: {type(error).__name__}: {error})"), label=-1)
        return sample_of(record, self.location)

    def __getitem__(self, index) -> dict:
        position = int(getattr(index, "index", index))
        return self.clips.keyed_item(position, self.key(position), self.sample_at(index))

    def key(self, position: int) -> int:
        """The seed KeyedSampler gives sample `position` this epoch (LitData counts epochs from 1)."""
        epoch = max(self.current_epoch - 1, 0)
        if self.clips.options.mode != "train":
            return sample_seed(self.base_seed, epoch, position)
        if self._first_places is None or self._first_places[0] != epoch:
            order = np.random.default_rng([self.base_seed, epoch]).permutation(self.num_records)
            places = np.empty(len(order), np.int64)
            places[order] = np.arange(len(order))
            self._first_places = (epoch, places)
        return sample_seed(self.base_seed, epoch, int(self._first_places[1][position]))



class PackLoader(StreamingDataLoader):
    """LitData's loader, its epoch counter following the trainer's (`epoch_of`), so keys and shuffles are
    those of the training epoch also after a resumed run. Lightning saves its `state_dict()` in checkpoints and
    loads it back on resume: a state saved at an epoch's end is dropped (the next epoch starts afresh; tested); a
    state saved mid-epoch is left to LitData to continue (measured with LitData's loader alone, not yet through
    Lightning's mid-epoch checkpoints)."""

    def __init__(self, dataset: PackClipDataset, epoch_of: Callable[[], int] | None = None, **kwargs):
        super().__init__(dataset, **kwargs)
        self.epoch_of = epoch_of

    def __iter__(self):
        if self.num_workers > 0:
            gc.collect()  # as ForkSafeDataLoader (engine/datamodule.py): nothing for forked workers to free
        # A generator: the epoch is read at the first batch, not when Lightning makes the iterator (on a resumed
        # run it makes it before restoring the epoch counter).
        if self.epoch_of is not None:
            epoch = self.epoch_of()
            if self.restore and self.current_epoch != epoch + 1:
                # Lightning saved the state at the end of an earlier epoch: nothing of this one to continue.
                self.restore = False
            if not self.restore:
                self.current_epoch = epoch  # LitData adds one as the epoch starts
        yield from super().__iter__()
