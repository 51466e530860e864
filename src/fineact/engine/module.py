"""The LightningModule: the science of a run. Loss per level, evaluation with view aggregation, metrics,
optimiser wiring.

A batch is a dict: "clips" (a tensor, or {pathway: tensor} for multi-pathway models; evaluation batches carry
a view axis after the batch axis: (B, V, C, T, H, W)), "label" (finest labels), "index" (sample indices) and
"skipped" (unreadable videos the dataset replaced or marked; the UnreadableVideos callback counts them).
Clips arrive as uint8 and are normalised once on the device, in `on_after_batch_transfer`
(fineact.data.model_input).
The engineering lives next to the Trainer: unreadable-video accounting (unreadable_videos.py), channels_last
and torch.compile (performance.py).
"""

from __future__ import annotations

import warnings
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from fineact.data.model_input import flip_marked, normalization_for
from fineact.engine.metrics import LevelMetrics
from fineact.engine.model_factory import build_from_config
from fineact.engine.optim import build_optimizer
from fineact.engine.results import EvaluationResults
from fineact.errors import ConfigError, FineactError
from fineact.interop.trained_for import CHECKPOINT_KEY, trained_for
from fineact.labels import LabelLevels, consistent_predict, consistent_samples
from fineact.models.multitask import level_loss

# Lightning tells every run that the module's on_after_batch_transfer is used although a datamodule is given:
# that is the design (normalisation is the model's business, whatever the data), so the notice is noise.
warnings.filterwarnings("ignore", message=r"You have overridden `on_after_batch_transfer` in `LightningModule` "
                        r"but have passed in a `LightningDataModule`")


def _map_clips(clips, fn):
    return {k: fn(v) for k, v in clips.items()} if isinstance(clips, dict) else fn(clips)


def _first(clips) -> torch.Tensor:
    return next(iter(clips.values())) if isinstance(clips, dict) else clips


def loss_weights_for(configured: dict, trained_levels: list[str], model_weights: dict | None) -> dict[str, float]:
    """{level: λ} for the loss, in the trained levels' order.

    `loss.weights` from the config, when given, must name exactly the levels the model is trained on; else the
    model's own weights (the multi-task networks: 1 : 2 : 4), else 1.0 for a single level.
    """
    if configured:
        unknown = [level for level in configured if level not in trained_levels]
        missing = [level for level in trained_levels if level not in configured]
        if unknown or missing:
            found = ", ".join(f"{k}: {v}" for k, v in configured.items())
            raise ConfigError(f"loss.weights must give one weight per trained level {trained_levels}, found "
                              f"{{{found}}}" + (f"; unknown level(s) {unknown}" if unknown else "")
                              + (f"; missing level(s) {missing}" if missing else ""))
        return {level: float(configured[level]) for level in trained_levels}
    if model_weights:
        return {level: float(model_weights[level]) for level in trained_levels}
    if len(trained_levels) != 1:
        raise ConfigError(f"loss.weights: the model predicts {trained_levels} but states no loss weights; give "
                          "one per level, e.g. " + ", ".join(f"loss.weights.{lv}=1.0" for lv in trained_levels))
    return {trained_levels[0]: 1.0}


class RecognitionModule(L.LightningModule):
    """Trains and evaluates any fineact model on any label levels.

    Saved hyperparameters (the config and the label levels) are enough to rebuild the model from a checkpoint.
    """

    def __init__(self, config: dict, levels: dict):
        super().__init__()
        # Plain data only (config choices as their strings): checkpoints must load with weights_only=True.
        config = OmegaConf.to_container(OmegaConf.create(config), resolve=True, enum_to_str=True)
        self.save_hyperparameters()
        self.cfg: DictConfig = OmegaConf.create(config)
        self.levels = LabelLevels.from_dict(levels)
        self.model, self.trained_levels, num_classes = build_from_config(self.cfg, self.levels)
        self.loss_weights = loss_weights_for(dict(self.cfg.loss.weights), self.trained_levels,
                                             getattr(self.model, "loss_weights", None))
        consistent = bool(self.cfg.eval.consistent) and len(self.trained_levels) > 1 \
            and self.levels.finest in self.trained_levels
        self.val_metrics = LevelMetrics(num_classes, tuple(self.cfg.eval.topk), consistent)
        self.test_metrics = LevelMetrics(num_classes, tuple(self.cfg.eval.topk), consistent)
        self.test_results: EvaluationResults | None = None
        self.normalization = normalization_for(self.cfg.data)

    # -- input ---------------------------------------------------------------------------------------------
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """uint8 clips -> training's flips, then normalised float32, on the device: the loader sent a quarter of
        the bytes and left the mirroring to the device (fineact.data.model_input)."""
        if isinstance(batch, dict) and "clips" in batch:
            if "flipped" in batch:
                batch["clips"] = flip_marked(batch["clips"], batch["flipped"])
            batch["clips"] = self.normalization.clips(batch["clips"])
        return batch

    # -- forward -----------------------------------------------------------------------------------------
    def forward(self, clips) -> dict[str, torch.Tensor]:
        """{level: logits}; uint8 clips (straight from the test views) are normalised first."""
        outputs = self.model(self.normalization.clips(clips))
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
        """Weighted sum of per-level cross-entropies: models/multitask.py `level_loss` (seed 000 eq. 2)."""
        return level_loss(outputs, targets, self.loss_weights, self.cfg.loss.label_smoothing)

    # -- training ----------------------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
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
            is_consistent = consistent_samples(sub, {lv: scores[lv].argmax(1) for lv in self.trained_levels})
        metrics.update(scores, targets, consistent, is_consistent)
        return scores

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        results = self.val_metrics.compute()
        self.val_metrics.reset()
        self._require_videos(results, "data.val")
        for level in self.trained_levels:
            self.log(f"val/{level}_top1", results.levels[level].top1, prog_bar=True, sync_dist=False)
            self.log(f"val/{level}_mean_class", results.levels[level].mean_class_accuracy, sync_dist=False)
        self.log("val/top1", results.levels[self.trained_levels[-1]].top1, sync_dist=False)
        if results.consistency_rate is not None:
            self.log("val/consistency_rate", results.consistency_rate, sync_dist=False)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics)

    def on_test_epoch_end(self) -> None:
        self.test_results = self.test_metrics.compute()
        self.test_metrics.reset()
        self._require_videos(self.test_results, f"data.{getattr(self.trainer.datamodule, 'eval_split', 'test')}")
        for level in self.trained_levels:
            self.log(f"test/{level}_top1", self.test_results.levels[level].top1, sync_dist=False)

    def _require_videos(self, results: EvaluationResults, split_key: str) -> None:
        """An evaluation that measured no video is a failure, never a result (0 videos, NaN accuracies)."""
        if results.levels[self.trained_levels[-1]].num_videos == 0:
            raise FineactError(f"{split_key}: no video could be evaluated: every video of the split is unreadable, "
                               "so there is no result to report. `fineact check-data CONFIG` lists each video "
                               "with its reason (check the split's data_root).")

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        return self.aggregate_views(batch["clips"])

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
        # What these weights were trained for: the multi-task recipe checks it when this is a pathway checkpoint.
        checkpoint[CHECKPOINT_KEY] = trained_for(self.trained_levels, self.model.clip_specs)
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

