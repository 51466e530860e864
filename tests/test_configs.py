"""The reproduction recipes in configs/ cannot rot.

Every configs/*.yaml (globbed, so a new file is covered automatically) must load as written, build its
full-size model with the real label files and take one training step on tiny clips. The label files come from
../shared/data (the configs point at the user's downloads under ../data, absent in CI); the user-supplied
ImageNet weights and the base-model checkpoints of the multi-task recipes are left out. Header comments must
name the paper table, the expected result and the command; multi-task recipes must point at base recipes that
exist and sample the same clips as their pathways.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from fineact.config import load_config, to_dict
from fineact.engine.module import RecognitionModule
from fineact.engine.performance import performance_callbacks
from fineact.engine.optim import parameter_groups
from fineact.labels import LabelLevels, diving48_levels, finegym_levels, flat_levels, read_class_names

from test_arc import conv_input_layouts

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))  # every file is a paper recipe (the demo builds its configs in code)
SMOKE_OVERRIDES = ["model.args.pretrained=null"]  # ImageNet weights are user-supplied, not in CI
BATCH = 2
SIZE = 32  # the smallest input the stride-32 ResNets take: res5 maps are 1 x 1


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def smoke_config(path: Path) -> DictConfig:
    cfg = load_config(path, overrides=SMOKE_OVERRIDES)
    cfg.multitask.pathway_checkpoints = {}  # the base models' checkpoints do not exist here
    return cfg


def levels_for(cfg: DictConfig, shared: Path) -> LabelLevels:
    """The config's label levels, built from the copies of the label files in shared/data."""
    data = cfg.data
    if data.labels == "finegym":
        which = "gym288" if data.categories and "gym288" in Path(data.categories).name else "gym99"
        return finegym_levels(shared / "finegym" / f"{which}_categories.txt",
                              shared / "finegym" / "set_categories.txt")
    if data.labels == "diving48":
        return diving48_levels(shared / "diving48" / "Diving48_vocab.json")
    if data.format in ("sthv1_list", "sthv1_csv"):
        # TSM's category.txt for V1: the 174 names sorted, the order of this file (and of the flip label map).
        return flat_levels(read_class_names(shared / "something_something" / "sthv2_label_map_mmaction2.txt"))
    if data.format == "kinetics_csv" or "kinetics" in str(data.categories or ""):
        return flat_levels(read_class_names(shared / "kinetics400" / "label_map.txt"))
    if data.num_classes:
        return flat_levels([f"class {i}" for i in range(data.num_classes)])
    pytest.fail(f"no label file in shared/data matches data.labels={data.labels!r}, data.format={data.format!r}; "
                "teach levels_for() about it")


def header_comment(path: Path) -> str:
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return "\n".join(lines)


def smoke_clips(model: torch.nn.Module):
    """Random clips shaped as the model's clip_specs ask: a tensor for one pathway, else {pathway: tensor}."""
    clips = {name: torch.randn(BATCH, 3, spec.num_frames, SIZE, SIZE) for name, spec in model.clip_specs.items()}
    return clips["clip"] if list(clips) == ["clip"] else clips


def test_the_glob_found_the_recipes():
    assert len(CONFIGS) >= 25, f"expected at least 25 configs in {CONFIG_DIR}, found {len(CONFIGS)}"


@pytest.mark.parametrize("path", CONFIGS, ids=_ids(CONFIGS))
def test_config_loads_as_written(path):
    cfg = load_config(path)
    assert not OmegaConf.is_missing(cfg.model, "name")


@pytest.mark.parametrize("path", CONFIGS, ids=_ids(CONFIGS))
def test_header_names_table_expected_result_and_command(path):
    header = header_comment(path)
    assert re.search(r"\bexpected\b", header, re.IGNORECASE), f"{path.name}: header states no expected result"
    assert re.search(r"\bTable \d", header), f"{path.name}: header names no paper table"
    assert f"fineact train configs/{path.name}" in header, f"{path.name}: header lacks the command to run it"


@pytest.mark.parametrize("path", CONFIGS, ids=_ids(CONFIGS))
def test_name_and_paths_follow_the_layout(path):
    cfg = load_config(path)
    # runs/<name>/ is where the multi-task recipes look for the base models' checkpoints
    assert cfg.name == path.stem
    for split in ("train", "val", "test"):
        node = cfg.data[split]
        if node is not None:
            for key in ("annotations", "data_root"):
                assert Path(node[key]).is_relative_to(REPO / "data"), f"data.{split}.{key}: {node[key]}"
    for key in ("categories", "set_categories", "vocab"):
        if cfg.data[key]:
            assert Path(cfg.data[key]).is_relative_to(REPO / "data"), f"data.{key}: {cfg.data[key]}"
    pretrained = cfg.model.args.get("pretrained")
    if pretrained:
        assert Path(pretrained).is_relative_to(REPO / "pretrained"), f"model.args.pretrained: {pretrained}"


@pytest.mark.parametrize("path", CONFIGS, ids=_ids(CONFIGS))
def test_readme_lists_the_config(path):
    assert f"{path.name}" in (CONFIG_DIR / "README.md").read_text(), f"configs/README.md does not list {path.name}"


def _loaded(path: Path) -> DictConfig | None:
    """The config for selecting tests at collection time; a broken file fails test_config_loads_as_written."""
    try:
        return load_config(path)
    except Exception:
        return None


LOADED = {p: _loaded(p) for p in CONFIGS}
MULTITASK = [p for p, cfg in LOADED.items() if cfg is not None and cfg.multitask.pathway_checkpoints]


@pytest.mark.parametrize("path", MULTITASK, ids=_ids(MULTITASK))
def test_multitask_pathways_come_from_base_recipes(path):
    cfg = load_config(path)
    clips = cfg.model.args.get("pathway_clips")
    for pathway, checkpoint in cfg.multitask.pathway_checkpoints.items():
        checkpoint = Path(checkpoint)
        assert checkpoint.parts[-2:] == ("checkpoints", "best.ckpt")
        run_dir = checkpoint.parent.parent
        assert run_dir.parent == REPO / "runs", f"pathway {pathway}: {checkpoint} is not under runs/"
        base_path = CONFIG_DIR / f"{run_dir.name}.yaml"
        assert base_path.is_file(), f"pathway {pathway}: no base recipe {base_path.name}"
        base = load_config(base_path)
        assert base.level == pathway, f"{base_path.name} trains level {base.level!r}, not {pathway!r}"
        arch = cfg.model.args.get("pathway_archs", {}).get(pathway, "slowonly")
        assert base.model.name == f"{arch}_r50", f"pathway {pathway} is a {arch}; {base_path.name} is not"
        if clips is not None:  # the pathway samples the clip its base model was trained on
            assert list(clips[pathway]) == [base.model.args.num_frames, base.model.args.frame_interval]


FLIP_MAPS = [p for p, cfg in LOADED.items() if cfg is not None and cfg.data.flip_label_map]


@pytest.mark.parametrize("path", FLIP_MAPS, ids=_ids(FLIP_MAPS))
def test_flip_label_map_swaps_left_and_right_classes(path, shared_data):
    cfg = load_config(path)
    names = levels_for(cfg, shared_data).class_names["label"]
    swap = {"left": "right", "right": "left"}
    for a, b in cfg.data.flip_label_map.items():
        assert cfg.data.flip_label_map[b] == a
        flipped = re.sub(r"\b(left|right)\b", lambda m: swap[m.group(1)], names[a])
        assert flipped == names[b] != names[a], f"class {a} {names[a]!r} does not flip into {b} {names[b]!r}"


@pytest.mark.parametrize("path", CONFIGS, ids=_ids(CONFIGS))
def test_recipe_builds_and_trains_one_step(path, shared_data):
    torch.manual_seed(0)
    cfg = smoke_config(path)
    levels = levels_for(cfg, shared_data)
    module = RecognitionModule(to_dict(cfg), levels.to_dict())
    model = module.model
    if cfg.level:
        assert module.trained_levels == [cfg.level]
    elif cfg.model.levels:
        assert module.trained_levels == list(cfg.model.levels)

    # The optimiser groups of the config's policy: every trainable parameter in exactly one group.
    opt = cfg.optim
    groups = parameter_groups(model, opt.lr, opt.weight_decay, opt.decay_bn_and_bias, opt.decay_arc,
                              opt.classifier_lr_mult, opt.classifier_bias_lr_mult)
    grouped = [id(p) for group in groups for p in group["params"]]
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert len(grouped) == len(set(grouped)), "a parameter is in two optimiser groups"
    assert set(grouped) == trainable, "trainable parameters missing from the optimiser groups (or frozen ones in)"
    by_name = {group["name"]: group for group in groups}
    if opt.classifier_lr_mult != 1.0:  # the multiplier must reach the classifier, not silently nothing
        assert math.isclose(by_name["classifier_weight"]["lr"], opt.lr * opt.classifier_lr_mult)
        assert math.isclose(by_name["classifier_bias"]["lr"], opt.lr * opt.classifier_bias_lr_mult)

    # One training step (what training_step does, without a Trainer).
    module.train()
    labels = torch.randint(levels.num_classes[levels.finest], (BATCH,))
    outputs = module(smoke_clips(model))
    for level in module.trained_levels:
        assert outputs[level].shape == (BATCH, levels.num_classes[level])
    loss, _ = module.compute_loss(outputs, module.targets(labels))
    assert torch.isfinite(loss), f"loss {loss.item()}"
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters() if p.requires_grad)
    if cfg.model.name == "hierarchical_multitask" and cfg.multitask.freeze_pathways:
        assert all(p.grad is None for p in model.pathways.parameters()), "frozen pathways got gradients"


@pytest.mark.parametrize("name", ["ssv1_arc_tsm_r18_8f.yaml", "gym99_multitask_set_t8_element_slowonly.yaml"])
def test_channels_last_option_feeds_the_model_channels_last_clips_and_keeps_outputs(name, shared_data):
    """trainer.channels_last=true: the Trainer's PerformanceOptions callback converts the model (setup) and
    every batch's clips (batch start, training and evaluation batches); the outputs stay those of the NCHW
    module."""
    torch.manual_seed(0)
    cfg = smoke_config(CONFIG_DIR / name)
    levels = levels_for(cfg, shared_data)
    plain = RecognitionModule(to_dict(cfg), levels.to_dict()).eval()
    cfg.trainer.channels_last = True
    fast = RecognitionModule(to_dict(cfg), levels.to_dict()).eval()
    fast.model.load_state_dict(plain.model.state_dict())
    (options,) = performance_callbacks(cfg.trainer)
    options.setup(None, fast, "fit")
    convs = [m for m in fast.model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))]
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last if m.weight.dim() == 4
                                      else torch.channels_last_3d) for m in convs)
    seen = conv_input_layouts(fast.model)
    clips = smoke_clips(plain.model)
    batch = {"clips": clips}
    options.on_train_batch_start(None, fast, batch, 0)
    with torch.no_grad():
        want, got = plain(clips), fast(batch["clips"])
    assert seen and all(seen)  # the stem included: the clips arrived channels_last
    for level in want:
        assert torch.allclose(got[level], want[level], atol=1e-5)
    # An evaluation batch (B, V, C, T, H, W): its flattened views reach the model channels_last too.
    views = _map(clips, lambda t: torch.stack([t, t.flip(-1)], 1))
    batch = {"clips": views}
    options.on_test_batch_start(None, fast, batch, 0)
    seen.clear()
    with torch.no_grad():
        want, got = plain.aggregate_views(views), fast.aggregate_views(batch["clips"])
    assert seen and all(seen)
    for level in want:
        assert torch.allclose(got[level], want[level], atol=1e-5)


def _map(clips, fn):
    return {k: fn(v) for k, v in clips.items()} if isinstance(clips, dict) else fn(clips)
