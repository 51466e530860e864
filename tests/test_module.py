"""The LightningModule's science (one loss, one consistency count) and the callbacks that took its engineering."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from conftest import tiny_experiment
from fineact.config import load_config
from fineact.data.unreadable import UnreadableVideo, decode, encode
from fineact.engine import module as module_code
from fineact.engine.module import RecognitionModule, loss_weights_for
from fineact.engine.run import levels_from_config
from fineact.engine.unreadable_videos import UnreadableVideos
from fineact.errors import ConfigError
from fineact.labels import LabelLevels, consistency_rate, consistent_samples

MULTITASK = {"name": "hierarchical_multitask",
             "args": {"pathway_depth": 18, "base_channels": 4,
                      "pathway_clips": {"event": [2, 8], "set": [2, 4], "element": [4, 2]}}}


def _module(tiny_gym, tmp_path, **sections) -> RecognitionModule:
    cfg = load_config(base=tiny_experiment(tiny_gym, tmp_path, **sections))
    return RecognitionModule(OmegaConf.to_container(cfg, resolve=True), levels_from_config(cfg).to_dict())


def _outputs_and_targets(module: RecognitionModule, batch: int = 6):
    generator = torch.Generator().manual_seed(0)
    sizes = {level: module.levels.num_classes[level] for level in module.trained_levels}
    outputs = {level: torch.randn(batch, n, generator=generator) for level, n in sizes.items()}
    finest = torch.randint(sizes[module.levels.finest], (batch,), generator=generator)
    return outputs, module.targets(finest)


def test_training_loss_is_level_loss_with_label_smoothing(tiny_gym, tmp_path, monkeypatch):
    module = _module(tiny_gym, tmp_path, model=MULTITASK, loss={"label_smoothing": 0.1})
    assert module.loss_weights == {"event": 1.0, "set": 2.0, "element": 4.0}  # the model's 1 : 2 : 4
    calls = []
    real = module_code.level_loss
    monkeypatch.setattr(module_code, "level_loss", lambda *a, **k: calls.append((a, k)) or real(*a, **k))
    outputs, targets = _outputs_and_targets(module)
    total, per_level = module.compute_loss(outputs, targets)
    assert len(calls) == 1  # training's loss is models/multitask.py's level_loss, nothing else
    # Stated independently: sum of lambda * smoothed cross-entropy.
    want = {lv: F.cross_entropy(outputs[lv], targets[lv], label_smoothing=0.1) for lv in per_level}
    assert set(per_level) == {"event", "set", "element"}
    for level in want:
        assert torch.allclose(per_level[level], want[level])
    assert torch.allclose(total, want["event"] + 2 * want["set"] + 4 * want["element"])
    unsmoothed = F.cross_entropy(outputs["element"], targets["element"])
    assert not torch.allclose(per_level["element"], unsmoothed)


def test_configured_loss_weights_replace_the_models(tiny_gym, tmp_path):
    module = _module(tiny_gym, tmp_path, model=MULTITASK, loss={"weights": {"element": 1.0, "set": 0.5,
                                                                           "event": 0.0}})
    assert list(module.loss_weights.items()) == [("event", 0.0), ("set", 0.5), ("element", 1.0)]
    outputs, targets = _outputs_and_targets(module)
    total, per_level = module.compute_loss(outputs, targets)
    assert torch.allclose(total, 0.5 * per_level["set"] + per_level["element"])


@pytest.mark.parametrize("weights, named", [({"event": 1.0, "set": 2.0}, "missing level(s) ['element']"),
                                            ({"event": 1, "set": 2, "element": 4, "elemnt": 1},
                                             "unknown level(s) ['elemnt']")])
def test_loss_weights_must_name_exactly_the_trained_levels(tiny_gym, tmp_path, weights, named):
    with pytest.raises(ConfigError) as info:
        _module(tiny_gym, tmp_path, model=MULTITASK, loss={"weights": weights})
    message = str(info.value)
    assert "loss.weights" in message and named in message and "['event', 'set', 'element']" in message


def test_single_level_weights():
    assert loss_weights_for({}, ["element"], None) == {"element": 1.0}
    assert loss_weights_for({"element": 3}, ["element"], None) == {"element": 3.0}
    with pytest.raises(ConfigError, match=r"unknown level\(s\) \['set'\]"):
        loss_weights_for({"set": 1.0}, ["element"], None)


def _tree() -> LabelLevels:
    # coarse: 2 classes; fine: 4 classes, fine 0,1 -> coarse 0 and fine 2,3 -> coarse 1
    return LabelLevels(("coarse", "fine"), {"coarse": ["a", "b"], "fine": ["a1", "a2", "b1", "b2"]},
                       {"coarse": [0, 0, 1, 1], "fine": [0, 1, 2, 3]})


def test_consistent_samples_says_which_predictions_form_a_path():
    levels = _tree()
    fine = torch.tensor([0, 1, 2, 3, 2])
    coarse = torch.tensor([0, 1, 1, 0, 1])  # sample 1 and 3 contradict their fine prediction
    agree = consistent_samples(levels, {"coarse": coarse, "fine": fine})
    assert agree.tolist() == [True, False, True, False, True]
    assert consistency_rate(levels, {"coarse": coarse, "fine": fine}) == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="finest level 'fine'"):
        consistent_samples(levels, {"coarse": coarse})


def test_unreadable_videos_travel_as_records():
    videos = [UnreadableVideo("/d/a.mp4", "/d/a.mp4: truncated\nat frame 3"), UnreadableVideo("/d/b.mp4", "gone")]
    text = encode(videos)
    assert decode(text) == [UnreadableVideo("/d/a.mp4", "/d/a.mp4: truncated at frame 3"), videos[1]]
    assert decode(["", text, encode(videos[1:])])[-1] == videos[1]  # a collated batch field
    assert decode("") == [] and decode(None) == []
    assert videos[0].describe().startswith("/d/a.mp4: truncated") and videos[1].describe() == "/d/b.mp4: gone"


def test_the_callback_names_each_video_once_and_guards_the_bad_fraction(capsys):
    raised = []
    datamodule = SimpleNamespace(raise_if_too_many_bad=lambda videos: raised.append(list(videos)))
    trainer = SimpleNamespace(is_global_zero=True, sanity_checking=False, datamodule=datamodule)
    callback = UnreadableVideos()
    bad = encode([UnreadableVideo("/d/a.mp4", "truncated")])
    for epoch in range(2):
        callback.on_train_batch_start(trainer, None, {"skipped": [bad, ""]}, 0)
        callback.on_validation_batch_start(trainer, None, {"skipped": [bad]}, 0)
        callback.on_validation_epoch_end(trainer, None)
        callback.on_train_epoch_end(trainer, None)
    out = capsys.readouterr().out
    assert out.count("unreadable video(s) in data.train, replaced by other samples:\n  /d/a.mp4: truncated") == 1
    assert out.count("in data.val, left out of the validation metrics") == 1
    assert [len(videos) for videos in raised] == [1, 2]  # every occurrence counts toward the fraction check


def test_evaluation_results_read_back_what_they_write(tmp_path):
    import json

    from fineact.engine.results import EvaluationResults, LevelResult, write_results
    from fineact.errors import FineactError

    levels = _tree()
    results = EvaluationResults({
        "coarse": LevelResult({1: 0.5}, 0.5, 2, [1.0, 0.0], [1, 1], [[1, 0], [1, 0]], consistent_top1=0.5),
        "fine": LevelResult({1: 0.5, 3: 1.0}, 0.5, 2, [1.0, float("nan"), 0.0, float("nan")], [1, 0, 1, 0],
                            [[1, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])}, consistency_rate=0.5)
    path = write_results(results, levels, tmp_path, stem="results_val")
    metrics = json.loads(path.read_text())["metrics"]
    # The file keeps fineact's flat form: levels and the consistency rate side by side, no matrices.
    assert list(metrics) == ["coarse", "fine", "consistency_rate"]
    assert list(metrics["coarse"]) == ["top1", "mean_class_accuracy", "num_videos", "consistent_top1"]
    back = EvaluationResults.from_dict(metrics)
    assert back.consistency_rate == 0.5 and back.levels["fine"].topk == {1: 0.5, 3: 1.0}
    assert back.levels["fine"].top5 is None and back.levels["coarse"].consistent_top1 == 0.5
    full = EvaluationResults.from_dict(results.as_dict())
    assert full.levels["coarse"].confusion == [[1, 0], [1, 0]] and full.levels["coarse"].num_classes == 2
    with pytest.raises(FineactError, match="level 'fine'.*top1"):
        EvaluationResults.from_dict({"fine": {"mean_class_accuracy": 0.5}})


def test_the_module_keeps_plain_strings_whatever_config_it_is_given(tiny_gym, tmp_path):
    cfg = load_config(base=tiny_experiment(tiny_gym, tmp_path))
    with_enums = OmegaConf.to_container(cfg, resolve=True)  # choices stay Enum members here
    assert type(with_enums["eval"]["aggregate"]) is not str
    module = RecognitionModule(with_enums, levels_from_config(cfg).to_dict())
    assert type(module.hparams["config"]["eval"]["aggregate"]) is str
    assert type(module.hparams["config"]["data"]["format"]) is str


def test_a_crop_larger_than_the_resized_frame_is_a_config_error(tiny_gym, tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(base=tiny_experiment(tiny_gym, tmp_path, data={"crop_size": 500}))
    message = str(info.value)
    assert "data.crop_size" in message and "shorter side, 32 (data.resize=[32])" in message and "500" in message
    with pytest.raises(ConfigError, match=r"shorter side, 30 \(data.resize=\[30, 40\]\)"):
        load_config(base=tiny_experiment(tiny_gym, tmp_path, data={"resize": [30, 40], "crop_size": 31}))
    load_config(base=tiny_experiment(tiny_gym, tmp_path, data={"resize": [30, 40], "crop_size": 30}))


def test_a_run_whose_validation_measured_no_video_fails(tiny_gym, tmp_path):
    from fineact.engine.run import train
    from fineact.errors import FineactError

    empty = tmp_path / "no_videos"
    empty.mkdir()
    val = {"annotations": str(tiny_gym.val_list), "data_root": str(empty)}
    cfg = load_config(base=tiny_experiment(tiny_gym, tmp_path / "run", data={"val": val},
                                           trainer={"max_epochs": 1}))
    with pytest.raises(FineactError, match="data.val: no video could be evaluated"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints" / "best.ckpt").exists()
    assert not list((tmp_path / "run").glob("results_*.json"))


def test_results_files_are_strict_json(tmp_path):
    import json

    from fineact.engine.results import EvaluationResults, LevelResult, write_results

    levels = _tree()
    results = EvaluationResults({"fine": LevelResult({1: 0.0}, float("nan"), 0, [float("nan")] * 4, [0] * 4,
                                                     [[0] * 4 for _ in range(4)], consistent_top1=float("inf"))})
    path = write_results(results, levels, tmp_path, extra={"note": [float("-inf")]})

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    data = json.loads(path.read_text(), parse_constant=refuse)
    assert data["metrics"]["fine"]["mean_class_accuracy"] is None and data["note"] == [None]
    back = EvaluationResults.from_dict(data["metrics"])
    assert back.levels["fine"].consistent_top1 is None


def test_nothing_a_user_produced_is_replaced_without_being_asked(tiny_gym, tmp_path, capsys):
    from fineact.cli import main
    from fineact.engine.run import test, train

    config = tiny_experiment(tiny_gym, tmp_path / "run", trainer={"max_epochs": 1})
    run = train(load_config(base=config))
    best = run.best_checkpoint.read_bytes()
    results = (run.best_checkpoint.parent / "results_val.json").read_bytes()
    # Training again into the finished run's folder, without --resume: refused before anything is written.
    capsys.readouterr()
    yaml_path = tmp_path / "run" / "config.yaml"
    assert main(["train", str(yaml_path)]) == 2
    message = capsys.readouterr().err
    assert "holds a previous run" in message and "--resume" in message and "--overwrite" in message
    assert run.best_checkpoint.read_bytes() == best
    # Testing the checkpoint again: its results stay unless --overwrite says otherwise.
    assert main(["test", str(yaml_path), "--checkpoint", str(run.best_checkpoint)]) == 2
    assert "already holds results" in capsys.readouterr().err
    assert (run.best_checkpoint.parent / "results_val.json").read_bytes() == results
    assert main(["test", str(yaml_path), "--checkpoint", str(run.best_checkpoint), "--overwrite"]) == 0
    # A config that names another model than the checkpoint's is refused with both named.
    other = load_config(base=tiny_experiment(tiny_gym, tmp_path / "other", model=MULTITASK))
    with pytest.raises(ConfigError) as info:
        test(other, run.best_checkpoint, "val", overwrite=True)
    assert "'slowonly_r50'" in str(info.value) and "'hierarchical_multitask'" in str(info.value)
    # --overwrite replaces the run: nothing of the previous one is left to be taken for the new one's.
    stale = run.best_checkpoint.parent / "results_train.json"
    stale.write_text("{}")
    assert main(["train", str(yaml_path), "--overwrite"]) == 0
    assert not stale.exists() and run.best_checkpoint.is_file()
