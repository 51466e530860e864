"""How Lightning writes and reads fineact's training checkpoints.

Writing is atomic: the checkpoint is serialised to a temporary file in the same folder, flushed to disk and
renamed over the old one (`os.replace`), so a crash while saving leaves the previous `last.ckpt` intact, never a
half-written one. (Lightning's default moves a file from the system temp folder, a plain copy when that folder is
on another file system.) Reading always uses `torch.load(weights_only=True)`: a checkpoint cannot run code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from fineact.files import atomic_write
from fineact.interop.weights import torch_load_weights_only


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    atomic_write(path, lambda handle: torch.save(obj, handle), "checkpoint",
                 then="continue the run with `fineact train CONFIG --resume`")


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict, path, storage_options: Optional[Any] = None) -> None:
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, path, map_location: Optional[Callable] = None,
                        weights_only: Optional[bool] = None) -> dict:
        return torch_load_weights_only(path, "checkpoint", map_location=map_location or "cpu")
