"""Build the model a config asks for, sized by the label levels of the data.

Single-level models (TSM, SlowOnly, ...) predict one level: `cfg.level` (e.g. "event" for the event base
model) or the finest level by default, with num_classes taken from the levels. Multi-level models (the
hierarchical multi-task network, the SlowFast multi-task baseline) take {level: num_classes} for
`cfg.model.levels` (default: every level).
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf
from torch import nn

from fineact.errors import ConfigError, ModelError
from fineact.labels import LabelLevels
from fineact.models import build_model, get_entry
from fineact.models.arc import set_memory_bounded


def build_from_config(cfg: DictConfig, levels: LabelLevels) -> tuple[nn.Module, list[str], dict[str, int]]:
    """-> (model, levels it predicts (coarse -> fine), {level: num_classes})."""
    model, names, sizes = _build(cfg, levels)
    if cfg.model.get("arc_memory_bounded", False):
        set_memory_bounded(model)
    return model, names, sizes


def _build(cfg: DictConfig, levels: LabelLevels) -> tuple[nn.Module, list[str], dict[str, int]]:
    try:
        entry = get_entry(cfg.model.name)
    except ModelError as exc:
        raise ModelError(f"model.name: {exc}") from None
    args = OmegaConf.to_container(cfg.model.args, resolve=True) if cfg.model.args else {}
    accepted = entry.accepted_arguments()
    if "levels" in accepted:
        names = list(cfg.model.levels) or list(levels.level_names)
        unknown = [n for n in names if n not in levels.num_classes]
        if unknown:
            raise ConfigError(f"model.levels: unknown level(s) {unknown}; the data has {list(levels.level_names)}")
        names = [n for n in levels.level_names if n in names]  # keep coarse -> fine order
        args["levels"] = {n: levels.num_classes[n] for n in names}
        if "pathway_checkpoints" in accepted and cfg.multitask.pathway_checkpoints:
            args.setdefault("pathway_checkpoints", dict(cfg.multitask.pathway_checkpoints))
        if "freeze_pathways" in accepted:
            args.setdefault("freeze_pathways", bool(cfg.multitask.freeze_pathways))
        model = build_model(cfg.model.name, **args)
        return model, names, dict(args["levels"])
    level = cfg.level or levels.finest
    if level not in levels.num_classes:
        raise ConfigError(f"level: {level!r} is not a level of the data; choose one of {list(levels.level_names)}")
    args["num_classes"] = levels.num_classes[level]
    model = build_model(cfg.model.name, **args)
    return model, [level], {level: levels.num_classes[level]}
