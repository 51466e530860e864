"""The LightningModule: loss per level, evaluation with view aggregation, metrics, optimiser wiring.

A batch is a dict: "clips" (a tensor, or {pathway: tensor} for multi-pathway models; evaluation batches carry
a view axis after the batch axis: (B, V, C, T, H, W)), "label" (finest labels), "index" (sample indices) and
"skipped" (paths of unreadable videos the dataset replaced, so they can be counted across workers).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from fineact.engine.metrics import LevelMetrics
from fineact.engine.model_factory import build_from_config
from fineact.engine.optim import build_optimizer
from fineact.errors import FineactError
from fineact.labels import LabelLevels, consistent_predict


def _map_clips(clips, fn):
    return {k: fn(v) for k, v in clips.items()} if isinstance(clips, dict) else fn(clips)


def _channels_last_clip(clip: torch.Tensor) -> torch.Tensor:
    """A (N, C, T, H, W) clip in channels_last_3d; anything else as it is, for the model's own shape check."""
    return clip.contiguous(memory_format=torch.channels_last_3d) if clip.dim() == 5 else clip


def _first(clips) -> torch.Tensor:
    return next(iter(clips.values())) if isinstance(clips, dict) else clips


class RecognitionModule(L.LightningModule):
    """Trains and evaluates any fineact model on any label levels.

    Saved hyperparameters (the config and the label levels) are enough to rebuild the model from a checkpoint.
    """

    def __init__(self, config: dict, levels: dict):
        super().__init__()
        self.save_hyperparameters()
        self.cfg: DictConfig = OmegaConf.create(config)
        self.levels = LabelLevels.from_dict(levels)
        self.model, self.trained_levels, num_classes = build_from_config(self.cfg, self.levels)
        weights = dict(self.cfg.loss.weights) or dict(getattr(self.model, "loss_weights", {}) or {})
        self.loss_weights = {level: float(weights.get(level, 1.0)) for level in self.trained_levels}
        consistent = bool(self.cfg.eval.consistent) and len(self.trained_levels) > 1 \
            and self.levels.finest in self.trained_levels
        self.val_metrics = LevelMetrics(num_classes, tuple(self.cfg.eval.topk), consistent)
        self.test_metrics = LevelMetrics(num_classes, tuple(self.cfg.eval.topk), consistent)
        self.skipped_videos: list[str] = []  # evaluation: left out of the metrics
        self.skipped_train_videos: list[str] = []  # training: replaced by other samples
        self._reported_skips: set[tuple[str, str]] = set()
        self.test_results: dict | None = None

    def configure_model(self) -> None:
        """Speed options from the config: channels_last memory format (GPU and CPU) and torch.compile."""
        if self.cfg.trainer.channels_last:
            to_channels_last(self.model)
        trainer = self.cfg.trainer
        if trainer.compile and not getattr(self, "_compiled", False):
            compile_model(self.model, trainer.compile_backend, trainer.compile_mode)
            self._compiled = True

    # -- forward -----------------------------------------------------------------------------------------
    def forward(self, clips) -> dict[str, torch.Tensor]:
        if self.cfg.trainer.channels_last:  # clips in the model's layout: the first conv reads them as they are
            clips = _map_clips(clips, _channels_last_clip)
        outputs = self.model(clips)
        if isinstance(outputs, torch.Tensor):
            return {self.trained_levels[0]: outputs}
        return {level: outputs[level] for level in self.trained_levels}

    def forward_cached(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Logits from cached pathway features (two-stage recipe with frozen pathways)."""
        outputs = self.model.forward_from_features(features)
        return {level: outputs[level] for level in self.trained_levels}

    def targets(self, finest: torch.Tensor) -> dict[str, torch.Tensor]:
        derived = self.levels.derive_batch(finest)
        return {level: derived[level] for level in self.trained_levels}

    def compute_loss(self, outputs: dict, targets: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # Weighted sum of per-level cross-entropies (multi-task default weights 1 : 2 : 4, seed 000 eq. 2).
        per_level = {level: F.cross_entropy(outputs[level], targets[level],
                                            label_smoothing=self.cfg.loss.label_smoothing)
                     for level in self.trained_levels}
        total = sum(self.loss_weights[level] * loss for level, loss in per_level.items())
        return total, per_level

    # -- training ----------------------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        self._note_skipped(batch, self.skipped_train_videos)
        if "features" in batch:  # cached features (B, V, D): train on the first view
            outputs = self.forward_cached({k: v[:, 0] for k, v in batch["features"].items()})
        else:
            outputs = self(batch["clips"])
        loss, per_level = self.compute_loss(outputs, self.targets(batch["label"]))
        if not torch.isfinite(loss):
            raise FineactError(f"loss is {loss.item()} at epoch {self.current_epoch}, step {self.global_step} "
                               "(per level: " + ", ".join(f"{k}={v.item():.4g}" for k, v in per_level.items())
                               + "); stopping. The last checkpoint written before this step is intact; lower "
                               "optim.lr or check the data.")
        batch_size = batch["label"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        self.log("train/loss_epoch", loss, on_step=False, on_epoch=True, batch_size=batch_size)
        for level, value in per_level.items():
            self.log(f"train/loss_{level}", value, batch_size=batch_size)
        return loss

    # -- evaluation --------------------------------------------------------------------------------------
    def aggregate_views(self, clips, cached: bool = False) -> dict[str, torch.Tensor]:
        """(B, V, ...) views -> per-video scores: softmax then mean, or mean of raw scores."""
        first = _first(clips)
        b, v = first.shape[:2]
        flat = _map_clips(clips, lambda t: t.flatten(0, 1))
        outputs = self.forward_cached(flat) if cached else self(flat)
        scores = {}
        for level, logits in outputs.items():
            logits = logits.view(b, v, -1).float()
            if self.cfg.eval.aggregate == "softmax_mean":
                scores[level] = logits.softmax(-1).mean(1)
            else:
                scores[level] = logits.mean(1)
        return scores

    def _evaluate(self, batch: dict, metrics: LevelMetrics) -> dict[str, torch.Tensor]:
        self._note_skipped(batch, self.skipped_videos)
        if "features" in batch:
            scores = self.aggregate_views(batch["features"], cached=True)
        else:
            scores = self.aggregate_views(batch["clips"])
        valid = batch["label"] >= 0  # unreadable videos come as placeholders labelled -1: not counted
        if not valid.all():
            scores = {level: s[valid] for level, s in scores.items()}
            if not valid.any():
                return scores
        targets = self.targets(batch["label"][valid])
        consistent = is_consistent = None
        if metrics.consistent:
            log_probs = {level: (s if self.cfg.eval.aggregate == "softmax_mean" else s.softmax(-1))
                         .clamp_min(1e-12).log() for level, s in scores.items()}
            sub = self.levels.select(self.trained_levels)
            consistent = consistent_predict(sub, log_probs, self.loss_weights)
            derived = sub.derive_batch(scores[sub.finest].argmax(1))
            is_consistent = torch.stack([derived[lv] == scores[lv].argmax(1) for lv in self.trained_levels]).all(0)
        metrics.update(scores, targets, consistent, is_consistent)
        return scores

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._report_new_skips(self.all_skipped_videos(self.skipped_videos), "data.val",
                                   "left out of the validation metrics")
        results = self.val_metrics.compute()
        self.val_metrics.reset()
        for level in self.trained_levels:
            self.log(f"val/{level}_top1", results[level]["top1"], prog_bar=True, sync_dist=False)
            self.log(f"val/{level}_mean_class", results[level]["mean_class_accuracy"], sync_dist=False)
        self.log("val/top1", results[self.trained_levels[-1]]["top1"], sync_dist=False)
        if "consistency_rate" in results:
            self.log("val/consistency_rate", results["consistency_rate"], sync_dist=False)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics)

    def on_test_epoch_end(self) -> None:
        self.test_results = self.test_metrics.compute()
        self.test_metrics.reset()
        for level in self.trained_levels:
            self.log(f"test/{level}_top1", self.test_results[level]["top1"], sync_dist=False)

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        return self.aggregate_views(batch["clips"])

    # -- bookkeeping -------------------------------------------------------------------------------------
    @staticmethod
    def _note_skipped(batch: dict, into: list[str]) -> None:
        for entry in batch.get("skipped", []) or []:
            into += [line for line in entry.splitlines() if line]

    def all_skipped_videos(self, entries: list[str]) -> list[str]:
        """`entries` ("path\treason" lines) of every process (gathered under DDP)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            gathered: list = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, entries)
            return [entry for part in gathered for entry in part]
        return list(entries)

    def _report_new_skips(self, entries: list[str], split_key: str, what_happened: str) -> None:
        """Name each unreadable video once, with its reason, the first time an epoch meets it."""
        new = {}
        for entry in entries:
            path, _, reason = entry.partition("\t")
            if (split_key, path) not in self._reported_skips:
                self._reported_skips.add((split_key, path))
                new[path] = reason
        if new and self.trainer.is_global_zero:
            # the reasons of fineact's readers start with the path already
            lines = "".join(f"\n  {reason if reason.startswith(path) else f'{path}: {reason}'}"
                            for path, reason in sorted(new.items()))
            print(f"fineact: {len(new)} unreadable video(s) in {split_key}, {what_happened}:{lines}", flush=True)

    def on_train_epoch_end(self) -> None:
        skipped = self.all_skipped_videos(self.skipped_train_videos)
        self._report_new_skips(skipped, "data.train", "replaced by other samples")
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "raise_if_too_many_bad"):
            datamodule.raise_if_too_many_bad(skipped)

    def configure_optimizers(self) -> Any:
        trainer = self.trainer
        total_steps = max(1, int(trainer.estimated_stepping_batches))
        steps_per_epoch = max(1, total_steps // max(1, trainer.max_epochs))
        total_batch = self.cfg.data.batch_size * trainer.world_size
        optimizer, scheduler = build_optimizer(self.model, self.cfg.optim, self.cfg.schedule, total_steps,
                                               steps_per_epoch, total_batch)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Exact resume: the global RNGs (dropout, augmentation in the main process) travel with the weights.
        import random

        import numpy as np

        # Stored as tensors and plain numbers only, so the checkpoint loads with torch.load(weights_only=True).
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        version, state, gauss_next = random.getstate()
        checkpoint["rng_states"] = {
            "torch": torch.get_rng_state(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
            "python": [version, torch.tensor(state, dtype=torch.int64), gauss_next]}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        import random

        import numpy as np

        states = checkpoint.get("rng_states")
        if states:
            torch.set_rng_state(states["torch"])
            kind, keys, pos, has_gauss, gauss = states["numpy"]
            np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
            version, state, gauss_next = states["python"]
            random.setstate((version, tuple(int(x) for x in state.tolist()), gauss_next))


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
