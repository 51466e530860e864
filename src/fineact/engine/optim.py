"""The papers' optimisation recipe: SGD with parameter groups and a warm-up schedule.

Groups (TSM and ARC code): weights decay; BN parameters, biases and the ARC maps We/Wf/Wa do not (unless the
config says so); the final classifiers' weights and biases (each model names them, models.base.classifiers)
may take lr multipliers (TSM fine-tuning: x5, x10).
Schedules run per optimizer step: linear warm-up over `warmup_epochs`, then multistep decay at epoch
milestones or a cosine to `min_lr`. Linear lr scaling: with `optim.base_batch_size` set, the lr is multiplied
by (batch size x devices x nodes) / base_batch_size.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from fineact.models.arc import arc_parameters
from fineact.models.base import classifiers

_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm)


def parameter_groups(model: nn.Module, lr: float, weight_decay: float, decay_bn_and_bias: bool = False,
                     decay_arc: bool = False, classifier_lr_mult: float = 1.0,
                     classifier_bias_lr_mult: float = 1.0) -> list[dict]:
    """Split trainable parameters into the recipe's groups; every trainable parameter lands in exactly one."""
    cls_weights, cls_biases = set(), set()
    for fc in classifiers(model).values():
        cls_weights.add(id(fc.weight))
        if fc.bias is not None:
            cls_biases.add(id(fc.bias))
    norm_params = {id(p) for m in model.modules() if isinstance(m, _NORM_TYPES) for p in m.parameters(False)}
    arc = {id(p) for p in arc_parameters(model)}
    groups: dict[str, dict] = {
        "decay": {"params": [], "weight_decay": weight_decay, "lr": lr},
        "no_decay": {"params": [], "weight_decay": 0.0, "lr": lr},
        "classifier_weight": {"params": [], "weight_decay": weight_decay, "lr": lr * classifier_lr_mult},
        "classifier_bias": {"params": [], "weight_decay": 0.0 if not decay_bn_and_bias else weight_decay,
                            "lr": lr * classifier_bias_lr_mult},
    }
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if id(p) in cls_weights:
            key = "classifier_weight"
        elif id(p) in cls_biases:
            key = "classifier_bias"
        elif id(p) in arc:
            key = "decay" if decay_arc else "no_decay"
        elif id(p) in norm_params or name.endswith("bias"):
            key = "decay" if decay_bn_and_bias else "no_decay"
        else:
            key = "decay"
        groups[key]["params"].append(p)
    return [dict(g, name=k) for k, g in groups.items() if g["params"]]


def lr_factor_fn(kind: str, total_steps: int, steps_per_epoch: int, milestones: list[int] | tuple = (),
                 gamma: float = 0.1, warmup_epochs: float = 0.0, warmup_start_factor: float = 0.1,
                 min_lr_ratio: float = 0.0) -> Callable[[int], float]:
    """factor(step) multiplying the base lr: linear warm-up, then multistep / cosine / constant."""
    warmup_steps = int(round(warmup_epochs * steps_per_epoch))
    milestone_steps = [m * steps_per_epoch for m in milestones]

    def factor(step: int) -> float:
        if step < warmup_steps:
            return warmup_start_factor + (1 - warmup_start_factor) * step / warmup_steps
        if kind == "multistep":
            return gamma ** sum(step >= m for m in milestone_steps)
        if kind == "cosine":
            span = max(1, total_steps - warmup_steps)
            progress = min(1.0, (step - warmup_steps) / span)
            return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        return 1.0

    return factor


def build_optimizer(model: nn.Module, optim_cfg, schedule_cfg, total_steps: int, steps_per_epoch: int,
                    total_batch_size: int):
    lr = optim_cfg.lr
    if optim_cfg.base_batch_size:
        lr = lr * total_batch_size / optim_cfg.base_batch_size  # linear scaling rule
    groups = parameter_groups(model, lr, optim_cfg.weight_decay, optim_cfg.decay_bn_and_bias,
                              optim_cfg.decay_arc, optim_cfg.classifier_lr_mult, optim_cfg.classifier_bias_lr_mult)
    optimizer = torch.optim.SGD(groups, lr=lr, momentum=optim_cfg.momentum, nesterov=optim_cfg.nesterov)
    factor = lr_factor_fn(schedule_cfg.kind, total_steps, steps_per_epoch, list(schedule_cfg.milestones),
                          schedule_cfg.gamma, schedule_cfg.warmup_epochs, schedule_cfg.warmup_start_factor,
                          schedule_cfg.min_lr / lr if lr else 0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return optimizer, scheduler
