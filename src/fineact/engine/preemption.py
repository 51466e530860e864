"""Preemption: a signal asks a run to stop; it stops at the next training step with a checkpoint, then exits 75.

Shared clusters stop jobs with a signal and a grace period: SLURM sends SIGTERM (preemption, time limit) or the
signal of `#SBATCH --signal=USR1@120`; torchrun forwards SIGTERM to its workers. `trainer.preemption_signals`
(default SIGTERM and SIGUSR1) name the signals fineact handles:

1. the handler only notes the signal (it runs between two Python bytecodes, possibly half-way through a step:
   saving there would mix weights after the optimiser step with a schedule before it);
2. at the end of the current training step all processes agree (one all-reduce of a flag under DDP: each
   process may have received the signal at a different step, or only rank 0 did), write
   `checkpoints/last.ckpt` (atomic, with the loader position, RNG states, optimiser and schedule: exact resume);
3. under SLURM with Lightning's auto-requeue (SLURMEnvironment, see trainer.py) and the requeue signal, Lightning's
   own requeue handler then runs (it saves its hpc checkpoint and calls `scontrol requeue`);
4. the process exits with status REQUEUE_EXIT_STATUS = 75 (EX_TEMPFAIL of sysexits.h, "temporary failure, try
   again"): the job did not fail, it wants to be started again. `fineact train` with the same config then
   resumes from last.ckpt (automatically, see run.py).

Lightning's own SIGTERM handler is replaced while training for the signals named here: it would stop at the
start of a step without saving, and under DDP it broadcasts from inside the signal handler.
"""

from __future__ import annotations

import logging
import signal

import lightning as L
import torch
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import Callback

REQUEUE_EXIT_STATUS = 75  # EX_TEMPFAIL: "temporary failure; the user is invited to retry"

log = logging.getLogger("fineact")


class Preempted(SystemExit):
    """Raised at a step boundary after the preemption checkpoint is written; exits the process with status 75."""

    def __init__(self, message: str):
        super().__init__(REQUEUE_EXIT_STATUS)
        self.message = message

    def __str__(self) -> str:
        return self.message


def signal_numbers(names) -> list[signal.Signals]:
    return [signal.Signals[name] for name in names]


class PreemptionCheckpoint(Callback):
    """Saves `last_path` at the next training step after one of `signals`, then raises Preempted."""

    def __init__(self, signals, last_path):
        self.signals = signal_numbers(signals)
        self.last_path = str(last_path)
        self.requested: int | None = None   # the signal received, until it is acted upon
        self._previous: dict[int, object] = {}
        self._slurm_requeue = None          # (signal, Lightning's SLURM requeue handler) under auto-requeue

    def _note(self, signum, frame) -> None:
        if self.requested is None:
            self.requested = signum

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After Lightning registered its handlers (Trainer._run): ours replace them for these signals.
        environment = trainer._accelerator_connector.cluster_environment
        for signum in self.signals:
            previous = signal.getsignal(signum)
            self._previous[signum] = previous
            if (isinstance(environment, SLURMEnvironment) and environment.auto_requeue
                    and signum == environment.requeue_signal and callable(previous)):
                self._slurm_requeue = (signum, previous)
            signal.signal(signum, self._note)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._restore()

    def _agreed(self, trainer: L.Trainer) -> int:
        """The signal number every process acts upon (0: none): one all-reduce under DDP, none otherwise."""
        if trainer.world_size == 1:
            return self.requested or 0
        flag = torch.tensor([float(self.requested or 0)], device=trainer.strategy.root_device)
        return int(trainer.strategy.reduce(flag, reduce_op="max").item())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        signum = self._agreed(trainer)
        if not signum:
            return
        trainer.save_checkpoint(self.last_path, weights_only=False)
        name = signal.Signals(signum).name
        if self._slurm_requeue is not None and signum == self._slurm_requeue[0]:
            self._slurm_requeue[1](signum, None)  # Lightning's: its hpc checkpoint, then `scontrol requeue`
        message = (f"{name} received: stopped at epoch {trainer.current_epoch}, step {trainer.global_step} with "
                   f"checkpoint {self.last_path}; exit status {REQUEUE_EXIT_STATUS} (requeue me). The same "
                   "`fineact train` command resumes from it.")
        if trainer.is_global_zero:
            log.warning("%s", message)
        raise Preempted(message)
