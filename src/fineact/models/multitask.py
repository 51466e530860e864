"""The hierarchical multi-task network of seed paper 000 (FineGym event / set / element), and its SlowFast baseline.

    clips {event, set, element}              one SlowOnly pathway per level, frame rate rising coarse -> fine
      -> pathway features (2048 each)        event T=4 x16, set T=8 x8 (or 16 x4), element T=32 x2
      -> encoders  2048 -> 128 / 256 / 1024  Linear -> ReLU -> Dropout
      -> concat (1408) -> fusion 1024        Linear -> ReLU -> Dropout
      -> one classifier per level            Linear -> logits {event, set, element}

The paper does not state the activations or dropout between these layers; "Linear -> ReLU -> Dropout" for the
encoders and the fusion layer is our reading (REFERENCE.md section 3). The classifiers start at N(0, 0.01),
bias 0, like MMAction2's heads; encoders and fusion keep PyTorch's default Linear initialisation.

Training, as the paper does it: first a single-level model per level (a plain SlowOnly recognizer), then
`load_pathway` puts each one's backbone into its pathway, the pathways are frozen, and only encoders, fusion
and heads learn (`freeze_pathways=True`). The paper's future work, end-to-end training, is
`freeze_pathways=False`. Frozen pathways stay in eval mode even under `model.train()` (their BN statistics do
not move), and `forward_pathway_features` / `forward_from_features` let a trainer cache their features.

The loss is the weighted sum of the levels' cross-entropies, `level_loss` below (the paper's equation 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fineact.errors import ModelError
from fineact.models.base import ClipSpec, check_clip
from fineact.models.resnet3d import SlowFast, ResNet3d, single_clip

if TYPE_CHECKING:
    from fineact.interop.weights import LoadReport

# The paper's sizes (section 3.2.2): pathway encoders and the fused layer.
PAPER_ENCODER_DIMS = {"event": 128, "set": 256, "element": 1024}
PAPER_FUSED_DIM = 1024


# -- the loss, equation 2 of seed 000 ----------------------------------------------------------------------

def default_loss_weights(levels: Sequence[str]) -> dict[str, float]:
    """Weights doubling from the coarsest to the finest level: event : set : element = 1 : 2 : 4."""
    return {level: float(2 ** i) for i, level in enumerate(levels)}


def level_loss(outputs: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor],
               weights: Mapping[str, float], label_smoothing: float = 0.0
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum of one cross-entropy per level; returns (total, {level: cross-entropy}).

        L_total = λ1 · L_event + λ2 · L_set + λ3 · L_element,   λ1 : λ2 : λ3 = 1 : 2 : 4      (eq. 2)
        L_c     = -s^c_p + log sum_j exp(s^c_j)       (eq. 1: cross-entropy of level c's scores s^c)

    This is the one loss of fineact: training (engine/module.py) calls it for every model, a single-level
    model being the case of one level with weight 1. `weights` names the levels summed, in that order.
    Targets are class indices (N,) per level; index -100 marks a sample without a label at that level.
    `label_smoothing` (beyond the paper; config `loss.label_smoothing`) is PyTorch's, applied per level.
    """
    missing = [level for level in weights if level not in targets]
    if missing:
        raise ModelError(f"loss: targets lack level(s) {missing}; expected a dict with keys {list(weights)}, "
                         f"got {list(targets)}")
    per_level = {}
    for level in weights:
        logits, target = outputs[level], targets[level]
        if target.dtype not in (torch.int64, torch.int32) or target.dim() != 1 or target.shape[0] != logits.shape[0]:
            raise ModelError(f"loss: targets[{level!r}] must be integer class indices of shape "
                             f"({logits.shape[0]},), got dtype {target.dtype} and shape {tuple(target.shape)}")
        per_level[level] = F.cross_entropy(logits, target.long(), label_smoothing=label_smoothing)
    total = sum(weights[level] * per_level[level] for level in weights)
    return total, per_level  # type: ignore[return-value]


def _check_levels(levels: Mapping[str, int], loss_weights: Mapping[str, float] | None) -> dict[str, float]:
    if not levels:
        raise ModelError("a multi-task model needs at least one level, e.g. {'event': 4, 'set': 14, 'element': 99}")
    for name, n in levels.items():
        if not isinstance(name, str) or not name or "." in name:
            raise ModelError(f"level names must be non-empty strings without '.', got {name!r}")
        if not isinstance(n, int) or n < 1:
            raise ModelError(f"level {name!r}: number of classes must be a positive integer, got {n!r}")
    weights = default_loss_weights(list(levels)) if loss_weights is None else dict(loss_weights)
    if set(weights) != set(levels):
        raise ModelError(f"loss_weights must have one weight per level {list(levels)}, got {list(weights)}")
    return {level: float(weights[level]) for level in levels}


def _classifier(in_features: int, num_classes: int) -> nn.Linear:
    fc = nn.Linear(in_features, num_classes)
    nn.init.normal_(fc.weight, 0.0, 0.01)
    nn.init.zeros_(fc.bias)
    return fc


# -- the hierarchical multi-task network --------------------------------------------------------------------

class HierarchicalMultiTask(nn.Module):
    """Pathways -> encoders -> fusion -> one classifier per level (seed 000, Fig. 1).

    pathways:        {name: module with `forward_features(clip) -> (N, feature_dim)` and `feature_dim`};
                     by default one per level, named like the levels (SlowOnly-R50 backbones).
    levels:          ordered coarse -> fine {level: number of classes}.
    encoder_dims:    {pathway: encoded size}; defaults to the paper's event 128 / set 256 / element 1024.
    fused_dim:       size of the fused layer (1024).
    dropout:         after each encoder's and the fusion layer's ReLU (our reading; see the module doc).
    loss_weights:    {level: λ}; default 1 : 2 : 4 ... (doubling coarse -> fine), equation 2.
    freeze_pathways: True = the paper's second stage (pathways frozen, eval mode); False = end-to-end.
    clip_specs:      {pathway: ClipSpec}; by default each pathway's own single `clip_specs` entry.

    Input {pathway: clip (N, C, T, H, W)}; output {level: logits (N, classes)}.
    """

    def __init__(self, pathways: Mapping[str, nn.Module], levels: Mapping[str, int], *,
                 encoder_dims: Mapping[str, int] | None = None, fused_dim: int = PAPER_FUSED_DIM,
                 dropout: float = 0.5, loss_weights: Mapping[str, float] | None = None,
                 freeze_pathways: bool = True, clip_specs: Mapping[str, ClipSpec] | None = None):
        super().__init__()
        self.loss_weights = _check_levels(levels, loss_weights)
        self.levels = dict(levels)
        if not pathways:
            raise ModelError("HierarchicalMultiTask needs at least one pathway")
        for name, p in pathways.items():
            if "." in name or not name:
                raise ModelError(f"pathway names must be non-empty strings without '.', got {name!r}")
            if not hasattr(p, "forward_features") or not isinstance(getattr(p, "feature_dim", None), int):
                raise ModelError(f"pathway {name!r} ({type(p).__name__}) needs forward_features() and an "
                                 f"integer feature_dim")
        dims = dict(encoder_dims) if encoder_dims is not None else \
            {k: v for k, v in PAPER_ENCODER_DIMS.items() if k in pathways}
        if set(dims) != set(pathways):
            raise ModelError(f"encoder_dims must give one size per pathway {list(pathways)}, got {dims}"
                             + ("" if encoder_dims is not None else
                                " (the paper's defaults cover only pathways named event/set/element)"))
        self.encoder_dims = {name: int(dims[name]) for name in pathways}
        self._specs = self._clip_specs(pathways, clip_specs)
        self.pathways = nn.ModuleDict(pathways)
        self.encoders = nn.ModuleDict({
            name: nn.Sequential(nn.Linear(p.feature_dim, self.encoder_dims[name]), nn.ReLU(inplace=True),
                                nn.Dropout(dropout))
            for name, p in pathways.items()})
        self.fusion = nn.Sequential(nn.Linear(sum(self.encoder_dims.values()), fused_dim), nn.ReLU(inplace=True),
                                    nn.Dropout(dropout))
        self.heads = nn.ModuleDict({level: _classifier(fused_dim, n) for level, n in levels.items()})
        self.feature_dim = fused_dim
        self.freeze_pathways = False
        self.set_pathways_frozen(freeze_pathways)

    @staticmethod
    def _clip_specs(pathways: Mapping[str, nn.Module],
                    given: Mapping[str, ClipSpec] | None) -> dict[str, ClipSpec]:
        if given is not None:
            if set(given) != set(pathways):
                raise ModelError(f"clip_specs must have one entry per pathway {list(pathways)}, got {list(given)}")
            return {name: given[name] for name in pathways}
        specs = {}
        for name, p in pathways.items():
            own = getattr(p, "clip_specs", None)
            if not isinstance(own, dict) or len(own) != 1:
                raise ModelError(f"pathway {name!r} ({type(p).__name__}) does not state a single clip_specs "
                                 f"entry; pass clip_specs={{pathway: ClipSpec(frames, interval)}}")
            specs[name] = next(iter(own.values()))
        return specs

    # -- what the data pipeline must provide ----------------------------------------------------------------
    @property
    def clip_specs(self) -> dict[str, ClipSpec]:
        return dict(self._specs)

    def get_classifier(self) -> dict[str, nn.Linear]:
        return {f"heads.{level}": head for level, head in self.heads.items()}

    # -- freezing ---------------------------------------------------------------------------------------------
    def set_pathways_frozen(self, frozen: bool) -> None:
        """Frozen: pathways take no gradient and stay in eval mode (BN statistics fixed). Else end-to-end."""
        self.freeze_pathways = bool(frozen)
        for p in self.pathways.parameters():
            p.requires_grad_(not frozen)
        self.train(self.training)

    def train(self, mode: bool = True) -> "HierarchicalMultiTask":
        super().train(mode)
        if self.freeze_pathways:
            self.pathways.eval()
        return self

    # -- forward ----------------------------------------------------------------------------------------------
    def _check_clips(self, clips) -> None:
        if not isinstance(clips, Mapping):
            raise ModelError(f"{type(self).__name__}: expected a dict {{pathway: clip (N, C, T, H, W)}} with keys "
                             f"{list(self.pathways)}, got {type(clips).__name__}")
        missing = [k for k in self.pathways if k not in clips]
        if missing:
            raise ModelError(f"{type(self).__name__}: clip dict lacks pathway(s) {missing}; expected keys "
                             f"{list(self.pathways)}, got {list(clips)}")
        for name in self.pathways:
            check_clip(clips[name], f"{type(self).__name__} pathway {name!r}")

    def forward_pathway_features(self, clips: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{pathway: clip} -> {pathway: (N, feature_dim)} pooled features.

        Frozen pathways run without autograd (no graph, less memory); for gradients through them (Grad-CAM),
        call `set_pathways_frozen(False)` first.
        """
        self._check_clips(clips)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_pathways):
            return {name: p.forward_features(clips[name]) for name, p in self.pathways.items()}

    def fuse(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """{pathway: (N, feature_dim)} -> (N, fused_dim): encode each, concatenate, fuse."""
        if not isinstance(features, Mapping) or any(k not in features for k in self.pathways):
            got = list(features) if isinstance(features, Mapping) else type(features).__name__
            raise ModelError(f"{type(self).__name__}: expected pathway features with keys {list(self.pathways)}, "
                             f"got {got}")
        encoded = []
        for name, encoder in self.encoders.items():
            f = features[name]
            want = self.pathways[name].feature_dim
            if f.dim() != 2 or f.shape[1] != want:
                raise ModelError(f"{type(self).__name__}: features of pathway {name!r} must be (N, {want}), "
                                 f"got {tuple(f.shape)}")
            encoded.append(encoder(f))
        return self.fusion(torch.cat(encoded, dim=1))

    def forward_from_features(self, features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{pathway: (N, feature_dim)} (e.g. cached) -> {level: logits}."""
        fused = self.fuse(features)
        return {level: head(fused) for level, head in self.heads.items()}

    def forward_features(self, clips: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """{pathway: clip} -> (N, fused_dim), the joint representation the classifiers read."""
        return self.fuse(self.forward_pathway_features(clips))

    def forward(self, clips: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.forward_from_features(self.forward_pathway_features(clips))

    # -- loss and weights -------------------------------------------------------------------------------------
    def loss(self, outputs: Mapping[str, torch.Tensor],
             targets: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted sum of the levels' cross-entropies (eq. 2, weights 1 : 2 : 4 by default)."""
        return level_loss(outputs, targets, self.loss_weights)

    def load_pathway(self, name: str, state_or_path: Mapping[str, torch.Tensor] | str | Path, *,
                     source: str | None = None) -> LoadReport:
        """Load a single-level recognizer checkpoint (path or state dict) into pathway `name`, strictly.

        `source` names where a state dict came from in reports and errors (a path names itself)."""
        if name not in self.pathways:
            raise ModelError(f"no pathway {name!r}; pathways are {list(self.pathways)}")
        from fineact.interop.load import load_single_level

        report = load_single_level(self.pathways[name], state_or_path, f"pathway {name!r}", source=source)
        self.set_pathways_frozen(self.freeze_pathways)  # loading keeps the requires_grad flags; re-assert mode
        return report


# -- the SlowFast multi-task baseline -------------------------------------------------------------------------

class MultiLevelHead(nn.Module):
    """Dropout -> one Linear per level (the single fc replaced by one classifier per level)."""

    def __init__(self, in_features: int, levels: Mapping[str, int], dropout: float = 0.5):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.ModuleDict({level: _classifier(in_features, n) for level, n in levels.items()})

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.dropout(features)
        return {level: fc(features) for level, fc in self.fc.items()}


class MultiLevelRecognizer(nn.Module):
    """One 3D backbone (SlowFast in the paper's baseline) whose last fc is one classifier per level.

    Input one clip (N, C, num_frames, H, W) as `clip_specs` says; output {level: logits}; loss as eq. 2.
    Keys `backbone.*` (those of the single-level recognizer) and `head.fc.<level>.*`.
    """

    def __init__(self, backbone: ResNet3d | SlowFast, levels: Mapping[str, int], *, num_frames: int,
                 frame_interval: int, dropout: float = 0.5, loss_weights: Mapping[str, float] | None = None):
        super().__init__()
        self.loss_weights = _check_levels(levels, loss_weights)
        self.levels = dict(levels)
        if isinstance(backbone, SlowFast) and num_frames % backbone.alpha:
            raise ModelError(f"SlowFast: num_frames={num_frames} (the dense clip) must be a multiple of "
                             f"alpha={backbone.alpha}")
        self.backbone = backbone
        self.num_frames, self.frame_interval = num_frames, frame_interval
        self.feature_dim = backbone.feature_dim
        self.head = MultiLevelHead(backbone.feature_dim, levels, dropout)

    @property
    def clip_specs(self) -> dict[str, ClipSpec]:
        return {"clip": ClipSpec(self.num_frames, self.frame_interval)}

    def get_classifier(self) -> dict[str, nn.Linear]:
        return {f"head.fc.{level}": fc for level, fc in self.head.fc.items()}

    def forward_features(self, clip) -> torch.Tensor:
        return self.backbone.forward_features(single_clip(clip, type(self).__name__))

    def forward(self, clip) -> dict[str, torch.Tensor]:
        return self.head(self.forward_features(clip))

    def loss(self, outputs: Mapping[str, torch.Tensor],
             targets: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted sum of the levels' cross-entropies (eq. 2, weights 1 : 2 : 4 by default)."""
        return level_loss(outputs, targets, self.loss_weights)

    def load_backbone(self, state_or_path: Mapping[str, torch.Tensor] | str | Path) -> LoadReport:
        """Load the backbone of a single-level recognizer checkpoint (its `head.*` is not used)."""
        from fineact.interop.load import load_single_level

        return load_single_level(self.backbone, state_or_path, "backbone")
