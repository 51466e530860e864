"""Experiment configs: YAML files validated against the typed structures below.

    cfg = load_config("configs/ssv1_tsm_r18_8f.yaml", overrides=["optim.lr=0.02", "trainer.max_epochs=3"])

OmegaConf checks types and rejects unknown keys; we turn its errors into ConfigErrors that name the file and
key and suggest the closest valid key. `validate()` then checks values a type cannot express (positive lr,
known schedule names, ...). Paths in a config are relative to the config file's folder unless absolute.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fineact.data.annotations import FORMATS as ANNOTATION_FORMATS
from fineact.errors import ConfigError


@dataclass
class ModelConfig:
    name: str = MISSING                   # a registered model (fineact models)
    args: dict[str, Any] = field(default_factory=dict)  # keyword arguments of build_model (checked there)
    # Levels this model predicts; empty = the finest level only (single-level models) or all (multi-task).
    levels: list[str] = field(default_factory=list)
    # ARC layers recompute their recursion in backward instead of storing it: training memory stops growing
    # with the number of steps n, for about one extra forward pass of the ARC layers.
    arc_memory_bounded: bool = False


@dataclass
class SplitConfig:
    annotations: str = MISSING            # annotation file of this split
    data_root: str = MISSING              # folder the annotation's paths are relative to


@dataclass
class DataConfig:
    format: str = "finegym"               # annotation format: finegym, video_list, frame_list, sthv1_list,
                                          # sthv1_csv, diving48, kinetics_csv
    train: Optional[SplitConfig] = None
    val: Optional[SplitConfig] = None
    test: Optional[SplitConfig] = None
    labels: str = "finegym"               # label levels: finegym, diving48, flat
    categories: Optional[str] = None      # finegym: gym99/gym288 categories file; flat: class-name list
    set_categories: Optional[str] = None  # finegym: set_categories.txt
    vocab: Optional[str] = None           # diving48: Diving48_vocab.json
    num_classes: Optional[int] = None     # flat levels without a name file
    frame_folders: bool = False           # clips stored as frame folders instead of videos
    filename_template: str = "img_{:05d}.jpg"
    start_index: int = 1
    # Spatial pipeline (REFERENCE.md sections 1 and 3)
    resize: list[int] = field(default_factory=lambda: [256])  # [short side] or [H, W] (e.g. [240, 320])
    crop_size: int = 224
    train_crop: str = "multiscale"        # multiscale | random_resized
    flip: bool = True
    flip_label_map: dict[int, int] = field(default_factory=dict)  # e.g. SSv1 {86: 87, 87: 86, ...}
    test_clips: int = 1                   # clips per video at test (views = clips x crops)
    test_crops: int = 1                   # 1, 3 or 10
    twice_sample: bool = False            # segment models: add a clip at the segment starts at test
    short_video: str = "loop"             # loop | clamp, for videos shorter than a clip
    batch_size: int = 8
    num_workers: int = 2
    pin_memory: bool = True
    persistent_workers: bool = True
    prefetch_factor: int = 2              # batches each worker prepares ahead (raise it when a GPU waits for data)
    max_bad_fraction: float = 0.01        # fail when more than this share of videos cannot be read


@dataclass
class OptimConfig:
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    # No weight decay on BN, biases and ARC maps (We/Wf/Wa), as the TSM and ARC code.
    decay_bn_and_bias: bool = False
    decay_arc: bool = False
    classifier_lr_mult: float = 1.0      # final classifier weight lr x this (TSM fine-tuning: 5)
    classifier_bias_lr_mult: float = 1.0 # final classifier bias lr x this (TSM fine-tuning: 10)
    grad_clip: Optional[float] = 40.0    # grad-norm clipping (40 for the 3D models, 20 for TSM)
    # Linear scaling: lr is given for `base_batch_size`; the run uses lr * total_batch / base_batch_size.
    base_batch_size: Optional[int] = None


@dataclass
class ScheduleConfig:
    kind: str = "multistep"               # multistep | cosine | constant
    milestones: list[int] = field(default_factory=list)  # epochs (multistep)
    gamma: float = 0.1
    warmup_epochs: float = 0.0           # linear warm-up from warmup_start_factor * lr
    warmup_start_factor: float = 0.1
    min_lr: float = 0.0                  # cosine floor


@dataclass
class LossConfig:
    weights: dict[str, float] = field(default_factory=dict)  # per level; multi-task default 1 : 2 : 4
    label_smoothing: float = 0.0


@dataclass
class TrainerConfig:
    max_epochs: int = 10
    accelerator: str = "auto"             # cpu | gpu | auto
    devices: Any = "auto"                 # 1, 4, "auto", [0, 1]
    num_nodes: int = 1
    strategy: str = "auto"                # auto | ddp | ddp_spawn ...
    precision: str = "32-true"            # 32-true | bf16-mixed | 16-mixed
    deterministic: bool = False
    log_every_n_steps: int = 10
    check_val_every_n_epoch: int = 1
    limit_train_batches: Optional[float] = None
    limit_val_batches: Optional[float] = None
    progress_bar: bool = True
    tensorboard: bool = False
    channels_last: bool = False           # channels_last(_3d) model and clips: faster convs on GPU and CPU
    compile: bool = False                 # torch.compile the model (nn.Module.compile: keys stay the same)
    compile_backend: str = "inductor"     # torch.compile backend; "aot_eager" traces without generating code
    compile_mode: str = "default"         # inductor's mode: default | reduce-overhead | max-autotune | ...
    reuse_host_memory: bool = True        # glibc keeps freed host memory for reuse (faster CPU steps; see
                                          # engine/host_memory.py)


@dataclass
class EvalConfig:
    aggregate: str = "softmax_mean"      # softmax_mean | score_mean: how clip x crop views combine per video
    consistent: bool = True              # hierarchies: also report the hierarchy-consistent prediction
    topk: list[int] = field(default_factory=lambda: [1, 5])


@dataclass
class MultiTaskConfig:
    # Two-stage recipe: pathway checkpoints of single-level base models, per level.
    pathway_checkpoints: dict[str, str] = field(default_factory=dict)
    freeze_pathways: bool = True
    cache_features: bool = False         # frozen pathways: extract features once, train the fusion on the cache


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    seed: int = 0
    output_dir: str = "runs/${name}"
    # Which level a single-level model is trained on (event / set / element; empty: the finest).
    level: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    multitask: MultiTaskConfig = field(default_factory=MultiTaskConfig)
    pretrained: Optional[str] = None     # weights for the whole model (a fineact checkpoint or export)


SCHEDULES = ("multistep", "cosine", "constant")
AGGREGATES = ("softmax_mean", "score_mean")
LABEL_KINDS = ("finegym", "diving48", "flat")


def _valid_keys(node_type: type, dotted: str) -> list[str]:
    """Dotted keys valid at the parent of `dotted` (for suggestions)."""
    parts = dotted.split(".")[:-1]
    typ = node_type
    for p in parts:
        match = next((f for f in fields(typ) if f.name == p), None) if is_dataclass(typ) else None
        if match is None:
            return []
        typ = match.type if isinstance(match.type, type) else _resolve(typ, match.name)
    return [f.name for f in fields(typ)] if is_dataclass(typ) else []


def _resolve(parent: type, name: str) -> type:
    default = parent.__dataclass_fields__[name].default_factory  # type: ignore[attr-defined]
    try:
        return type(default())
    except Exception:
        return object


def _explain(exc: OmegaConfBaseException, source: str) -> ConfigError:
    key = getattr(exc, "full_key", None) or ""
    message = str(exc).split("\n")[0]
    if "not in struct" in message or "Key '" in message and "not in" in message:
        leaf = key.split(".")[-1]
        options = _valid_keys(ExperimentConfig, key)
        close = difflib.get_close_matches(leaf, options, n=1)
        hint = f"; did you mean '{'.'.join(key.split('.')[:-1] + [close[0]])}'?" if close else ""
        valid = f" Valid keys here: {', '.join(options)}." if options else ""
        return ConfigError(f"{source}: unknown key '{key}'{hint}{valid}")
    return ConfigError(f"{source}: key '{key}': {message}")


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                base: dict | None = None) -> DictConfig:
    """Schema <- YAML file (or `base` dict) <- dotted `key=value` overrides; validated and with absolute paths."""
    schema = OmegaConf.structured(ExperimentConfig)
    layers = []
    source = "config"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"config file {path}: not found")
        try:
            loaded = OmegaConf.load(path)
        except Exception as exc:
            raise ConfigError(f"config file {path}: not valid YAML ({exc})") from None
        if not isinstance(loaded, DictConfig):
            raise ConfigError(f"config file {path}: expected a mapping at the top level")
        layers.append((source, loaded))
    if base is not None:
        layers.append((source, OmegaConf.create(base)))
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected dotted key=value, e.g. optim.lr=0.01")
        layers.append((f"override {item!r}", OmegaConf.from_dotlist([item])))
    cfg = schema
    for where, layer in layers:
        try:
            cfg = OmegaConf.merge(cfg, layer)
        except OmegaConfBaseException as exc:
            raise _explain(exc, where) from None
    try:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except OmegaConfBaseException as exc:
        raise _explain(exc, source) from None
    config_dir = Path(path).resolve().parent if path is not None else Path.cwd()
    _absolutise_paths(cfg, config_dir)
    validate(cfg, f"{source} with overrides {' '.join(overrides)}" if overrides else source)
    return cfg


def _absolutise_paths(cfg: DictConfig, config_dir: Path) -> None:
    def fix(value: str | None) -> str | None:
        if value in (None, "") or Path(value).is_absolute():
            return value
        return str((config_dir / value).resolve())

    for split in ("train", "val", "test"):
        node = cfg.data[split]
        if node is not None:
            for key in ("annotations", "data_root"):
                if not OmegaConf.is_missing(node, key):
                    node[key] = fix(node[key])
    for key in ("categories", "set_categories", "vocab"):
        cfg.data[key] = fix(cfg.data[key])
    cfg.pretrained = fix(cfg.pretrained)
    for level in list(cfg.multitask.pathway_checkpoints):
        cfg.multitask.pathway_checkpoints[level] = fix(cfg.multitask.pathway_checkpoints[level])
    if isinstance(cfg.model.args.get("pretrained"), str):
        cfg.model.args.pretrained = fix(cfg.model.args.pretrained)


def validate(cfg: DictConfig, source: str = "config") -> None:
    """Checks of values (types are checked by OmegaConf)."""
    problems = []

    def need(condition: bool, key: str, expected: str, found: Any) -> None:
        if not condition:
            problems.append(f"{key}: expected {expected}, found {found!r}")

    if OmegaConf.is_missing(cfg.model, "name"):
        problems.append("model.name: required (a registered model, see `fineact models`)")
    for split in ("train", "val", "test"):
        node = cfg.data[split]
        for key in ("annotations", "data_root"):
            if node is not None and OmegaConf.is_missing(node, key):
                problems.append(f"data.{split}.{key}: required when data.{split} is given")
    need(cfg.optim.lr > 0, "optim.lr", "a positive learning rate", cfg.optim.lr)
    need(0 <= cfg.optim.momentum < 1, "optim.momentum", "a value in [0, 1)", cfg.optim.momentum)
    need(cfg.optim.weight_decay >= 0, "optim.weight_decay", "a value >= 0", cfg.optim.weight_decay)
    need(cfg.optim.grad_clip is None or cfg.optim.grad_clip > 0, "optim.grad_clip", "a positive norm or null",
         cfg.optim.grad_clip)
    need(cfg.schedule.kind in SCHEDULES, "schedule.kind", f"one of {SCHEDULES}", cfg.schedule.kind)
    need(cfg.schedule.warmup_epochs >= 0, "schedule.warmup_epochs", "a value >= 0", cfg.schedule.warmup_epochs)
    need(all(m > 0 for m in cfg.schedule.milestones) and list(cfg.schedule.milestones) ==
         sorted(cfg.schedule.milestones), "schedule.milestones", "increasing positive epochs",
         list(cfg.schedule.milestones))
    need(cfg.trainer.max_epochs > 0, "trainer.max_epochs", "a positive number of epochs", cfg.trainer.max_epochs)
    need(cfg.data.batch_size > 0, "data.batch_size", "a positive batch size", cfg.data.batch_size)
    need(cfg.data.num_workers >= 0, "data.num_workers", "a value >= 0", cfg.data.num_workers)
    need(cfg.data.prefetch_factor >= 1, "data.prefetch_factor", "a value >= 1", cfg.data.prefetch_factor)
    need(0 <= cfg.data.max_bad_fraction <= 1, "data.max_bad_fraction", "a share in [0, 1]",
         cfg.data.max_bad_fraction)
    need(cfg.data.test_crops in (1, 3, 10), "data.test_crops", "1, 3 or 10", cfg.data.test_crops)
    need(cfg.data.test_clips > 0, "data.test_clips", "a positive number of clips", cfg.data.test_clips)
    need(cfg.data.short_video in ("loop", "clamp"), "data.short_video", "loop or clamp", cfg.data.short_video)
    need(cfg.data.train_crop in ("multiscale", "random_resized"), "data.train_crop", "multiscale or random_resized",
         cfg.data.train_crop)
    need(len(cfg.data.resize) in (1, 2) and all(s > 0 for s in cfg.data.resize), "data.resize",
         "[short side] or [height, width]", list(cfg.data.resize))
    need(cfg.data.labels in LABEL_KINDS, "data.labels", f"one of {LABEL_KINDS}", cfg.data.labels)
    need(cfg.data.format in ANNOTATION_FORMATS, "data.format", f"one of {', '.join(ANNOTATION_FORMATS)}",
         cfg.data.format)
    need(cfg.eval.aggregate in AGGREGATES, "eval.aggregate", f"one of {AGGREGATES}", cfg.eval.aggregate)
    need(all(w >= 0 for w in cfg.loss.weights.values()), "loss.weights", "non-negative weights",
         dict(cfg.loss.weights))
    if cfg.trainer.compile:
        _check_compile_options(cfg.trainer, need)
    need(not cfg.trainer.tensorboard or _tensorboard_installed(), "trainer.tensorboard",
         "false, or true with the tensorboard package installed (pip install -e .[tensorboard])",
         cfg.trainer.tensorboard)
    if problems:
        raise ConfigError(f"{source}: invalid values:\n  " + "\n  ".join(problems))


def _tensorboard_installed() -> bool:
    import importlib.util

    return any(importlib.util.find_spec(name) is not None for name in ("tensorboard", "tensorboardX"))


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _check_compile_options(trainer: DictConfig, need) -> None:
    import torch._dynamo  # only when compiling: importing dynamo takes a second

    need(trainer.compile_backend in torch._dynamo.list_backends(exclude_tags=()), "trainer.compile_backend",
         f"a torch.compile backend, e.g. one of {torch._dynamo.list_backends()}", trainer.compile_backend)
    need(trainer.compile_mode in COMPILE_MODES, "trainer.compile_mode", f"one of {COMPILE_MODES}",
         trainer.compile_mode)
    need(trainer.compile_mode == "default" or trainer.compile_backend == "inductor", "trainer.compile_mode",
         "default unless trainer.compile_backend is inductor (the modes are inductor's)", trainer.compile_mode)


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)
