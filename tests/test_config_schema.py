"""The config schema's marked fields: choices (enums), paths, and `trainer.extra` (any other Trainer argument)."""

from __future__ import annotations

import inspect
import json
import typing
from dataclasses import fields
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from omegaconf import OmegaConf

from conftest import tiny_experiment
from fineact import config as config_module
from fineact.config import (TRAINER_ARGS_SET_BY_FINEACT, Aggregate, AnnotationFormat, Choice, ExperimentConfig,
                            Precision, ShortVideo, load_config, to_dict, to_yaml)
from fineact.data.annotations import FORMATS
from fineact.data.sampling import SHORT_VIDEO_POLICIES
from fineact.engine import trainer as trainer_module
from fineact.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def _choice_keys(section: type = ExperimentConfig, prefix: str = "") -> dict[str, type[Choice]]:
    """Every choice field of the schema, by dotted key (found by walking the dataclasses)."""
    found = {}
    for name, hint in typing.get_type_hints(section).items():
        inner = next((t for t in (hint, *typing.get_args(hint)) if hasattr(t, "__dataclass_fields__")), None)
        if inner is not None:
            found.update(_choice_keys(inner, f"{prefix}{name}."))
        elif isinstance(hint, type) and issubclass(hint, Choice):
            found[prefix + name] = hint
    return found


CHOICE_KEYS = _choice_keys()


def _flat(tree, prefix: str = "") -> dict:
    if not isinstance(tree, dict):
        return {prefix[:-1]: tree}
    out = {}
    for key, value in tree.items():
        out.update(_flat(value, f"{prefix}{key}."))
    return out


def _written(tmp_path: Path, config: dict, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


# ---------------------------------------------------------------------------------------------------------------
# Choices
# ---------------------------------------------------------------------------------------------------------------

def test_the_schema_marks_the_fixed_value_fields_as_choices():
    assert set(CHOICE_KEYS) >= {"data.format", "data.labels", "data.train_crop", "data.short_video",
                                "schedule.kind", "eval.aggregate", "trainer.precision", "trainer.compile_mode"}
    # the values are those of the code that consumes them
    assert [c.value for c in AnnotationFormat] == list(FORMATS)
    assert [c.value for c in ShortVideo] == list(SHORT_VIDEO_POLICIES)
    from lightning.fabric import connector  # Lightning's own lists of the names it accepts

    lightning_names = {*typing.get_args(connector._PRECISION_INPUT_STR),
                       *typing.get_args(connector._PRECISION_INPUT_STR_ALIAS)}
    assert {c.value for c in Precision} == lightning_names


def test_choice_values_behave_as_plain_strings_everywhere_they_go(tmp_path):
    cfg = load_config(REPO / "configs" / "ssv1_tsm_r18_8f.yaml", overrides=["eval.aggregate=softmax_mean"])
    value = cfg.eval.aggregate
    assert isinstance(value, Aggregate) and value is Aggregate("softmax_mean")
    assert value == "softmax_mean" and value in ("softmax_mean", "x") and {"softmax_mean": 1}[value] == 1
    assert f"{value}" == str(value) == "softmax_mean" and f"{value:>13}" == " softmax_mean"
    assert f"{value!r}" == "'softmax_mean'"  # messages such as `found {value!r}` read as before
    assert json.dumps({"aggregate": value}) == '{"aggregate": "softmax_mean"}'  # results JSON
    assert cfg.data.format in FORMATS and FORMATS[cfg.data.format] is FORMATS["sthv1_list"]
    plain = to_dict(cfg)
    for key in CHOICE_KEYS:
        leaf = _flat(plain)[key]
        assert type(leaf) is str and leaf == OmegaConf.select(cfg, key), key
    text = to_yaml(cfg)
    assert "aggregate: softmax_mean" in text and "Aggregate" not in text
    assert yaml.safe_load(yaml.safe_dump(plain)) == plain  # hparams.yaml (Lightning's loggers) and exports
    # a YAML written back is read back to the same config
    again = load_config(_written(tmp_path, yaml.safe_load(text)))
    assert to_dict(again)["eval"] == plain["eval"] and again.trainer.precision == "32-true"


@pytest.mark.parametrize("key, bad, closest", [
    ("data.format", "vide_list", "video_list"),
    ("eval.aggregate", "softmax", "softmax_mean"),
    ("schedule.kind", "cosin", "cosine"),
    ("data.short_video", "loops", "loop"),
    ("trainer.precision", "bf16-mix", "bf16-mixed"),
])
def test_a_choice_typo_names_file_key_allowed_values_and_the_closest(tmp_path, key, bad, closest):
    section, leaf = key.split(".")
    path = _written(tmp_path, {"model": {"name": "tsm_r18"}, section: {leaf: bad}})
    allowed = ", ".join(c.value for c in CHOICE_KEYS[key])
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}: expected one of {allowed}, found '{bad}'"), message
    assert message.endswith(f"did you mean '{closest}'?"), message
    with pytest.raises(ConfigError, match=f"override '{key}={bad}': {key}: expected one of"):
        load_config(REPO / "configs" / "ssv1_tsm_r18_8f.yaml", overrides=[f"{key}={bad}"])


def test_precision_accepts_lightnings_short_forms_also_as_numbers():
    # 64 (not 16): 16-bit precision needs a CUDA GPU, which engine/lightning_values.py checks on this machine.
    cfg = load_config(REPO / "configs" / "ssv1_tsm_r18_8f.yaml", overrides=["trainer.precision=64"])
    assert cfg.trainer.precision == "64" and to_dict(cfg)["trainer"]["precision"] == "64"


def test_checkpoints_hold_plain_strings_and_load_weights_only(tiny_gym, tmp_path):
    """The module's hyperparameters (pickled into every checkpoint) carry the choices as plain strings, so a
    checkpoint loads with torch.load(weights_only=True), as those written before the schema had enums did."""
    from fineact.engine.checkpoints import load_module
    from fineact.engine.run import build_module

    cfg = load_config(base=tiny_experiment(tiny_gym, tmp_path / "run"))
    module = build_module(cfg)
    hp_config = module.hparams["config"]
    for key in CHOICE_KEYS:
        assert type(_flat(hp_config)[key]) is str, key
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in module.model.state_dict().items()},
                "hyper_parameters": dict(module.hparams)}, path)
    torch.load(path, weights_only=True)
    loaded = load_module(path, config_overrides=cfg)  # `fineact test CONFIG --checkpoint`: run sections from cfg
    assert type(loaded.hparams["config"]["eval"]["aggregate"]) is str
    assert loaded.cfg.eval.aggregate == "softmax_mean"


# ---------------------------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------------------------

# The keys the hand-written list made absolute before path fields were marked in the schema.
PATH_KEYS_BEFORE = {f"data.{split}.{key}" for split in ("train", "val", "test") for key in ("annotations",
                                                                                           "data_root")} | \
    {"data.categories", "data.set_categories", "data.vocab", "pretrained", "model.args.pretrained"}


def _was_a_path(key: str) -> bool:
    return key in PATH_KEYS_BEFORE or key.startswith("multitask.pathway_checkpoints.")


def _check_paths_resolved_as_before(path: Path) -> None:
    unresolved = OmegaConf.merge(OmegaConf.structured(ExperimentConfig), OmegaConf.load(path))
    raw = _flat(OmegaConf.to_container(unresolved, resolve=True, enum_to_str=True, throw_on_missing=False))
    got = _flat(to_dict(load_config(path)))
    assert set(got) == set(raw)
    for key, value in raw.items():
        if _was_a_path(key) and isinstance(value, str) and value and not Path(value).is_absolute():
            value = str((path.resolve().parent / value).resolve())
        assert got[key] == value, key


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_path_fields_resolve_as_the_hand_list_did(path):
    _check_paths_resolved_as_before(path)


def test_every_kind_of_path_field_is_resolved_against_the_config_folder(tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    split = {"annotations": "../data/a.txt", "data_root": "../data/videos"}
    path = _written(folder, {
        "model": {"name": "tsm_r18", "args": {"pretrained": "w/r18.pth", "depth": 18}},
        "data": {"train": split, "val": split, "test": {"annotations": "/abs/t.txt", "data_root": "v"},
                 "labels": "diving48", "vocab": "vocab.json", "categories": "", "set_categories": None,
                 "filename_template": "img_{:05d}.jpg"},
        "multitask": {"pathway_checkpoints": {"event": "runs/e/best.ckpt", "set": "/abs/s.ckpt"}},
        "pretrained": "whole.ckpt", "output_dir": "out"})
    _check_paths_resolved_as_before(path)
    cfg = load_config(path)
    assert cfg.data.train.annotations == str(tmp_path / "data" / "a.txt")
    assert cfg.data.test.annotations == "/abs/t.txt" and cfg.data.test.data_root == str(folder / "v")
    assert cfg.model.args.pretrained == str(folder / "w" / "r18.pth") and cfg.model.args.depth == 18
    assert cfg.multitask.pathway_checkpoints == {"event": str(folder / "runs/e/best.ckpt"), "set": "/abs/s.ckpt"}
    assert cfg.pretrained == str(folder / "whole.ckpt") and cfg.data.vocab == str(folder / "vocab.json")
    assert cfg.data.categories == "" and cfg.data.set_categories is None
    assert cfg.output_dir == "out"  # relative to where the run starts, as before: not a path field


def test_path_fields_are_marked_in_the_schema():
    marked = {f.name for f in fields(config_module.SplitConfig) if f.metadata.get("path")}
    assert marked == {"annotations", "data_root", "shards"}  # shards: a pack folder (URLs are left as they are)
    assert {f.name for f in fields(config_module.DataConfig) if f.metadata.get("path")} == \
        {"categories", "set_categories", "vocab", "finegym_annotations"}


# ---------------------------------------------------------------------------------------------------------------
# trainer.extra
# ---------------------------------------------------------------------------------------------------------------

def test_trainer_extra_reaches_the_trainer(tmp_path):
    cfg = load_config(REPO / "configs" / "ssv1_tsm_r18_8f.yaml",
                      overrides=["trainer.extra.accumulate_grad_batches=2", "trainer.extra.val_check_interval=0.5",
                                 "trainer.progress_bar=false"])
    trainer = trainer_module.build_trainer(cfg, tmp_path)
    assert trainer.accumulate_grad_batches == 2 and trainer.val_check_interval == 0.5


@pytest.mark.parametrize("override, message", [
    ("trainer.extra.accumulate_grad_batch=2", "trainer.extra.accumulate_grad_batch: not an argument of "
                                              "lightning.Trainer; did you mean 'accumulate_grad_batches'?"),
    ("trainer.extra.max_epochs=3", "trainer.extra.max_epochs: fineact sets this Trainer argument itself; "
                                   "use trainer.max_epochs"),
    ("trainer.extra.gradient_clip_val=1", "use optim.grad_clip"),
    ("trainer.extra.max_epoch=3", "did you mean 'max_epochs'? (fineact sets it: use trainer.max_epochs)"),
])
def test_trainer_extra_refuses_unknown_names_and_those_fineact_sets(override, message):
    with pytest.raises(ConfigError) as caught:
        load_config(REPO / "configs" / "ssv1_tsm_r18_8f.yaml", overrides=[override])
    assert message in str(caught.value) and "ssv1_tsm_r18_8f.yaml" in str(caught.value)


def test_the_names_fineact_sets_are_the_trainer_arguments_build_trainer_passes(tmp_path, monkeypatch):
    """trainer.extra refuses exactly what build_trainer already sets: the table cannot drift from the code."""
    accepted = set(inspect.signature(L.Trainer).parameters)
    passed = {}
    monkeypatch.setattr(trainer_module.L, "Trainer", lambda **kwargs: passed.update(kwargs))
    cfg = load_config(REPO / "configs" / "ssv1_tsm_r18_8f.yaml",
                      overrides=["trainer.limit_train_batches=2", "trainer.limit_val_batches=2"])
    trainer_module.build_trainer(cfg, tmp_path)
    assert set(passed) == set(TRAINER_ARGS_SET_BY_FINEACT)
    assert set(TRAINER_ARGS_SET_BY_FINEACT) <= accepted


def test_a_pack_url_stays_as_written_and_a_pack_folder_is_made_absolute(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model: {name: tsm_r18}\ndata:\n  train: {shards: 's3://bucket/packs/train'}\n"
                      "  val: {shards: packs/val}\n")
    cfg = config_module.load_config(config)
    assert cfg.data.train.shards == "s3://bucket/packs/train"  # no annotations/data_root needed beside shards
    assert cfg.data.val.shards == str(tmp_path / "packs" / "val")
