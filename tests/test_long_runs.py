"""Long runs: mid-epoch checkpoints with exact resume after kill -9, preemption signals, resume checks, console."""

import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from lightning.fabric.plugins.environments import SLURMEnvironment

import fineact

from conftest import tiny_experiment, train_killed_mid_epoch, write_config
from fineact.config import load_config
from fineact.engine.checkpoints import read_checkpoint
from fineact.engine.console import NORMAL, QUIET, VERBOSE, configure_console
from fineact.engine.preemption import REQUEUE_EXIT_STATUS
from fineact.engine.resume_check import CHECKPOINT_LAYOUT, fingerprint, resume_problems
from fineact.engine.run import train
from fineact.engine.trainer import cluster_plugins
from fineact.errors import ConfigError

def _same_weights(a_path, b_path):
    a, b = read_checkpoint(a_path)["state_dict"], read_checkpoint(b_path)["state_dict"]
    assert a.keys() == b.keys()
    return [k for k in a if not torch.equal(a[k], b[k])]


def test_kill_9_between_two_mid_epoch_checkpoints_then_resume_gives_the_uninterrupted_weights(tiny_gym, tmp_path):
    # 16 clips, batch 4: 4 steps per epoch; dropout 0.5 and random crops/flips make every step's randomness count.
    reference = train(load_config(base=tiny_experiment(tiny_gym, tmp_path / "reference", trainer={"max_epochs": 3})))
    killed = tiny_experiment(tiny_gym, tmp_path / "killed", trainer={"max_epochs": 3, "checkpoint_every_n_steps": 2},
                             data={"num_workers": 1})  # a worker process: its pre-fetching must not count
    config = write_config(tmp_path / "killed.yaml", killed)
    # epoch 1, third batch: global step 7, after the mid-epoch checkpoint of step 6, before the one of step 8
    train_killed_mid_epoch(config, epoch=1, batch_idx=2)
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
    reference_config = write_config(tmp_path / "reference.yaml", tiny_experiment(tiny_gym, tmp_path / "ref", **ddp))
    done = _ddp_run(script, reference_config)
    assert done.returncode == 0, done.stderr[-3000:]
    config = write_config(tmp_path / "preempted.yaml", tiny_experiment(tiny_gym, tmp_path / "run", **ddp))
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


# -- what a resume checks ------------------------------------------------------------------------------------

def _cfg(tiny_gym, tmp_path, **sections):
    return load_config(base=tiny_experiment(tiny_gym, tmp_path / "run", **sections))


def test_a_resume_names_every_changed_key_but_not_the_result_neutral_ones(tiny_gym, tmp_path):
    stored = fingerprint(_cfg(tiny_gym, tmp_path), world_size=1)
    same_run = _cfg(tiny_gym, tmp_path, data={"num_workers": 3}, trainer={"progress_bar": True,
                                                                          "checkpoint_every_n_steps": 5})
    assert resume_problems(stored, same_run, world_size=1) == []
    changed = _cfg(tiny_gym, tmp_path, optim={"lr": 0.1}, trainer={"max_epochs": 5})
    problems = resume_problems(stored, changed, world_size=1)
    assert "optim.lr: checkpoint 0.05, config 0.1" in problems
    assert "trainer.max_epochs: checkpoint 2, config 5" in problems and len(problems) == 2
    accepted = _cfg(tiny_gym, tmp_path, trainer={"max_epochs": 5, "resume_allow_changes": ["trainer.max_epochs"]})
    assert resume_problems(stored, accepted, world_size=1) == []


def test_a_resume_on_more_processes_is_accepted_only_with_the_same_global_batch(tiny_gym, tmp_path):
    stored = fingerprint(_cfg(tiny_gym, tmp_path), world_size=1)  # batch 4 on 1 process
    halves = _cfg(tiny_gym, tmp_path, data={"batch_size": 2}, trainer={"devices": 2, "strategy": "ddp"})
    assert resume_problems(stored, halves, world_size=2) == []
    doubled = _cfg(tiny_gym, tmp_path, trainer={"devices": 2, "strategy": "ddp"})
    assert resume_problems(stored, doubled, world_size=2) == [
        "global batch (data.batch_size x processes): checkpoint 4 (4 x 1), now 8 (4 x 2)"]


def test_a_resume_refuses_another_data_split_and_another_checkpoint_layout(tiny_gym, tmp_path):
    stored = fingerprint(_cfg(tiny_gym, tmp_path), world_size=1)
    moved = tmp_path / "moved_train.txt"
    moved.write_bytes(Path(tiny_gym.train_list).read_bytes())
    assert resume_problems(stored, _cfg(tiny_gym, tmp_path, data={"train": {
        "annotations": str(moved), "data_root": str(tiny_gym.videos_dir)}}), world_size=1) == []
    lines = moved.read_text().splitlines()
    moved.write_text("\n".join(lines[:-1]) + "\n")  # one clip fewer: another split
    problems = resume_problems(stored, _cfg(tiny_gym, tmp_path, data={"train": {
        "annotations": str(moved), "data_root": str(tiny_gym.videos_dir)}}), world_size=1)
    assert len(problems) == 1 and problems[0].startswith(f"data.train.annotations ({moved}): its content differs")
    assert "layout 1" in resume_problems(None, _cfg(tiny_gym, tmp_path), world_size=1)[0]
    future = {**stored, "layout": CHECKPOINT_LAYOUT + 1, "version": "9.0"}
    assert resume_problems(future, _cfg(tiny_gym, tmp_path), world_size=1) == [
        f"checkpoint layout {CHECKPOINT_LAYOUT + 1} (written by fineact 9.0), but this fineact "
        f"{fineact.__version__} resumes layout {CHECKPOINT_LAYOUT} only"]


def test_an_unfinished_run_with_another_config_is_refused_naming_the_key(tiny_gym, tmp_path):
    run = train(_cfg(tiny_gym, tmp_path, trainer={"max_epochs": 1}))
    assert read_checkpoint(run.last_checkpoint)["fineact"]["layout"] == CHECKPOINT_LAYOUT
    (tmp_path / "run" / "model.safetensors").unlink()  # as if stopped before the end: an unfinished run
    with pytest.raises(ConfigError, match=r"cannot resume .*last.ckpt.*\n  optim.lr: checkpoint 0.05, config 0.2"):
        train(_cfg(tiny_gym, tmp_path, trainer={"max_epochs": 1}, optim={"lr": 0.2}))
    with pytest.raises(ConfigError, match="optim.lr"):  # --resume checks the same
        train(_cfg(tiny_gym, tmp_path, trainer={"max_epochs": 1}, optim={"lr": 0.2}), resume=True)


# -- console, cluster ---------------------------------------------------------------------------------------

EPOCH_LINE = (r"epoch 1/2 \| steps 4 \(total 4\) \| train loss [\d.]+ \(element [\d.]+\) \| val element_top1 "
              r"[\d.]+% element_mean_class [\d.]+% \| lr [\d.e-]+ \| \dm\d\ds \| [\d.]+ clips/s \| ETA \dm\d\ds")


def test_one_console_line_per_epoch_without_progress_bars_and_no_lightning_tips(tiny_gym, tmp_path, caplog, capfd):
    caplog.set_level(logging.INFO, logger="fineact")
    train(_cfg(tiny_gym, tmp_path))  # progress_bar=false in the tiny experiment
    lines = [r.getMessage() for r in caplog.records if r.name == "fineact" and r.getMessage().startswith("epoch")]
    assert len(lines) == 2 and re.fullmatch(EPOCH_LINE, lines[0]), lines
    assert lines[1].startswith("epoch 2/2 | steps 4 (total 8)") and "ETA" not in lines[1]
    printed = capfd.readouterr()
    messages = [r.getMessage() for r in caplog.records]
    assert not any("Tip:" in text for text in [printed.out, printed.err, *messages])


def test_console_verbosity_levels():
    try:
        configure_console(QUIET)
        assert not logging.getLogger("fineact").isEnabledFor(logging.INFO)
        assert not logging.getLogger("lightning.pytorch").isEnabledFor(logging.INFO)
        configure_console(VERBOSE)
        assert logging.getLogger("fineact").isEnabledFor(logging.DEBUG)
    finally:
        configure_console(NORMAL)


def test_under_slurm_lightnings_slurm_environment_requeues_on_sigusr1(monkeypatch):
    assert cluster_plugins() == [] or "SLURM_NTASKS" in os.environ
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "fineact")
    (environment,) = cluster_plugins()
    assert isinstance(environment, SLURMEnvironment)
    assert environment.auto_requeue and environment.requeue_signal == signal.SIGUSR1
