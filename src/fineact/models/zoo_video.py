"""Registered 3D models (SlowOnly, SlowFast) and multi-pathway multi-task networks (seed 000).

Thin builders over resnet3d.py and multitask.py. Defaults reproduce the published setups:
- slowonly_r50: 4 frames 16 apart, 400 classes (Kinetics head) -> 32,454,096 parameters, 20.87 GMACs.
- slowfast_r50: 4x16 = one dense clip of 32 frames 2 apart, alpha 8, beta 1/8 -> 34,480,216 parameters,
  27.64 GMACs.
- hierarchical_multitask: Gym99 levels event 4 / set 14 / element 99; SlowOnly-R50 pathways event 4x16,
  set 8x8, element 32x2; encoders 128/256/1024, fusion 1024, loss 1 : 2 : 4; pathways frozen.
- slowfast_multitask: SlowFast-R50 with one classifier per Gym99 level, same loss.
`depth` (18/34/50/101) and `base_channels` (64 published; 8 or 16 for CPU demos) shrink any of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from fineact.errors import ModelError
from fineact.models.multitask import (PAPER_ENCODER_DIMS, PAPER_FUSED_DIM, HierarchicalMultiTask,
                                      MultiLevelRecognizer)
from fineact.models.registry import register_model
from fineact.models.resnet3d import (SLOW_TEMPORAL_KERNELS, Recognizer3d, ResNet3d, SlowFast, apply_arc3d,
                                     decorate_and_load, slowfast, slowonly)

# FineGym Gym99: 4 events, 14 sets that have Gym99 elements, 99 elements (coarse -> fine).
GYM99_LEVELS = {"event": 4, "set": 14, "element": 99}
# Seed 000: event T=4 interval 16, set T=8 interval 8 (or 16 x 4), element T=32 interval 2: one 64-frame window.
PAPER_PATHWAY_CLIPS = {"event": (4, 16), "set": (8, 8), "element": (32, 2)}

_SLOWONLY_PAPER = {
    "params": 32_454_096, "gmacs": 20.87,  # 400 classes, 4 x 224 x 224 (MMAction2 / SlowFast paper)
    "top1": {"gym99_event": 99.28, "gym99_element_mmaction2": 79.3},
    "mean_class": {"gym99_event": 99.22, "gym99_element_mmaction2": 70.2},
    "note": "Gym99 figures are seed 000 Table 1 for the 4x16 event model and MMAction2's 4x16 element model; "
            "seed 000's other SlowOnly base models: set 8x8 95.49 / 95.43, set 16x4 97.70 / 97.68, "
            "element 32x2 91.05 / 88.40 (top-1 / mean class).",
}
_SLOWFAST_PAPER = {
    "params": 34_480_216, "gmacs": 27.64,  # 400 classes, slow 4 + fast 32 frames at 224 x 224
    "top1": {"gym99_element": 82.32}, "mean_class": {"gym99_element": 78.93},
    "note": "Gym99 element figures: seed 000 Table 1 (SlowFast-R50 base model, 4x16, ImageNet init).",
}
_MULTITASK_PAPER = {
    "top1": {"gym99_event": 99.50, "gym99_set": 98.42, "gym99_element": 91.58},
    "mean_class": {"gym99_event": 99.40, "gym99_set": 98.16, "gym99_element": 87.50},
    "note": "seed 000 Table 2, set pathway T=8; with set_frames=16, set_interval=4: top-1 99.54 / 98.94 / "
            "91.80, mean class 99.37 / 98.87 / 88.46 (event / set / element).",
}
_SLOWFAST_MULTITASK_PAPER = {
    "top1": {"gym99_event": 99.81, "gym99_set": 97.70, "gym99_element": 79.16},
    "mean_class": {"gym99_event": 99.63, "gym99_set": 97.40, "gym99_element": 74.93},
    "note": "seed 000 Table 3, SlowFast with three classifiers and the 1 : 2 : 4 loss.",
}


@register_model("slowonly_r50", "SlowOnly-ResNet50 (3D): one pathway, temporal convs in res4/res5, 4x16 clip",
                _SLOWONLY_PAPER)
def slowonly_r50(*, num_classes: int = 400, num_frames: int = 4, frame_interval: int = 16,
                 pretrained: str | None = None, dropout: float = 0.5, depth: int = 50, base_channels: int = 64,
                 inflate: str = "mean", arc_stages: Sequence[int] = (), arc_steps: int = 4,
                 arc_pool: str = "mean") -> Recognizer3d:
    """SlowOnly; `pretrained` = torchvision ImageNet ResNet checkpoint to inflate (same depth, 64 channels)."""
    return slowonly(depth=depth, num_classes=num_classes, num_frames=num_frames, frame_interval=frame_interval,
                    base_channels=base_channels, dropout=dropout, pretrained=pretrained, inflate=inflate,
                    arc_stages=arc_stages, arc_steps=arc_steps, arc_pool=arc_pool)


@register_model("slowfast_r50", "SlowFast-ResNet50 4x16 (alpha 8, beta 1/8): input one dense 32x2 clip",
                _SLOWFAST_PAPER)
def slowfast_r50(*, num_classes: int = 400, num_frames: int = 32, frame_interval: int = 2, alpha: int = 8,
                 beta_inv: int = 8, pretrained: str | None = None, dropout: float = 0.5, depth: int = 50,
                 base_channels: int = 64, inflate: str = "mean", arc_stages: Sequence[int] = (),
                 arc_steps: int = 4, arc_pool: str = "mean") -> Recognizer3d:
    """SlowFast; num_frames/frame_interval describe the dense (fast) clip; the slow pathway takes every
    alpha-th frame. `pretrained` inflates the slow pathway; the fast pathway and laterals start random."""
    return slowfast(depth=depth, num_classes=num_classes, num_frames=num_frames, frame_interval=frame_interval,
                    alpha=alpha, beta_inv=beta_inv, base_channels=base_channels, dropout=dropout,
                    pretrained=pretrained, inflate=inflate, arc_stages=arc_stages, arc_steps=arc_steps,
                    arc_pool=arc_pool)


def _levels(levels) -> dict[str, int]:
    if levels is None:
        return dict(GYM99_LEVELS)
    if not isinstance(levels, Mapping):
        raise ModelError(f"a multi-task model takes levels as {{level: classes}} ordered coarse -> fine, "
                         f"e.g. {GYM99_LEVELS}; got {levels!r}")
    return {str(k): int(v) for k, v in levels.items()}


@register_model("hierarchical_multitask", "Hierarchical multi-task network (seed 000): SlowOnly pathways per "
                "level -> encoders -> fusion -> a classifier per level", _MULTITASK_PAPER)
def hierarchical_multitask(*, levels: Mapping[str, int] | None = None, set_frames: int = 8,
                           set_interval: int = 8, pathway_clips: Mapping[str, Sequence[int]] | None = None,
                           pathway_depth: int = 50, base_channels: int = 64, pretrained: str | None = None,
                           pathway_checkpoints: Mapping[str, str | Path] | None = None,
                           freeze_pathways: bool = True, encoder_dims: Mapping[str, int] | None = None,
                           fused_dim: int = PAPER_FUSED_DIM, dropout: float = 0.5,
                           loss_weights: Mapping[str, float] | None = None, inflate: str = "mean",
                           arc_stages: Sequence[int] = (), arc_steps: int = 4, arc_pool: str = "mean",
                           pathway_archs: Mapping[str, str] | None = None, alpha: int = 8,
                           beta_inv: int = 8) -> HierarchicalMultiTask:
    """The seed-000 network with one SlowOnly pathway per pathway clip.

    levels:              {level: classes}, coarse -> fine (default Gym99 event 4 / set 14 / element 99).
    pathway_clips:       {pathway: (frames, interval)}; default event (4, 16), set (set_frames, set_interval),
                         element (32, 2). Custom pathway names need `encoder_dims`.
    pretrained:          torchvision ImageNet ResNet checkpoint inflated into every pathway.
    pathway_checkpoints: {pathway: single-level recognizer checkpoint} (the paper's first stage; any layout
                         fineact.interop.load_pathway_weights reads). Weights load after ARC is applied: a file
                         with plain convs is split into the ARC parts, one with ARC layers needs the same options.
    pathway_archs:       {pathway: "slowonly" | "slowfast"} (default slowonly): seed 000 Table 2 rows 3-4 use a
                         SlowFast element pathway (its clip is the dense one, alpha/beta_inv as slowfast_r50).
    """
    from fineact.interop.load import load_pathway_weights, load_weights

    levels = _levels(levels)
    clips = dict(pathway_clips) if pathway_clips is not None else {
        "event": PAPER_PATHWAY_CLIPS["event"], "set": (set_frames, set_interval),
        "element": PAPER_PATHWAY_CLIPS["element"]}
    if encoder_dims is None:
        unknown = [name for name in clips if name not in PAPER_ENCODER_DIMS]
        if unknown:
            raise ModelError(f"pathway(s) {unknown} have no default encoder size; pass encoder_dims "
                             f"(the paper's: {PAPER_ENCODER_DIMS})")
        encoder_dims = {name: PAPER_ENCODER_DIMS[name] for name in clips}
    pathways = {}
    for name, spec in clips.items():
        try:
            frames, interval = (int(v) for v in spec)
        except (TypeError, ValueError):
            raise ModelError(f"pathway_clips[{name!r}] must be (frames, interval), got {spec!r}") from None
        arch = (pathway_archs or {}).get(name, "slowonly")
        if arch == "slowonly":
            backbone = ResNet3d(pathway_depth, base_channels, stem_kernel=(1, 7, 7),
                                temporal_kernels=SLOW_TEMPORAL_KERNELS)
        elif arch == "slowfast":
            backbone = SlowFast(pathway_depth, base_channels, alpha=alpha, beta_inv=beta_inv)
        else:
            raise ModelError(f"pathway_archs[{name!r}] must be 'slowonly' or 'slowfast', got {arch!r}")
        # Headless single-level recognizer: keys backbone.*, states its own clip (frames, interval).
        pathways[name] = Recognizer3d(backbone, num_classes=0, num_frames=frames, frame_interval=interval)
    model = HierarchicalMultiTask(pathways, levels, encoder_dims=encoder_dims, fused_dim=fused_dim, dropout=dropout,
                                  loss_weights=loss_weights, freeze_pathways=freeze_pathways)
    if arc_stages:
        apply_arc3d(model, tuple(arc_stages), arc_steps, arc_pool)
    # After ARC: the loader splits the files' plain convs into the ARC parts. ImageNet weights go into every
    # pathway (SlowFast ones: the slow pathway) at once; each pathway checkpoint has its own report.
    model.load_report = load_weights(model, pretrained, source="torchvision", inflate=inflate) if pretrained else None
    reports = {name: load_pathway_weights(model, name, path) for name, path in (pathway_checkpoints or {}).items()}
    model.set_pathways_frozen(freeze_pathways)  # new ARC parameters follow the freeze flag too
    model.load_reports = reports
    model.arc_config = {"stages": tuple(arc_stages), "steps": arc_steps, "pool": arc_pool}
    return model


@register_model("slowfast_multitask", "SlowFast-R50 multi-task baseline (seed 000): one classifier per level, "
                "1:2:4 loss", _SLOWFAST_MULTITASK_PAPER)
def slowfast_multitask(*, levels: Mapping[str, int] | None = None, num_frames: int = 32,
                       frame_interval: int = 2, alpha: int = 8, beta_inv: int = 8, pretrained: str | None = None,
                       pretrained_backbone: str | None = None, dropout: float = 0.5, depth: int = 50,
                       base_channels: int = 64, loss_weights: Mapping[str, float] | None = None,
                       inflate: str = "mean", arc_stages: Sequence[int] = (), arc_steps: int = 4,
                       arc_pool: str = "mean") -> MultiLevelRecognizer:
    """SlowFast whose last fc is one classifier per level. `pretrained`: ImageNet ResNet to inflate;
    `pretrained_backbone`: a single-level SlowFast checkpoint whose backbone is loaded (after ARC)."""
    backbone = SlowFast(depth, base_channels, alpha=alpha, beta_inv=beta_inv)
    model = MultiLevelRecognizer(backbone, _levels(levels), num_frames=num_frames, frame_interval=frame_interval,
                                 dropout=dropout, loss_weights=loss_weights)
    decorate_and_load(model, pretrained=pretrained, inflate=inflate, arc_stages=arc_stages, arc_steps=arc_steps,
                      arc_pool=arc_pool)
    if pretrained_backbone:
        model.load_report = model.load_backbone(pretrained_backbone)
    return model


__all__ = ["GYM99_LEVELS", "PAPER_PATHWAY_CLIPS", "hierarchical_multitask", "slowfast_multitask",
           "slowfast_r50", "slowonly_r50"]
