"""Training, evaluation, resume, export and prediction through the engine on a tiny synthetic dataset."""

import json
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import tiny_experiment
from fineact.cli import main
from fineact.config import load_config
from fineact.engine.checkpoints import load_module, read_checkpoint
from fineact.engine.run import train
from fineact.errors import ConfigError


def _labels(path):
    return [int(line.split()[1]) for line in Path(path).read_text().splitlines() if line.strip()]


def test_train_writes_checkpoints_results_and_export(tiny_gym, tmp_path):
    cfg = load_config(base=tiny_experiment(tiny_gym, tmp_path / "run"))
    summary = train(cfg)
    assert summary.best_checkpoint.is_file() and summary.last_checkpoint.is_file()
    results = json.loads(summary.results_path.read_text())
    val_labels = _labels(tiny_gym.val_list)
    element = results["metrics"]["element"]
    assert element["num_videos"] == len(val_labels)
    assert 0.0 <= element["top1"] <= element["top5"] <= 1.0
    per_class = (summary.results_path.parent / "results_val_element_per_class.csv").read_text().splitlines()
    assert per_class[0] == "class_index,class_name,support,accuracy" and len(per_class) == 1 + 16
    confusion = np.loadtxt(summary.results_path.parent / "results_val_element_confusion.csv", delimiter=",")
    assert confusion.sum() == len(val_labels)
    assert np.array_equal(confusion.sum(1), np.bincount(val_labels, minlength=16))  # rows = true classes
    # The export rebuilds the same model without pickle and gives the checkpoint's outputs.
    exported = load_module(summary.exported)
    from_ckpt = load_module(summary.best_checkpoint)
    clip = torch.randn(1, 3, 4, 24, 24)
    assert torch.equal(exported.model(clip), from_ckpt.model(clip))
    assert set(load_file(str(summary.exported))) == set(from_ckpt.model.state_dict())
    # Lightning checkpoints load with weights_only=True (no pickled code).
    assert "state_dict" in read_checkpoint(summary.last_checkpoint)
    # Any split can be evaluated, the training split too: with the test protocol's views, not augmented clips.
    assert main(["test", str(tmp_path / "run" / "config.yaml"), "--checkpoint", str(summary.best_checkpoint),
                 "--split", "train"]) == 0
    train_results = json.loads((summary.best_checkpoint.parent / "results_train.json").read_text())
    assert train_results["metrics"]["element"]["num_videos"] == len(_labels(tiny_gym.train_list))


class StopAfterEpoch(L.Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, module):
        if trainer.current_epoch == self.epoch:
            trainer.should_stop = True


def test_resume_after_epoch_k_reaches_the_uninterrupted_weights(tiny_gym, tmp_path):
    base = tiny_experiment(tiny_gym, tmp_path / "a", trainer={"max_epochs": 3})
    uninterrupted = train(load_config(base=base))
    resumed_cfg = load_config(base=tiny_experiment(tiny_gym, tmp_path / "b", trainer={"max_epochs": 3}))
    first = train(resumed_cfg, callbacks=[StopAfterEpoch(0)])  # stops after epoch 0 of 3
    stopped = read_checkpoint(first.last_checkpoint)
    assert stopped["epoch"] == 0
    second = train(resumed_cfg, resume=True)
    a = read_checkpoint(uninterrupted.last_checkpoint)["state_dict"]
    b = read_checkpoint(second.last_checkpoint)["state_dict"]
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"weights differ after resume: {different[:5]}"
    # and training really moved the weights (the comparison is not vacuous)
    init = stopped["state_dict"]
    assert any(not torch.equal(init[k], a[k]) for k in a if k.endswith("weight"))


def test_two_stage_multitask_with_feature_cache_and_predict_cli(tiny_gym, tmp_path, capsys):
    out = tmp_path / "two_stage"
    checkpoints = {}
    clips = {"event": [4, 8], "set": [8, 4], "element": [16, 2]}
    for level, (frames, interval) in clips.items():
        cfg = tiny_experiment(tiny_gym, out / level, level=level, trainer={"max_epochs": 1},
                              model={"name": "slowonly_r50", "args": {"depth": 18, "base_channels": 4,
                                                                      "num_frames": frames,
                                                                      "frame_interval": interval}})
        run = train(load_config(base=cfg))
        checkpoints[level] = str(run.best_checkpoint)
        assert run.results.levels[level].num_videos == 15
    mt = tiny_experiment(tiny_gym, out / "multitask", trainer={"max_epochs": 2},
                         model={"name": "hierarchical_multitask",
                                "args": {"pathway_depth": 18, "base_channels": 4, "pathway_clips": clips,
                                         "encoder_dims": {"event": 8, "set": 8, "element": 16}, "fused_dim": 16}},
                         multitask={"pathway_checkpoints": checkpoints, "cache_features": True})
    run = train(load_config(base=mt))
    assert (out / "multitask" / "features" / "train.safetensors").is_file()
    assert set(run.results.levels) == {"event", "set", "element"}
    assert 0 <= run.results.consistency_rate <= 1
    # Frozen pathways: the multi-task network's pathways still hold the base models' weights.
    module = load_module(run.best_checkpoint)
    base = read_checkpoint(checkpoints["element"])["state_dict"]
    pathway = module.model.pathways["element"].backbone.state_dict()
    assert all(torch.equal(pathway[k], base[f"model.backbone.{k}"]) for k in pathway)
    # Cached-feature evaluation equals evaluating the full network on the videos.
    from fineact.engine.run import evaluate
    with pytest.raises(ConfigError, match="already holds results of this checkpoint"):
        evaluate(load_config(base=mt), run.best_checkpoint, "val", quiet=True)  # the run's own results stay
    video_results, _ = evaluate(load_config(base=mt), run.best_checkpoint, "val", quiet=True, overwrite=True)
    assert video_results.levels["element"].top1 == pytest.approx(run.results.levels["element"].top1)
    # fineact predict on a real mp4: top-5 per level with class names.
    video = sorted(Path(tiny_gym.videos_dir).glob("*.mp4"))[0]
    assert main(["predict", "--checkpoint", str(run.exported), str(video)]) == 0
    printed = capsys.readouterr().out
    for level in ("event:", "set:", "element:"):
        assert level in printed
    assert printed.count("%") >= 3 + 5 + 5  # 3 events (fewer than 5), top-5 sets and elements
    assert "(FX)" in printed or "(BB)" in printed or "(UB)" in printed  # element names from the category file
    assert main(["predict", "--json", "--topk", "2", "--checkpoint", str(run.exported), str(video)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload[str(video)]["element"]) == 2 and "name" in payload[str(video)]["element"][0]
    # The analysis commands on the same run: layer names, Grad-CAM pictures, a report folder.
    assert main(["layers", str(run.exported)]) == 0
    layers = capsys.readouterr().out.split()
    assert "pathways.element.backbone.layer2" in layers and "pathways.event.backbone.layer4" in layers
    assert main(["gradcam", str(video), "--checkpoint", str(run.exported), "--level", "set",
                 "--layer", "pathways.set.backbone.layer2", "--out", str(tmp_path / "cam")]) == 0
    pictures = sorted(p.suffix for p in (tmp_path / "cam").iterdir())
    assert pictures == [".gif", ".png"] and all(p.stat().st_size > 0 for p in (tmp_path / "cam").iterdir())
    assert main(["analyze", str(out / "multitask"), "--videos", str(video)]) == 0
    report = out / "multitask" / "checkpoints" / "report_val"
    html = (report / "index.html").read_text()
    assert "element" in html and "<img" in html
    assert all((report / src).is_file() for src in __import__("re").findall(r'src="([^"]+)"', html))


def test_ddp_two_cpu_processes_count_every_video_once(tiny_gym, tmp_path):
    config = tiny_experiment(tiny_gym, tmp_path / "ddp", trainer={"max_epochs": 1, "accelerator": "cpu",
                                                                  "devices": 2, "strategy": "ddp"},
                             data={"batch_size": 2})
    path = tmp_path / "ddp.yaml"
    from omegaconf import OmegaConf
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(config)))
    command = [sys.executable, "-m", "fineact.cli", "train", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "ddp" / "checkpoints" / "results_val.json").read_text())
    confusion = np.loadtxt(tmp_path / "ddp" / "checkpoints" / "results_val_element_confusion.csv", delimiter=",")
    val_labels = _labels(tiny_gym.val_list)  # 15 videos: uneven over 2 processes
    assert results["metrics"]["element"]["num_videos"] == 15
    assert np.array_equal(confusion.sum(1), np.bincount(val_labels, minlength=16))


def test_config_errors_from_the_command_line(tiny_gym, tmp_path, capsys, monkeypatch):
    from omegaconf import OmegaConf
    path = tmp_path / "c.yaml"
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(tiny_experiment(tiny_gym, tmp_path / "x"))))
    assert main(["train", str(path), "optim.lrr=0.1"]) == 2
    assert "did you mean 'optim.lr'" in capsys.readouterr().err
    assert main(["train", str(path), "optim.lr=-1"]) == 2
    assert "optim.lr: expected a positive learning rate, found -1.0" in capsys.readouterr().err
    assert main(["train", str(path), "level=elemnt"]) == 2
    assert "choose one of" in capsys.readouterr().err
    assert main(["train", str(path), "data.prefetch_factor=0"]) == 2
    assert "data.prefetch_factor: expected a value >= 1, found 0" in capsys.readouterr().err
    # overrides after an option still apply (the bad value is reported), unknown options are still refused
    assert main(["train", str(path), "--resume", "data.prefetch_factor=0"]) == 2
    assert "data.prefetch_factor: expected a value >= 1, found 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", str(path), "--resume", "--resme"])
    assert "unrecognized arguments: --resme" in capsys.readouterr().err
    import fineact.config

    monkeypatch.setattr(fineact.config, "_tensorboard_installed", lambda: False)
    assert main(["train", str(path), "trainer.tensorboard=true"]) == 2
    assert "trainer.tensorboard: expected false, or true with the tensorboard package installed" in \
        capsys.readouterr().err
    assert main(["train", str(path), "trainer.compile=true", "trainer.compile_backend=inductr"]) == 2
    assert "trainer.compile_backend: expected a torch.compile backend" in capsys.readouterr().err
    assert main(["train", str(path), "trainer.compile=true", "trainer.compile_backend=aot_eager",
                 "trainer.compile_mode=max-autotune"]) == 2
    assert "trainer.compile_mode: expected default unless trainer.compile_backend is inductor" in \
        capsys.readouterr().err
    # Mistakes found while building the run (labels, model, annotations) leave no output folder behind.
    for override, named in (("model.args.depth=19", "depth"), ("data.format=vide_list", "data.format: expected"),
                            ("model.name=tsm_r19", "model.name: unknown model 'tsm_r19'"),
                            (f"data.train.annotations={tmp_path / 'missing.txt'}", "missing.txt")):
        assert main(["train", str(path), override]) == 2, override
        err = capsys.readouterr().err
        assert err.startswith("fineact train: error:") and named in err, err
        assert not (tmp_path / "x").exists(), override


COMPILED_GRAPHS: list[list[torch.Size]] = []  # placeholder shapes of each graph the recorder backend was given


def _graph_recorder(gm, example_inputs):
    """A torch.compile backend that notes the input shapes of each graph and runs it as traced."""
    COMPILED_GRAPHS.append([node.meta["example_value"].shape for node in gm.graph.find_nodes(op="placeholder")
                            if isinstance(node.meta.get("example_value"), torch.Tensor)])
    return gm.forward


def test_compile_option_traces_one_static_graph_per_clip_shape(tiny_gym, tmp_path):
    """trainer.compile=true through `train`: the model is compiled in place (checkpoint keys unchanged) with static
    shapes, so the last, smaller validation batch gets a graph of its own instead of a symbolic batch size."""
    from torch._dynamo import list_backends, register_backend

    if "fineact_test_recorder" not in list_backends(exclude_tags=()):
        register_backend(_graph_recorder, name="fineact_test_recorder")
    COMPILED_GRAPHS.clear()
    args = {"depth": 18, "base_channels": 4, "num_frames": 4, "frame_interval": 4, "arc_stages": [4, 5]}
    cfg = load_config(base=tiny_experiment(
        tiny_gym, tmp_path / "run", model={"name": "slowonly_r50", "args": args},
        trainer={"max_epochs": 1, "compile": True, "compile_backend": "fineact_test_recorder"}))
    summary = train(cfg)
    assert all(isinstance(size, int) for shapes in COMPILED_GRAPHS for shape in shapes for size in shape)
    clip_batches = {shape[0] for shapes in COMPILED_GRAPHS for shape in shapes if tuple(shape[1:]) == (3, 4, 24, 24)}
    assert clip_batches == {4, 3}  # 16 training clips in batches of 4; 15 validation clips: 4 + 4 + 4 + 3
    keys = read_checkpoint(summary.last_checkpoint)["state_dict"].keys()
    assert keys and not any("_orig_mod" in k for k in keys)


def test_evaluating_a_checkpoint_with_another_configs_labels_is_refused():
    from fineact.engine.run import _check_labels_match
    from fineact.labels import flat_levels

    _check_labels_match(Path("a.ckpt"), flat_levels(["x", "y", "z"]), flat_levels(["x", "y", "z"]))
    with pytest.raises(ConfigError, match=r"checkpoint a.ckpt: .*checkpoint label 3; data label 2"):
        _check_labels_match(Path("a.ckpt"), flat_levels(["x", "y", "z"]), flat_levels(["x", "y"]))
    with pytest.raises(ConfigError, match="or the same counts with other names"):
        _check_labels_match(Path("a.ckpt"), flat_levels(["x", "y"]), flat_levels(["x", "w"]))
