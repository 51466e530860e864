"""The Lightning Trainer a config describes: devices, precision, DDP, checkpoints, progress bar, loggers.

The engineering of a run is here, as Lightning callbacks: the speed options (performance.py) and the
accounting of unreadable videos (unreadable_videos.py). `evaluation_callbacks` gives an evaluation-only Trainer
the same two.

Nothing here is home-made except the atomic checkpoint writer (checkpoint_io.py): checkpoints are Lightning's
ModelCheckpoint (a `last.ckpt` every epoch plus the best by validation top-1), progress bars Lightning's TQDM
bar, logs Lightning's CSV (and optional TensorBoard) loggers, gradient clipping the Trainer's norm clipping.
Distributed samplers are ours (see datamodule.py), so evaluation counts every video exactly once across processes.

Long runs (README "Long runs"): mid-epoch `last.ckpt` every `trainer.checkpoint_every_n_steps` steps and/or
`trainer.checkpoint_every_minutes` minutes (Lightning's ModelCheckpoint triggers), a checkpoint and exit status 75
on a preemption signal (preemption.py), the run's fingerprint in every checkpoint (resume_check.py), one console
line per epoch (console.py), and under SLURM Lightning's SLURMEnvironment with auto-requeue.
"""

from __future__ import annotations

import signal
from datetime import timedelta
from pathlib import Path

import lightning as L
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from fineact.engine.checkpoint_io import AtomicCheckpointIO
from fineact.engine.console import EpochSummary
from fineact.engine.host_memory import reuse_freed_memory
from fineact.engine.performance import performance_callbacks
from fineact.engine.preemption import PreemptionCheckpoint
from fineact.engine.resume_check import RunFingerprint
from fineact.engine.unreadable_videos import UnreadableVideos


def checkpoint_callbacks(output_dir: Path, validate: bool = True, every_n_steps: int | None = None,
                         every_minutes: float | None = None) -> list[ModelCheckpoint]:
    """`last.ckpt` after every epoch (for resuming), also every N steps / M minutes when asked (mid-epoch);
    `best.ckpt` by validation top-1 (when validating).

    Separate callbacks, because Lightning's `save_last` only refreshes last.ckpt when the monitored best improves,
    and one ModelCheckpoint takes one trigger (epochs, steps or time).
    """
    folder = output_dir / "checkpoints"
    last = dict(dirpath=folder, filename="last", monitor=None, save_top_k=1, enable_version_counter=False)
    latest = [ModelCheckpoint(**last, every_n_epochs=1)]
    if every_n_steps:
        latest.append(ModelCheckpoint(**last, every_n_train_steps=every_n_steps))
    if every_minutes:
        latest.append(ModelCheckpoint(**last, train_time_interval=timedelta(minutes=every_minutes)))
    if not validate:
        return latest
    best = ModelCheckpoint(dirpath=folder, filename="best", monitor="val/top1", mode="max", save_top_k=1,
                           auto_insert_metric_name=False, enable_version_counter=False)
    return [best, *latest]


def long_run_callbacks(cfg: DictConfig, output_dir: Path) -> list:
    """The run's fingerprint in each checkpoint, preemption handling, the per-epoch console line."""
    last = output_dir / "checkpoints" / "last.ckpt"
    return [RunFingerprint(cfg), PreemptionCheckpoint(cfg.trainer.preemption_signals, last), EpochSummary()]


def cluster_plugins() -> list:
    """Under SLURM, Lightning's SLURMEnvironment with auto-requeue on SIGUSR1 (see preemption.py)."""
    if SLURMEnvironment.detect():
        return [SLURMEnvironment(auto_requeue=True, requeue_signal=signal.SIGUSR1)]
    return []


def build_trainer(cfg: DictConfig, output_dir: str | Path, validate: bool = True, extra_callbacks=(),
                  **overrides) -> L.Trainer:
    output_dir = Path(output_dir)
    t = cfg.trainer
    if t.reuse_host_memory:
        reuse_freed_memory()
    # UnreadableVideos after the checkpoints: a run stopped for too many bad videos keeps that epoch's last.ckpt.
    callbacks = [*checkpoint_callbacks(output_dir, validate, t.checkpoint_every_n_steps, t.checkpoint_every_minutes),
                 LearningRateMonitor(logging_interval="step"), *performance_callbacks(t), UnreadableVideos(),
                 *long_run_callbacks(cfg, output_dir), *extra_callbacks]
    if t.progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=1))
    # A new version folder per (re)start: resuming must not overwrite the logs of the interrupted run.
    loggers = [CSVLogger(output_dir, name="logs")]
    if t.tensorboard:
        loggers.append(TensorBoardLogger(output_dir, name="tensorboard"))
    kwargs = dict(
        default_root_dir=str(output_dir), max_epochs=t.max_epochs, accelerator=t.accelerator,
        devices=t.devices, num_nodes=t.num_nodes, strategy=t.strategy, precision=t.precision,
        deterministic=t.deterministic, log_every_n_steps=t.log_every_n_steps,
        check_val_every_n_epoch=t.check_val_every_n_epoch, callbacks=callbacks, logger=loggers,
        gradient_clip_val=cfg.optim.grad_clip, gradient_clip_algorithm="norm",
        plugins=[AtomicCheckpointIO(), *cluster_plugins()],
        enable_progress_bar=t.progress_bar, use_distributed_sampler=False, num_sanity_val_steps=0,
        enable_model_summary=False)
    if t.limit_train_batches is not None:
        kwargs["limit_train_batches"] = t.limit_train_batches
    if t.limit_val_batches is not None:
        kwargs["limit_val_batches"] = t.limit_val_batches
    if not validate:
        kwargs["limit_val_batches"] = 0
    kwargs.update(OmegaConf.to_container(t.extra, resolve=True))  # any other Trainer argument (names checked)
    kwargs.update(overrides)
    return L.Trainer(**kwargs)


def evaluation_callbacks(cfg: DictConfig) -> tuple[UnreadableVideos, list]:
    """(the unreadable-video counter, every callback) of an evaluation-only Trainer."""
    unreadable = UnreadableVideos()
    return unreadable, [*performance_callbacks(cfg.trainer), unreadable]
