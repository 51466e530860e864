"""Long runs: mid-epoch checkpoints with exact resume after kill -9, preemption signals, resume checks, console."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from omegaconf import OmegaConf

from conftest import tiny_experiment
from fineact.config import load_config
from fineact.engine.checkpoints import read_checkpoint
from fineact.engine.preemption import REQUEUE_EXIT_STATUS
from fineact.engine.run import train

KILL_BETWEEN_CHECKPOINTS = textwrap.dedent("""
    import os, signal, sys
    import lightning as L
    from fineact.config import load_config
    from fineact.engine.run import train

    class KillMidEpoch(L.Callback):
        # epoch 1, third batch: global step 7, after the mid-epoch checkpoint of step 6, before the one of step 8
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.current_epoch == 1 and batch_idx == 2:
                os.kill(os.getpid(), signal.SIGKILL)   # no clean-up, no final checkpoint

    train(load_config(sys.argv[1]), callbacks=[KillMidEpoch()])
""")


def _write_config(path, config):
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(config)))
    return path


def _same_weights(a_path, b_path):
    a, b = read_checkpoint(a_path)["state_dict"], read_checkpoint(b_path)["state_dict"]
    assert a.keys() == b.keys()
    return [k for k in a if not torch.equal(a[k], b[k])]


def test_kill_9_between_two_mid_epoch_checkpoints_then_resume_gives_the_uninterrupted_weights(tiny_gym, tmp_path):
    # 16 clips, batch 4: 4 steps per epoch; dropout 0.5 and random crops/flips make every step's randomness count.
    reference = train(load_config(base=tiny_experiment(tiny_gym, tmp_path / "reference", trainer={"max_epochs": 3})))
    killed = tiny_experiment(tiny_gym, tmp_path / "killed", trainer={"max_epochs": 3, "checkpoint_every_n_steps": 2},
                             data={"num_workers": 1})  # a worker process: its pre-fetching must not count
    config = _write_config(tmp_path / "killed.yaml", killed)
    script = tmp_path / "killer.py"
    script.write_text(KILL_BETWEEN_CHECKPOINTS)
    done = subprocess.run([sys.executable, str(script), str(config)], capture_output=True, text=True, timeout=900)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    last = read_checkpoint(tmp_path / "killed" / "checkpoints" / "last.ckpt")
    assert (last["epoch"], last["global_step"]) == (1, 6)  # the mid-epoch checkpoint before the kill
    assert last["VideoDataModule"]["train_loader"] == {"epoch": 1, "batches": 2, "batch_size": 4, "world_size": 1,
                                                       "epoch_finished": False}
    resumed = train(load_config(config))  # no --resume: an unfinished run with the same config continues
    assert _same_weights(reference.last_checkpoint, resumed.last_checkpoint) == []
    assert resumed.results.levels["element"].confusion == reference.results.levels["element"].confusion
    # and the comparison is not vacuous: the weights moved after the checkpoint the resume started from
    assert any(not torch.equal(v, read_checkpoint(resumed.last_checkpoint)["state_dict"][k])
               for k, v in last["state_dict"].items() if k.endswith("weight"))


DDP_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import lightning as L
    from fineact.config import load_config
    from fineact.engine.run import train

    class SigtermToRankZero(L.Callback):
        # as a scheduler would: a signal in the middle of epoch 1 (4 steps an epoch), to one process only
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.global_rank == 0 and trainer.current_epoch == 1 and batch_idx == 1:
                os.kill(os.getpid(), signal.SIGTERM)

    callbacks = [SigtermToRankZero()] if os.environ.get("FINEACT_TEST_SIGTERM") else []
    train(load_config(sys.argv[1]), callbacks=callbacks)
""")


def _ddp_run(script, config, sigterm=False):
    env = {**os.environ, "FINEACT_TEST_SIGTERM": "1" if sigterm else ""}
    return subprocess.run([sys.executable, str(script), str(config)], capture_output=True, text=True, timeout=1500,
                          env=env)


def test_sigterm_under_two_process_ddp_saves_exits_75_and_resumes_to_the_uninterrupted_weights(tiny_gym, tmp_path):
    ddp = {"trainer": {"max_epochs": 3, "accelerator": "cpu", "devices": 2, "strategy": "ddp"},
           "data": {"batch_size": 2}}  # 16 clips over 2 processes: 4 steps an epoch
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    reference_config = _write_config(tmp_path / "reference.yaml", tiny_experiment(tiny_gym, tmp_path / "ref", **ddp))
    done = _ddp_run(script, reference_config)
    assert done.returncode == 0, done.stderr[-3000:]
    config = _write_config(tmp_path / "preempted.yaml", tiny_experiment(tiny_gym, tmp_path / "run", **ddp))
    stopped = _ddp_run(script, config, sigterm=True)
    assert stopped.returncode == REQUEUE_EXIT_STATUS == 75, stopped.stderr[-3000:]
    assert "SIGTERM received: stopped at epoch 1, step 7" in stopped.stderr
    last = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert (last["epoch"], last["global_step"]) == (1, 7)  # the step after the signal, mid-epoch
    assert last["VideoDataModule"]["train_loader"]["batches"] == 3
    assert not (tmp_path / "run" / "model.safetensors").exists()  # the run did not go on to evaluate and export
    resumed = _ddp_run(script, config)  # the same command again, as a requeued job runs it
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr
    assert _same_weights(tmp_path / "ref" / "checkpoints" / "last.ckpt",
                         tmp_path / "run" / "checkpoints" / "last.ckpt") == []
