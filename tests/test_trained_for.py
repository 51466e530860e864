"""The multi-task recipe checks its pathways: each base checkpoint/export records the level and clip it was trained
for (interop/trained_for.py), and a base model given as another level's pathway is refused with both named."""

from __future__ import annotations

import pytest
import torch
import yaml

from conftest import tiny_experiment
from fineact.cli import main
from fineact.config import load_config
from fineact.engine.checkpoints import export_weights
from fineact.engine.run import build_module
from fineact.errors import WeightsError
from fineact.interop.trained_for import CHECKPOINT_KEY, read_trained_for
from fineact.models import build_model

CLIPS = {"event": [4, 8], "set": [8, 4], "element": [16, 2]}
TINY_MT = dict(pathway_depth=18, base_channels=4, encoder_dims={"event": 8, "set": 8, "element": 8}, fused_dim=8)


def _base_config(ds, out, level: str, clip=None) -> dict:
    frames, interval = clip or CLIPS[level]
    return tiny_experiment(ds, out, level=level, model={"name": "slowonly_r50", "args": {
        "depth": 18, "base_channels": 4, "num_frames": frames, "frame_interval": interval}})


def _checkpoint(ds, tmp_path, level: str, clip=None, record: bool = True):
    """A base model's checkpoint as Lightning writes it (the module's own on_save_checkpoint adds the record)."""
    module = build_module(load_config(base=_base_config(ds, tmp_path / level, level, clip)))
    checkpoint = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
    if record:
        module.on_save_checkpoint(checkpoint)
    path = tmp_path / f"{level}.ckpt"
    torch.save(checkpoint, path)
    return path, module


def _multitask(**checkpoints):
    sizes = {"event": 4, "set": 14, "element": 99}
    return build_model("hierarchical_multitask", levels=sizes, pathway_clips=CLIPS,
                       pathway_checkpoints={k: str(v) for k, v in checkpoints.items()}, **TINY_MT)


def test_checkpoints_and_exports_record_their_level_and_clip(tiny_gym, tmp_path):
    path, module = _checkpoint(tiny_gym, tmp_path, "set")
    assert torch.load(path, weights_only=True)[CHECKPOINT_KEY] == {"levels": ["set"], "clips": {"clip": [8, 4]}}
    assert read_trained_for(path) == {"levels": ["set"], "clips": {"clip": [8, 4]}}
    export = export_weights(module, tmp_path / "set_export")
    assert read_trained_for(export) == {"levels": ["set"], "clips": {"clip": [8, 4]}}


def test_a_set_checkpoint_given_as_the_event_pathway_is_refused_with_both_named(tiny_gym, tmp_path):
    set_ckpt, _ = _checkpoint(tiny_gym, tmp_path, "set", clip=CLIPS["event"])  # same clip: only the level differs
    with pytest.raises(WeightsError) as info:
        _multitask(event=set_ckpt)
    text = str(info.value)
    assert "multitask.pathway_checkpoints.event" in text and "level 'set'" in text and "'event' pathway" in text


def test_an_export_of_another_level_is_refused_too(tiny_gym, tmp_path):
    _, module = _checkpoint(tiny_gym, tmp_path, "element", clip=CLIPS["set"])
    export = export_weights(module, tmp_path / "element_export")
    with pytest.raises(WeightsError, match="level 'element'"):
        _multitask(set=export)


def test_a_base_model_trained_on_another_clip_is_refused(tiny_gym, tmp_path):
    event_ckpt, _ = _checkpoint(tiny_gym, tmp_path, "event", clip=[2, 16])
    with pytest.raises(WeightsError, match=r"trained on 2 x 16 clips .* takes 4 x 8"):
        _multitask(event=event_ckpt)


def test_the_right_checkpoints_load(tiny_gym, tmp_path):
    paths = {level: _checkpoint(tiny_gym, tmp_path, level)[0] for level in CLIPS}
    model = _multitask(**paths)
    assert set(model.load_reports) == set(CLIPS)


def test_older_checkpoints_without_the_record_still_tell_their_level(tiny_gym, tmp_path):
    set_ckpt, _ = _checkpoint(tiny_gym, tmp_path, "set", clip=CLIPS["event"], record=False)
    assert read_trained_for(set_ckpt) == {"levels": ["set"], "clips": {}}
    with pytest.raises(WeightsError, match="level 'set'"):
        _multitask(event=set_ckpt)


def test_fineact_train_refuses_the_swapped_pathway_before_training(tiny_gym, tmp_path, capsys):
    set_ckpt, _ = _checkpoint(tiny_gym, tmp_path, "set", clip=CLIPS["event"])
    config = tiny_experiment(tiny_gym, tmp_path / "mt", model={"name": "hierarchical_multitask", "args": {
        **TINY_MT, "pathway_clips": CLIPS}}, multitask={"pathway_checkpoints": {"event": str(set_ckpt)}})
    path = tmp_path / "mt.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert "level 'set'" in err and "'event' pathway" in err and "Traceback" not in err
    assert not (tmp_path / "mt").exists()
