"""Speed options of the Trainer: `trainer.channels_last` and `trainer.compile`, applied by one Lightning Callback.

They change how the model runs, never what it computes, so they live next to the Trainer (engineering) and not
in the LightningModule (the science). `build_trainer` adds `PerformanceOptions` when either option is on:

- channels_last: the model's weights in channels_last (2D models) or channels_last_3d (3D models), and every
  clip of every batch with its channels innermost in memory, so the first conv reads it without a conversion.
- compile: torch.compile of the model in place (nn.Module.compile: state-dict keys stay the same).
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


def compile_model(model: torch.nn.Module, backend: str = "inductor", mode: str = "default") -> torch.nn.Module:
    """torch.compile `model` in place (nn.Module.compile: its state-dict keys stay the same), with static shapes.

    Why static: every fineact model compiles to one graph, and a new clip shape (the last, smaller batch; eval)
    then gets a graph of its own. PyTorch's default makes a size symbolic once it has seen two values of it, and
    inductor (torch 2.13) fails on these networks with symbolic sizes: in the backward of nearest upsampling
    (seen on the second of two models compiled in one process) and, with every size symbolic, at the stem."""
    options = {"backend": backend, "dynamic": False}
    if mode != "default":
        options["mode"] = mode
    model.compile(**options)
    return model


def to_channels_last(model: torch.nn.Module) -> torch.nn.Module:
    """channels_last memory format for a 2D model, channels_last_3d for one with 3D convs; in place."""
    is_3d = any(isinstance(m, torch.nn.Conv3d) for m in model.modules())
    return model.to(memory_format=torch.channels_last_3d if is_3d else torch.channels_last)


def channels_last_clip(clip: torch.Tensor) -> torch.Tensor:
    """A clip with its channels innermost in memory: (N, C, T, H, W) as channels_last_3d, and an evaluation
    batch (B, V, C, T, H, W) such that its (B*V, C, T, H, W) view is channels_last_3d. Any other rank is left
    as it is, for the model's own shape check to name."""
    if clip.dim() == 5:
        return clip.contiguous(memory_format=torch.channels_last_3d)
    if clip.dim() == 6:  # B, V, T, H, W, C in memory: flattening B and V stays a view
        return clip.permute(0, 1, 3, 4, 5, 2).contiguous().permute(0, 1, 5, 2, 3, 4)
    return clip


def channels_last_clips(clips):
    """`channels_last_clip` on a clip tensor or on each pathway of a {pathway: clip} dict."""
    if isinstance(clips, dict):
        return {name: channels_last_clip(clip) for name, clip in clips.items()}
    return channels_last_clip(clips)


class PerformanceOptions(Callback):
    """Applies trainer.channels_last / trainer.compile to the module's `model` and (channels_last) to each
    batch's "clips", once the batch is on the device (Lightning calls the batch-start hooks after the
    transfer)."""

    def __init__(self, channels_last: bool = False, compile: bool = False, compile_backend: str = "inductor",
                 compile_mode: str = "default"):
        self.channels_last = channels_last
        self.compile = compile
        self.compile_backend, self.compile_mode = compile_backend, compile_mode

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        prepare_model(pl_module.model, self.channels_last, self.compile, self.compile_backend, self.compile_mode)

    def _convert(self, batch) -> None:
        if self.channels_last and isinstance(batch, dict) and "clips" in batch:
            batch["clips"] = channels_last_clips(batch["clips"])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._convert(batch)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._convert(batch)

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._convert(batch)

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._convert(batch)


def prepare_model(model: torch.nn.Module, channels_last: bool, compile: bool, compile_backend: str = "inductor",
                  compile_mode: str = "default") -> torch.nn.Module:
    """The model as the options ask, in place; compiled once however often a Trainer sets it up."""
    if channels_last:
        to_channels_last(model)
    if compile and not getattr(model, "_fineact_compiled", False):
        compile_model(model, compile_backend, compile_mode)
        model._fineact_compiled = True
    return model


def performance_callbacks(trainer_cfg) -> list[Callback]:
    """[PerformanceOptions] when the config turns channels_last or compile on, else nothing."""
    if not (trainer_cfg.channels_last or trainer_cfg.compile):
        return []
    return [PerformanceOptions(bool(trainer_cfg.channels_last), bool(trainer_cfg.compile),
                               trainer_cfg.compile_backend, trainer_cfg.compile_mode)]
