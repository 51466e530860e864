"""Interrupted runs and untrusted files: kill -9 and resume, atomic checkpoints, NaN losses, safe loading."""

import re
from pathlib import Path

import lightning as L
import pytest
import torch

from conftest import tiny_experiment, train_killed_mid_epoch, write_config
from fineact.config import load_config
from fineact.engine.checkpoint_io import atomic_torch_save
from fineact.engine.checkpoints import load_module, load_weights_into, read_checkpoint
from fineact.engine.run import train
from fineact.errors import FineactError, WeightsError

SRC = Path(__file__).resolve().parents[1] / "src" / "fineact"

def test_kill_9_mid_epoch_then_resume_gives_the_uninterrupted_result(tiny_gym, tmp_path):
    settings = {"trainer": {"max_epochs": 3}}
    reference = train(load_config(base=tiny_experiment(tiny_gym, tmp_path / "reference", **settings)))
    config = write_config(tmp_path / "killed.yaml", tiny_experiment(tiny_gym, tmp_path / "killed", **settings))
    train_killed_mid_epoch(config, epoch=1, batch_idx=1, timeout=600)
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    assert read_checkpoint(last)["epoch"] == 0  # the last complete epoch before the kill
    resumed = train(load_config(config), resume=True)
    a = read_checkpoint(reference.last_checkpoint)["state_dict"]
    b = read_checkpoint(resumed.last_checkpoint)["state_dict"]
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    assert resumed.results.levels["element"].top1 == reference.results.levels["element"].top1
    assert resumed.results.levels["element"].confusion == reference.results.levels["element"].confusion


def test_a_crash_while_saving_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    atomic_torch_save({"step": torch.tensor(1)}, path)

    def crash_half_way(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_half_way)
    with pytest.raises(OSError, match="disk full"):
        atomic_torch_save({"step": torch.tensor(2)}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["step"].item() == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no partial file left behind


class PoisonWeights(L.Callback):
    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 1:
            with torch.no_grad():
                next(module.model.parameters()).fill_(float("nan"))


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tiny_gym, tmp_path):
    cfg = load_config(base=tiny_experiment(tiny_gym, tmp_path / "nan", trainer={"max_epochs": 3}))
    with pytest.raises(FineactError, match=r"loss is nan at epoch 1, step 5 .*last checkpoint written before"):
        train(cfg, callbacks=[PoisonWeights()])
    good = read_checkpoint(tmp_path / "nan" / "checkpoints" / "last.ckpt")
    assert good["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in good["state_dict"].values() if v.is_floating_point())


def test_checkpoint_of_another_architecture_or_class_count_is_refused(tiny_gym, tmp_path):
    run = train(load_config(base=tiny_experiment(tiny_gym, tmp_path / "a", trainer={"max_epochs": 1})))
    from fineact.models import build_model
    other = build_model("slowonly_r50", depth=18, base_channels=4, num_frames=4, num_classes=7)
    report = load_weights_into(other, run.best_checkpoint)  # another class count: only the classifier is new
    assert any("head" in entry for entry in report.reinitialised)
    trained = read_checkpoint(run.best_checkpoint)["state_dict"]
    assert torch.equal(other.backbone.conv1.weight, trained["model.backbone.conv1.weight"])
    wider = build_model("slowonly_r50", depth=18, base_channels=8, num_frames=4, num_classes=16)
    with pytest.raises(WeightsError, match="shape mismatch"):
        load_weights_into(wider, run.exported)
    with pytest.raises(WeightsError, match="not a fineact training checkpoint"):
        torch.save({"state_dict": other.state_dict()}, tmp_path / "plain.ckpt")
        load_module(tmp_path / "plain.ckpt")


def test_a_pickled_object_in_a_checkpoint_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this would have run",))

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"config": Payload()}}, path)
    with pytest.raises(WeightsError, match="weights-only"):
        load_module(path)


def _source_files():
    return sorted(SRC.rglob("*.py"))


def test_every_torch_load_is_weights_only_and_nothing_uses_pickle_or_a_shell():
    loads, offenders = 0, []
    for path in _source_files():
        text = path.read_text()
        for match in re.finditer(r"torch\.load\(([^)]*)\)", text):
            loads += 1
            if "weights_only=True" not in match.group(1):
                offenders.append(f"{path.name}: {match.group(0)}")
        if re.search(r"^\s*(import pickle|from pickle|import dill|import cloudpickle)", text, re.M):
            offenders.append(f"{path.name}: imports pickle")
        if "shell=True" in text or "os.system(" in text:
            offenders.append(f"{path.name}: runs a shell")
    assert loads >= 3 and offenders == []
