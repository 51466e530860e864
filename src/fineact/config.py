"""Experiment configs: YAML files validated against the typed structures below.

    cfg = load_config("configs/ssv1_tsm_r18_8f.yaml", overrides=["optim.lr=0.02", "trainer.max_epochs=3"])

OmegaConf checks types and rejects unknown keys; we turn its errors into ConfigErrors that name the file and
key and suggest the closest valid key. `validate()` then checks values a type cannot express (positive lr,
known schedule names, ...). Paths in a config are relative to the config file's folder unless absolute.

Three kinds of field are marked in the schema rather than listed in code:
- choices (`Choice` enums, e.g. `eval.aggregate`): OmegaConf refuses any other value; they are strs, so code
  compares them with plain strings, and `to_dict`/`to_yaml` write the plain string;
- paths (`path_field`, or a dict's `path_keys`): made absolute against the config file's folder;
- `trainer.extra`: any other Lightning Trainer argument, checked against the Trainer's signature.
"""

from __future__ import annotations

import difflib
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException, ValidationError

from fineact.data.annotations import FORMATS as ANNOTATION_FORMATS
from fineact.data.sampling import SHORT_VIDEO_POLICIES
from fineact.errors import ConfigError


class Choice(str, Enum):
    """A config value from a fixed set. Members are named as their values and are strs that print, format, repr
    and hash as the value, so `cfg.eval.aggregate == "softmax_mean"`, `in` tuples, dict lookups and messages
    (`found {value!r}`) read as they did when these fields were plain strings."""

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return repr(self.value)

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def _missing_(cls, value):  # OmegaConf looks an int up by value: `trainer.precision=16` means "16"
        return cls._value2member_map_.get(str(value))


def choices(name: str, values: Iterable[str]) -> type[Choice]:
    """A Choice enum of `values` (the functional form: names such as "32-true" are not identifiers)."""
    return Choice(name, [(v, v) for v in values], module=__name__, qualname=name)


SCHEDULES = ("multistep", "cosine", "constant")
AGGREGATES = ("softmax_mean", "score_mean")
LABEL_KINDS = ("finegym", "diving48", "flat")
TRAIN_CROPS = ("multiscale", "random_resized")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# Lightning's precision names (and its older short forms "64", "32", "16", "bf16").
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true", "transformer-engine",
              "transformer-engine-float16", "64", "32", "16", "bf16")

AnnotationFormat = choices("AnnotationFormat", ANNOTATION_FORMATS)
LabelKind = choices("LabelKind", LABEL_KINDS)
TrainCrop = choices("TrainCrop", TRAIN_CROPS)
ShortVideo = choices("ShortVideo", SHORT_VIDEO_POLICIES)
ScheduleKind = choices("ScheduleKind", SCHEDULES)
Aggregate = choices("Aggregate", AGGREGATES)
CompileMode = choices("CompileMode", COMPILE_MODES)
Precision = choices("Precision", PRECISIONS)


def path_field(**kwargs):
    """A field holding a file path, or a dict of them: made absolute against the config file's folder."""
    return field(metadata={"path": True}, **kwargs)


@dataclass
class ModelConfig:
    name: str = MISSING                   # a registered model (fineact models)
    # keyword arguments of build_model (checked there); `pretrained` among them is a path
    args: dict[str, Any] = field(default_factory=dict, metadata={"path_keys": ("pretrained",)})
    # Levels this model predicts; empty = the finest level only (single-level models) or all (multi-task).
    levels: list[str] = field(default_factory=list)
    # ARC layers recompute their recursion in backward instead of storing it: training memory stops growing
    # with the number of steps n, for about one extra forward pass of the ARC layers.
    arc_memory_bounded: bool = False


@dataclass
class SplitConfig:
    annotations: str = path_field(default=MISSING)  # annotation file of this split
    data_root: str = path_field(default=MISSING)    # folder the annotation's paths are relative to
    # A pack of this split (`fineact pack`): a folder or an object-store URL (s3://...), read instead of the
    # annotation file and videos (README "Scale"). annotations may still be given: the pack must match it.
    shards: Optional[str] = path_field(default=None)


@dataclass
class DataConfig:
    format: AnnotationFormat = "finegym"  # annotation format: finegym, video_list, frame_list, sthv1_list,
                                          # sthv1_csv, diving48, kinetics_csv
    train: Optional[SplitConfig] = None
    val: Optional[SplitConfig] = None
    test: Optional[SplitConfig] = None
    labels: LabelKind = "finegym"         # label levels: finegym, diving48, flat
    categories: Optional[str] = path_field(default=None)      # finegym: gym99/gym288 categories; flat: names
    set_categories: Optional[str] = path_field(default=None)  # finegym: set_categories.txt
    vocab: Optional[str] = path_field(default=None)           # diving48: Diving48_vocab.json
    num_classes: Optional[int] = None     # flat levels without a name file
    frame_folders: bool = False           # clips stored as frame folders instead of videos
    filename_template: str = "img_{:05d}.jpg"
    start_index: int = 1
    # Spatial pipeline (REFERENCE.md sections 1 and 3)
    resize: list[int] = field(default_factory=lambda: [256])  # [short side] or [H, W] (e.g. [240, 320])
    crop_size: int = 224
    train_crop: TrainCrop = "multiscale"  # multiscale | random_resized
    flip: bool = True
    flip_label_map: dict[int, int] = field(default_factory=dict)  # e.g. SSv1 {86: 87, 87: 86, ...}
    test_clips: int = 1                   # clips per video at test (views = clips x crops)
    test_crops: int = 1                   # 1, 3 or 10
    twice_sample: bool = False            # segment models: add a clip at the segment starts at test
    short_video: ShortVideo = "loop"      # loop | clamp, for videos shorter than a clip
    batch_size: int = 8
    num_workers: int = 2
    decode_threads: int = 1               # FFmpeg decoder threads per worker (0 = FFmpeg's choice); README Performance
    pin_memory: bool = True
    persistent_workers: bool = True
    prefetch_factor: int = 2              # batches each worker prepares ahead (raise it when a GPU waits for data)
    max_bad_fraction: float = 0.01        # fail when more than this share of videos cannot be read
    # Untrimmed FineGym (README "FineGym from scratch"): the official finegym_annotation_info_v1.x.json. With it,
    # data_root holds the untrimmed videos <youtube_id>.mp4|mkv|webm and each split-file id is an element span in
    # one of them; missing videos are listed up front (<output_dir>/missing_videos.json) and left out.
    finegym_annotations: Optional[str] = path_field(default=None)


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
    kind: ScheduleKind = "multistep"      # multistep | cosine | constant
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
    precision: Precision = "32-true"      # 32-true | bf16-mixed | 16-mixed | ...
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
    compile_mode: CompileMode = "default" # inductor's mode: default | reduce-overhead | max-autotune | ...
    reuse_host_memory: bool = True        # glibc keeps freed host memory for reuse (faster CPU steps; see
                                          # engine/host_memory.py)
    # Long runs (README "Long runs"): mid-epoch checkpoints into checkpoints/last.ckpt, preemption, resume.
    checkpoint_every_n_steps: Optional[int] = None     # also write last.ckpt every N optimizer steps
    checkpoint_every_minutes: Optional[float] = None   # also write last.ckpt when M minutes passed since the last
    preemption_signals: list[str] = field(default_factory=lambda: ["SIGTERM", "SIGUSR1"])  # save, exit 75
    auto_resume: bool = True              # continue an unfinished run in output_dir whose config matches
    resume_allow_changes: list[str] = field(default_factory=list)  # keys a resume may change (not exact then)
    # Any other argument of lightning.Trainer, e.g. {accumulate_grad_batches: 2}; the names are checked.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalConfig:
    aggregate: Aggregate = "softmax_mean" # softmax_mean | score_mean: how clip x crop views combine per video
    consistent: bool = True              # hierarchies: also report the hierarchy-consistent prediction
    topk: list[int] = field(default_factory=lambda: [1, 5])


@dataclass
class MultiTaskConfig:
    # Two-stage recipe: pathway checkpoints of single-level base models, per level.
    pathway_checkpoints: dict[str, str] = path_field(default_factory=dict)
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
    # weights for the whole model (a fineact checkpoint or export)
    pretrained: Optional[str] = path_field(default=None)


# Lightning Trainer arguments that engine/trainer.py sets itself, each with what to use instead in the config;
# `trainer.extra` may name any other argument of lightning.Trainer.
TRAINER_ARGS_SET_BY_FINEACT = {
    "default_root_dir": "use output_dir",
    "max_epochs": "use trainer.max_epochs",
    "accelerator": "use trainer.accelerator",
    "devices": "use trainer.devices",
    "num_nodes": "use trainer.num_nodes",
    "strategy": "use trainer.strategy",
    "precision": "use trainer.precision",
    "deterministic": "use trainer.deterministic",
    "log_every_n_steps": "use trainer.log_every_n_steps",
    "check_val_every_n_epoch": "use trainer.check_val_every_n_epoch",
    "limit_train_batches": "use trainer.limit_train_batches",
    "limit_val_batches": "use trainer.limit_val_batches",
    "enable_progress_bar": "use trainer.progress_bar",
    "logger": "use trainer.tensorboard (CSV logs are always written)",
    "gradient_clip_val": "use optim.grad_clip",
    "gradient_clip_algorithm": "use optim.grad_clip (fineact clips the gradient norm)",
    "callbacks": "fineact adds its checkpoints, learning-rate monitor and progress bar",
    "plugins": "fineact writes checkpoints atomically through its own plugin",
    "use_distributed_sampler": "fineact's samplers split evaluation videos exactly across processes",
    "num_sanity_val_steps": "fineact runs no sanity validation",
    "enable_model_summary": "fineact prints no model summary",
}


def _did_you_mean(name: str, options: Iterable[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f"; did you mean '{prefix}{close[0]}'?" if close else ""


def _section_type(hint: Any) -> type | None:
    """The config dataclass a field holds (`Optional[SplitConfig]` included), or None."""
    return next((t for t in (hint, *typing.get_args(hint)) if is_dataclass(t)), None)


def _schema_at(dotted: str) -> tuple[type | None, Any]:
    """(the dataclass holding the last key of `dotted`, that key's type hint); None/None off the schema."""
    section: type | None = ExperimentConfig
    parts = dotted.split(".")
    for part in parts[:-1]:
        hints = typing.get_type_hints(section)
        if part not in hints or _section_type(hints[part]) is None:
            return None, None
        section = _section_type(hints[part])
    return section, typing.get_type_hints(section).get(parts[-1])


def _explain(exc: OmegaConfBaseException, source: str) -> ConfigError:
    key = getattr(exc, "full_key", None) or ""
    message = str(exc).split("\n")[0]
    section, hint = _schema_at(key)
    if "not in struct" in message or "Key '" in message and "not in" in message:
        parent, leaf = key.rpartition(".")[::2]
        options = [f.name for f in fields(section)] if section is not None else []
        hint_text = _did_you_mean(leaf, options, f"{parent}." if parent else "")
        valid = f" Valid keys here: {', '.join(options)}." if options else ""
        return ConfigError(f"{source}: unknown key '{key}'{hint_text}{valid}")
    if isinstance(exc, ValidationError) and isinstance(hint, type) and issubclass(hint, Choice):
        values = [c.value for c in hint]
        found = str(getattr(exc, "value", "?"))
        return ConfigError(f"{source}: {key}: expected one of {', '.join(values)}, found {found!r}"
                           f"{_did_you_mean(found, values)}")
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
        layers.append((f"override {item!r}", _parse_override(item)))
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
    _absolutise_paths(cfg, ExperimentConfig, config_dir)
    validate(cfg, f"{source} with overrides {' '.join(overrides)}" if overrides else source)
    return cfg


def _parse_override(item: str) -> DictConfig:
    """One `key=value` override; malformed syntax (an empty key, an unclosed bracket) is a ConfigError."""
    key = item.split("=", 1)[0]
    if not key or any(not (part.isidentifier() or part.isdigit()) for part in key.split(".")):
        raise ConfigError(f"override {item!r}: {key!r} is not a dotted key; expected section.key=value, e.g. "
                          "optim.lr=0.01")
    import yaml

    try:
        return OmegaConf.from_dotlist([item])
    except (OmegaConfBaseException, yaml.YAMLError) as exc:
        raise ConfigError(f"override {item!r}: malformed value ({str(exc).splitlines()[0]}); quote brackets and "
                          "braces that are text, and close those that are lists/dicts, e.g. "
                          "data.resize=[240,320]") from None


def _absolutise_paths(node: DictConfig, section: type, config_dir: Path) -> None:
    """Make the path fields of `section` and of the sections inside it absolute (relative to `config_dir`)."""
    def fix(value: str | None) -> str | None:
        if value in (None, "") or Path(value).is_absolute() or "://" in value:  # URLs (data.*.shards) stay
            return value
        return str((config_dir / value).resolve())

    hints = typing.get_type_hints(section)
    for f in fields(section):
        if OmegaConf.is_missing(node, f.name) or node[f.name] is None:
            continue
        value = node[f.name]
        inner = _section_type(hints[f.name])
        if inner is not None:
            _absolutise_paths(value, inner, config_dir)
        elif f.metadata.get("path") and isinstance(value, DictConfig):  # a dict of paths
            for key in list(value):
                value[key] = fix(value[key])
        elif f.metadata.get("path"):
            node[f.name] = fix(value)
        for key in f.metadata.get("path_keys", ()):  # the path entries of an open dict (model.args)
            if isinstance(value.get(key), str):
                value[key] = fix(value[key])


def validate(cfg: DictConfig, source: str = "config") -> None:
    """Checks of values (types and choices are checked by OmegaConf)."""
    problems = []

    def need(condition: bool, key: str, expected: str, found: Any) -> None:
        if not condition:
            problems.append(f"{key}: expected {expected}, found {found!r}")

    if OmegaConf.is_missing(cfg.model, "name"):
        problems.append("model.name: required (a registered model, see `fineact models`)")
    for split in ("train", "val", "test"):
        node = cfg.data[split]
        for key in ("annotations", "data_root"):
            if node is not None and OmegaConf.is_missing(node, key) and not node.shards:
                problems.append(f"data.{split}.{key}: required when data.{split} is given")
    need(cfg.optim.lr > 0, "optim.lr", "a positive learning rate", cfg.optim.lr)
    need(0 <= cfg.optim.momentum < 1, "optim.momentum", "a value in [0, 1)", cfg.optim.momentum)
    need(cfg.optim.weight_decay >= 0, "optim.weight_decay", "a value >= 0", cfg.optim.weight_decay)
    need(cfg.optim.grad_clip is None or cfg.optim.grad_clip > 0, "optim.grad_clip", "a positive norm or null",
         cfg.optim.grad_clip)
    need(cfg.schedule.warmup_epochs >= 0, "schedule.warmup_epochs", "a value >= 0", cfg.schedule.warmup_epochs)
    need(all(m > 0 for m in cfg.schedule.milestones) and list(cfg.schedule.milestones) ==
         sorted(cfg.schedule.milestones), "schedule.milestones", "increasing positive epochs",
         list(cfg.schedule.milestones))
    need(cfg.trainer.max_epochs > 0, "trainer.max_epochs", "a positive number of epochs", cfg.trainer.max_epochs)
    need(cfg.data.batch_size > 0, "data.batch_size", "a positive batch size", cfg.data.batch_size)
    need(cfg.data.num_workers >= 0, "data.num_workers", "a value >= 0", cfg.data.num_workers)
    need(cfg.data.decode_threads >= 0, "data.decode_threads", "a value >= 0", cfg.data.decode_threads)
    need(cfg.data.prefetch_factor >= 1, "data.prefetch_factor", "a value >= 1", cfg.data.prefetch_factor)
    need(0 <= cfg.data.max_bad_fraction <= 1, "data.max_bad_fraction", "a share in [0, 1]",
         cfg.data.max_bad_fraction)
    need(cfg.data.test_crops in (1, 3, 10), "data.test_crops", "1, 3 or 10", cfg.data.test_crops)
    need(cfg.data.test_clips > 0, "data.test_clips", "a positive number of clips", cfg.data.test_clips)
    need(len(cfg.data.resize) in (1, 2) and all(s > 0 for s in cfg.data.resize), "data.resize",
         "[short side] or [height, width]", list(cfg.data.resize))
    need(cfg.data.crop_size > 0, "data.crop_size", "a positive crop size", cfg.data.crop_size)
    if cfg.data.resize and 0 < cfg.data.crop_size:
        # Test views crop the resized frame: a larger crop would make every evaluation video "unreadable".
        shorter = min(cfg.data.resize)
        need(cfg.data.crop_size <= shorter, "data.crop_size",
             f"a crop no larger than the resized frame's shorter side, {shorter} (data.resize="
             f"{list(cfg.data.resize)})", cfg.data.crop_size)
    need(all(w >= 0 for w in cfg.loss.weights.values()), "loss.weights", "non-negative weights",
         dict(cfg.loss.weights))
    if cfg.trainer.compile:
        _check_compile_options(cfg.trainer, need)
    need(not cfg.trainer.tensorboard or _tensorboard_installed(), "trainer.tensorboard",
         "false, or true with the tensorboard package installed (pip install -e .[tensorboard])",
         cfg.trainer.tensorboard)
    need(cfg.trainer.checkpoint_every_n_steps is None or cfg.trainer.checkpoint_every_n_steps > 0,
         "trainer.checkpoint_every_n_steps", "a positive number of steps or null", cfg.trainer.checkpoint_every_n_steps)
    need(cfg.trainer.checkpoint_every_minutes is None or cfg.trainer.checkpoint_every_minutes > 0,
         "trainer.checkpoint_every_minutes", "a positive number of minutes or null",
         cfg.trainer.checkpoint_every_minutes)
    problems += _signal_problems(cfg.trainer.preemption_signals)
    problems += _trainer_extra_problems(cfg.trainer.extra)
    if not problems:  # then the values Lightning will see, against this machine (engine/lightning_values.py)
        from fineact.engine.lightning_values import trainer_value_problems

        problems += trainer_value_problems(cfg.trainer)
    if problems:
        raise ConfigError(f"{source}: invalid values:\n  " + "\n  ".join(problems))


def _signal_problems(names) -> list[str]:
    import signal

    valid = sorted(s.name for s in signal.Signals if s.name not in ("SIGKILL", "SIGSTOP"))
    return [f"trainer.preemption_signals: expected signal names such as SIGTERM, SIGUSR1, found {name!r}"
            f"{_did_you_mean(str(name), valid)}" for name in names if name not in valid]


def _tensorboard_installed() -> bool:
    import importlib.util

    return any(importlib.util.find_spec(name) is not None for name in ("tensorboard", "tensorboardX"))


def _check_compile_options(trainer: DictConfig, need) -> None:
    import torch._dynamo  # only when compiling: importing dynamo takes a second

    need(trainer.compile_backend in torch._dynamo.list_backends(exclude_tags=()), "trainer.compile_backend",
         f"a torch.compile backend, e.g. one of {torch._dynamo.list_backends()}", trainer.compile_backend)
    need(trainer.compile_mode == "default" or trainer.compile_backend == "inductor", "trainer.compile_mode",
         "default unless trainer.compile_backend is inductor (the modes are inductor's)", trainer.compile_mode)


def _trainer_extra_problems(extra: DictConfig) -> list[str]:
    """`trainer.extra` names: arguments of lightning.Trainer that fineact does not set itself."""
    if not extra:
        return []
    import inspect

    import lightning as L  # only when needed: importing Lightning takes a second

    accepted = [name for name in inspect.signature(L.Trainer).parameters if name != "self"]
    problems = []
    for name in extra:
        if name in TRAINER_ARGS_SET_BY_FINEACT:
            problems.append(f"trainer.extra.{name}: fineact sets this Trainer argument itself; "
                            f"{TRAINER_ARGS_SET_BY_FINEACT[name]}")
        elif name not in accepted:
            close = difflib.get_close_matches(name, accepted, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            if close and close[0] in TRAINER_ARGS_SET_BY_FINEACT:
                hint += f" (fineact sets it: {TRAINER_ARGS_SET_BY_FINEACT[close[0]]})"
            problems.append(f"trainer.extra.{name}: not an argument of lightning.Trainer{hint}")
    return problems


def to_dict(cfg: DictConfig) -> dict:
    """The config as plain data, choices as their strings: what checkpoints, results and exports store."""
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)
