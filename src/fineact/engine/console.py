"""The console of a run: one line per epoch through Python logging, without Lightning's tips.

A batch job's log should read as a record of the run, with or without progress bars (`trainer.progress_bar`):

    2026-12-01 13:40:02 fineact: epoch 2/30 | steps 800 (1600 done) | train loss 1.234 (element 1.234) | val
    element_top1 41.20% element_mean_class 30.10% | lr 0.00995 | 6m12s | 341.2 clips/s | ETA 2h53m

Everything goes through the "fineact" logger (`logging.getLogger("fineact")`), so a program that embeds fineact
routes it like any other library's log. `configure_console(verbosity)` (the CLI's --quiet / --verbose) sets how
much is shown; `lightning_console()` silences, while fineact trains or evaluates and nowhere else, Lightning's
advertising tips and the messages listed in LIGHTNING_NOISE (known to be harmless; --verbose shows them).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import warnings

import torch
from lightning.pytorch.callbacks import Callback

log = logging.getLogger("fineact")

QUIET, NORMAL, VERBOSE = -1, 0, 1
_verbosity = NORMAL

# Lightning info messages fineact users need not read (prefixes).
LIGHTNING_NOISE = (
    "💡 Tip:",                                                    # advertising of Lightning's cloud services
    "Loading `train_dataloader` to estimate number of stepping batches",
)
# Known-harmless warnings raised inside Lightning or torch while fineact runs (message regular expressions).
HARMLESS_WARNINGS = (
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",          # Lightning's pytree helper on torch >= 2.8
    r"Checkpoint directory .* exists and is not empty",            # resuming into the run's own folder
)
_LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero",
                      "lightning.fabric.utilities.rank_zero")


def configure_console(verbosity: int = NORMAL) -> None:
    """QUIET: warnings and errors only; NORMAL: fineact's lines and Lightning's essentials; VERBOSE: all of it."""
    global _verbosity
    _verbosity = verbosity
    ensure_handler()
    log.setLevel({QUIET: logging.WARNING, NORMAL: logging.INFO}.get(verbosity, logging.DEBUG))
    level = logging.WARNING if verbosity == QUIET else logging.INFO
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(level)


def ensure_handler() -> None:
    """A stderr handler for the "fineact" logger unless the program configured logging itself."""
    if log.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S"))
    log.addHandler(handler)
    log.propagate = False
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(message.startswith(prefix) for prefix in LIGHTNING_NOISE)


@contextlib.contextmanager
def lightning_console():
    """While fineact trains or evaluates: no Lightning tips or listed noise (all of it with --verbose)."""
    if _verbosity >= VERBOSE:
        yield
        return
    noise = _DropNoise()
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    handlers = [h for lg in loggers for h in lg.handlers]
    for target in (*loggers, *handlers):
        target.addFilter(noise)
    try:
        with warnings.catch_warnings():
            for pattern in HARMLESS_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        for target in (*loggers, *handlers):
            target.removeFilter(noise)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class EpochSummary(Callback):
    """One log line per epoch (on rank 0): epoch, steps, train loss per level, val metrics, lr, time, clips/s,
    ETA. Per-step losses are summed on the device and read once per epoch (no device sync per step)."""

    def __init__(self):
        self._sums: dict[str, torch.Tensor] = {}
        self._batches = self._clips = 0
        self._start = self._train_end = 0.0
        self._epoch_seconds: list[float] = []

    def on_train_start(self, trainer, pl_module) -> None:
        self.on_train_epoch_start(trainer, pl_module)  # a run resumed mid-epoch gets no epoch start

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._sums, self._batches, self._clips = {}, 0, 0
        self._start = self._train_end = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        for key, value in trainer.callback_metrics.items():
            if key.startswith("train/loss") and not key.endswith("_epoch"):
                self._sums[key] = self._sums.get(key, 0) + value.detach()
        self._batches += 1
        labels = batch.get("label") if isinstance(batch, dict) else None
        self._clips += (len(labels) if labels is not None else 0) * trainer.world_size
        self._train_end = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not self._batches:
            return
        seconds = time.perf_counter() - self._start
        self._epoch_seconds.append(seconds)
        if trainer.is_global_zero:
            log.info(self.line(trainer, seconds))

    def line(self, trainer, seconds: float) -> str:
        epoch, total = trainer.current_epoch + 1, trainer.max_epochs
        losses = {key: float(value) / self._batches for key, value in self._sums.items()}
        overall = losses.pop("train/loss", None)
        per_level = ", ".join(f"{key[len('train/loss_'):]} {value:.4g}" for key, value in losses.items())
        parts = [f"epoch {epoch}/{total}", f"steps {self._batches} (total {trainer.global_step})"]
        if overall is not None:
            parts.append(f"train loss {overall:.4g}" + (f" ({per_level})" if per_level else ""))
        metrics = trainer.callback_metrics
        val = [f"{key[4:]} {100 * float(value):.2f}%" for key, value in metrics.items()
               if key.startswith("val/") and key != "val/top1"]
        if val:
            parts.append("val " + " ".join(val))
        if trainer.optimizers:
            parts.append(f"lr {trainer.optimizers[0].param_groups[0]['lr']:.4g}")
        train_seconds = max(self._train_end - self._start, 1e-9)
        parts += [_duration(seconds), f"{self._clips / train_seconds:.1f} clips/s"]
        remaining = total - epoch
        if remaining > 0:
            mean = sum(self._epoch_seconds) / len(self._epoch_seconds)
            parts.append(f"ETA {_duration(mean * remaining)}")
        return " | ".join(parts)
