"""Load the checkpoints users already have into fineact models: `load_weights` and `load_pathway_weights`.

    report = load_weights(model, "tsm_r50_kinetics.pth")            # layout detected from the keys
    report = load_weights(model, "slowonly.pth", source="mmaction2")
    print(report.summary())

Steps: read the file (weights only) -> detect its layout (keymaps.detect_source) -> rename its keys into
fineact's recognizer layout (keymaps.to_fineact) -> fit them to the model (bare backbone, recognizer,
multi-level head; 2D ImageNet weights are inflated into 3D models) -> split plain convs into ARC parts where
the model has ARC layers -> load strictly (weights.load_strict). Reading files (`read_weights_file`) and the
strict fit are in weights.py, 2D -> 3D inflation in inflate.py.

What may differ between file and model: the classifier only (another class count, or a file without one);
it keeps the model's initialisation and the report names it. Missing, unexpected or mis-shaped backbone keys
are a WeightsError that lists them. Two cases load on purpose without a counterpart in the file, and the report
says so: ImageNet (torchvision) weights leave a SlowFast fast pathway, its laterals and multi-task encoders /
fusion / heads as built, and ARC's We/Wf/Wa are set to zero when the file has plain convs (the decorated
layer then computes exactly the file's conv).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from fineact.errors import ModelError, WeightsError
from fineact.interop.inflate import inflate_resnet2d, torchvision_into_3d
from fineact.interop.keymaps import SOURCES, Mapped, detect_source, strip_prefix, to_fineact
from fineact.interop.trained_for import check_pathway_source
from fineact.interop.weights import LoadReport, load_strict, optional_key, read_weights_file
from fineact.models.arc import arc_layers, split_into_parts
from fineact.models.base import classifiers
from fineact.models.multitask import HierarchicalMultiTask, MultiLevelRecognizer
from fineact.models.resnet import ResNet
from fineact.models.resnet3d import Lateral, Recognizer3d, ResNet3d, SlowFast
from fineact.models.tsm import TemporalShift


@dataclass
class InteropReport(LoadReport):
    """LoadReport plus the layout the file was read as, what the mapping noted, and file keys not used."""

    layout: str = ""
    notes: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)      # only with strict=False
    unexpected: list[str] = field(default_factory=list)   # only with strict=False

    def summary(self) -> str:
        text = super().summary() + (f" (layout {self.layout})" if self.layout else "")
        if self.unused:
            shown = ", ".join(self.unused[:5]) + (", ..." if len(self.unused) > 5 else "")
            text += f"; not used from the file: {shown}"
        if self.missing:
            text += f"; NOT LOADED (missing in the file): {len(self.missing)} keys"
        if self.unexpected:
            text += f"; NOT USED (unknown to the model): {len(self.unexpected)} keys"
        for note in self.notes:
            text += f"; {note}"
        return text


# -- what the model is -----------------------------------------------------------------------------------------

def _classifier_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Key prefixes of the model's classifier(s): the only keys that may be absent from or differ in a file."""
    return tuple(f"{name}." for name in classifiers(model))


def _is_3d(model: nn.Module) -> bool:
    return any(isinstance(m, (ResNet3d, SlowFast)) for m in model.modules())


def _shifted_blocks(model: nn.Module) -> set[str] | None:
    backbone = model if isinstance(model, ResNet) else getattr(model, "backbone", None)
    if not isinstance(backbone, ResNet):
        return None
    return {f"{stage}.{i}" for stage, blocks in backbone.stages().items() for i, b in enumerate(blocks)
            if isinstance(b.shift, TemporalShift)}


# -- fitting recognizer-layout keys to a model ------------------------------------------------------------------

def _fit(model: nn.Module, mapped: Mapped) -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
    """Recognizer-layout keys -> the model's keys. Returns (state, unused file keys, notes)."""
    state, unused, notes = dict(mapped.state), list(mapped.unused), []
    has_head_in_file = any(k.startswith("head.fc.") for k in state)
    if isinstance(model, HierarchicalMultiTask):
        if not any(k.startswith("pathways.") for k in state):
            raise WeightsError("these weights are a single-level model; load them into one pathway of the "
                               "multi-task network with fineact.interop.load_pathway_weights(model, pathway, path)")
        return state, unused, notes
    if any(k.startswith("pathways.") for k in state):
        raise WeightsError(f"these weights are a multi-task network (keys 'pathways.*'); they do not fit a "
                           f"{type(model).__name__}")
    if isinstance(model, (ResNet, ResNet3d, SlowFast)):
        state = strip_prefix(state, "backbone.")
        head = {k: v for k, v in state.items() if k.startswith("head.fc.")}
        for k in head:
            del state[k]
        if isinstance(model, ResNet) and model.fc is not None:
            state.update({"fc." + k[len("head.fc."):]: v for k, v in head.items()})
        elif head:
            unused += sorted(head)
            notes.append(f"the file's classifier ({', '.join(sorted(head))}) is not used: "
                         f"the {type(model).__name__} has none")
        return state, unused, notes
    if isinstance(model, MultiLevelRecognizer) and has_head_in_file:
        head = sorted(k for k in state if k in ("head.fc.weight", "head.fc.bias"))
        for k in head:
            del state[k]
        unused += head
        notes.append("the file's single classifier head.fc is not used: the model has one classifier per level")
    if isinstance(model, Recognizer3d) and model.head is None and has_head_in_file:
        head = sorted(k for k in state if k.startswith("head.fc."))
        for k in head:
            del state[k]
        unused += head
        notes.append("the file's classifier is not used: the model was built without a head (num_classes=0)")
    return state, unused, notes


# -- ARC: plain conv + BN keys -> the parts of a decorated layer -------------------------------------------------

def _split_into_arc(model: nn.Module, state: dict[str, torch.Tensor]) -> int:
    """Where the model has an ARC layer and `state` the plain conv (+ its BN), slice them into the parts and set
    We/Wf/Wa to zero, so the layer computes the plain conv. Returns the number of layers converted."""
    converted = 0
    for name, layer in arc_layers(model):
        if f"{name}.weight" not in state or f"{name}.parts.0.conv.weight" in state:
            continue
        block_name, _, conv_name = name.rpartition(".")
        block = model.get_submodule(block_name) if block_name else model
        bn_name = next((bn for conv, bn, _ in getattr(block, "arc_targets", ()) if conv == conv_name), None)
        if bn_name is None:
            continue
        bn_prefix = f"{block_name}.{bn_name}" if block_name else bn_name
        weight = state.pop(f"{name}.weight")
        bn = {p: state.pop(f"{bn_prefix}.{p}") for p in ("weight", "bias", "running_mean", "running_var",
                                                         "num_batches_tracked") if f"{bn_prefix}.{p}" in state}
        if weight.shape[0] != layer.out_channels:
            raise WeightsError(f"{name}.weight: file has {weight.shape[0]} output channels, the ARC layer "
                               f"{layer.out_channels}")
        state.update({f"{name}.parts.{k}": v for k, v in split_into_parts(layer.split, weight, bn).items()})
        for key, value in layer.state_dict().items():
            if key.startswith(("embed.", "fuse.", "attend.")):
                state[f"{name}.{key}"] = torch.zeros_like(value)
        converted += 1
    return converted


# -- SlowFast laterals without BN (MMAction2's default) ----------------------------------------------------------

def _drop_lateral_norms(model: nn.Module) -> list[tuple[Lateral, nn.Module, nn.Module]]:
    """Make every lateral conv-only; returns what to put back if the load fails."""
    restore = []
    for m in model.modules():
        if isinstance(m, Lateral):
            restore.append((m, m.bn, m.relu))
            m.bn, m.relu = nn.Identity(), nn.Identity()
    return restore


# -- the final, strict load ---------------------------------------------------------------------------------------

def _group(keys: list[str], prefixes: Mapping[str, str]) -> list[str]:
    """Name re-initialised parts once per prefix instead of once per tensor."""
    grouped = [f"{p.rstrip('.')} ({why})" for p, why in prefixes.items() if any(f"{k}.".startswith(p) for k in keys)]
    return grouped + [k for k in keys if not any(f"{k}.".startswith(p) for p in prefixes)]


def _load(model: nn.Module, state: dict[str, torch.Tensor], source: str, reinit: Mapping[str, str],
          strict: bool) -> InteropReport:
    if strict:
        try:
            base = load_strict(model, state, source, reinit_ok=tuple(reinit))
        except WeightsError as exc:
            raise WeightsError(str(exc) + _hints(model, state)) from None
        report = InteropReport(source, loaded=base.loaded)
        report.reinitialised = _group(base.reinitialised, reinit)
        return report
    target = model.state_dict()
    usable = {k: v for k, v in state.items() if k in target and v.shape == target[k].shape}
    model.load_state_dict(usable, strict=False)
    report = InteropReport(source, loaded=sorted(usable))
    absent = [k for k in target if k not in usable and not optional_key(k)]
    report.reinitialised = _group(sorted({k.rsplit(".", 1)[0] for k in absent if k.startswith(tuple(reinit))}),
                                  reinit)
    report.missing = [k for k in absent if not k.startswith(tuple(reinit))]
    report.unexpected = sorted(k for k in state if k not in usable)
    return report


def _hints(model: nn.Module, state: dict[str, torch.Tensor]) -> str:
    """Likely causes of a failed strict load, as extra lines for the error message."""
    target = model.state_dict()
    hints = []
    if any(".parts." in k for k in state if k not in target):
        hints.append("the file has ARC layers the model lacks: build the model with the same arc_stages / arc_steps")
    conv1 = next((k for k in state if k.endswith("conv1.weight") and k in target), None)
    if conv1 is not None and state[conv1].dim() != target[conv1].dim():
        hints.append(f"{conv1} is {state[conv1].dim()}-D in the file and {target[conv1].dim()}-D in the model: "
                     "2D and 3D networks do not load into each other (only torchvision ImageNet weights are "
                     "inflated to 3D)")
    return "".join(f"\n  hint: {h}" for h in hints)


def _describe_classifiers(prefixes: tuple[str, ...]) -> dict[str, str]:
    return {p: "classifier: class count differs or not in the file" for p in prefixes}


def load_weights(model: nn.Module, path: str | Path, source: str = "auto", strict: bool = True, *,
                 inflate: str = "mean", adapt_laterals: bool = False) -> InteropReport:
    """Load a checkpoint from `path` into `model`, whatever project wrote it; returns what was loaded.

    source:   "auto" (from the keys), "torchvision", "mmaction2", "tsm-official" or "fineact".
    strict:   True (default): any backbone key missing from the file, unknown to the model or of another shape
              is a WeightsError listing them. False: load what fits and list the rest in the report.
    inflate:  for 2D ImageNet weights into a 3D model: "mean" (I3D) or "center" (resnet3d.inflate_kernel).
    adapt_laterals: MMAction2's SlowFast laterals are a bare conv by default (lateral_norm=False), fineact's are
              conv + BN + ReLU. True replaces the model's lateral BN and ReLU by identities so the model computes
              the file's network; without it such a file is a WeightsError that says so.
    """
    path = Path(path)
    state = read_weights_file(path)
    layout = detect_source(state) if source == "auto" else source
    if layout not in SOURCES:
        raise WeightsError(f"unknown checkpoint source {source!r}; expected 'auto' or one of {list(SOURCES)}")
    reinit = _describe_classifiers(_classifier_prefixes(model))
    notes: list[str] = []
    unused: list[str] = []
    restore: list = []
    if layout == "torchvision" and _is_3d(model):
        state3d, without, unused = torchvision_into_3d(model, strip_prefix(state, "module."), inflate, str(path))
        fitted = state3d
        reinit.update(without)
        notes.append(f"2D ImageNet weights inflated to 3D ({inflate})")
    else:
        mapped = to_fineact(state, layout)
        notes += mapped.notes
        fitted, unused_fit, fit_notes = _fit(model, mapped)
        unused += unused_fit
        notes += fit_notes
        has_laterals = any(isinstance(m, Lateral) and not isinstance(m.bn, nn.Identity) for m in model.modules())
        if mapped.conv_only_laterals and has_laterals:
            if not adapt_laterals:
                raise WeightsError(
                    f"weights file {path}: its SlowFast lateral connections are a bare conv (MMAction2's default, "
                    "lateral_norm=False: no BN, no ReLU), fineact's are conv + BN + ReLU. Pass "
                    "adapt_laterals=True to make the model's laterals conv-only (it then computes the file's "
                    "network; its state dict has no laterals.*.bn keys any more)")
            restore = _drop_lateral_norms(model)
            notes.append(f"{len(restore)} lateral connections made conv-only (BN and ReLU removed) to match the file")
        shifted_file, shifted_model = mapped.shifted_blocks, _shifted_blocks(model)
        if shifted_file is not None and shifted_model is not None and shifted_file != shifted_model:
            notes.append(f"temporal shift differs: the file's network shifts {len(shifted_file)} blocks, the "
                         f"model {len(shifted_model)} (weights load all the same; outputs will differ)")
    converted = _split_into_arc(model, fitted)
    if converted:
        notes.append(f"{converted} ARC layers took the file's plain convs; their We/Wf/Wa were set to zero")
    try:
        report = _load(model, fitted, str(path), reinit, strict)
    except WeightsError:
        for lateral, bn, relu in restore:
            lateral.bn, lateral.relu = bn, relu
        raise
    report.layout, report.notes, report.unused = layout, notes, sorted(set(unused))
    return report


def load_single_level(module: nn.Module, state_or_path: Mapping[str, torch.Tensor] | str | Path,
                      what: str, source: str | None = None) -> LoadReport:
    """Load a single-level recognizer checkpoint (keys `backbone.*`, `head.*`) into `module`.

    `module` is a headless recognizer (keys `backbone.*`) or a bare backbone (keys without the prefix).
    A leading `model.` (Lightning) is stripped. The single-level classifier `head.*` is not used (named in
    the report); every other key must match the module exactly, or a WeightsError lists the differences.
    (HierarchicalMultiTask.load_pathway and MultiLevelRecognizer.load_backbone.)
    """
    if isinstance(state_or_path, (str, Path)):
        source = source or str(state_or_path)
        state = read_weights_file(state_or_path)
    else:
        source = source or f"the state dict given for {what}"
        state = dict(state_or_path)
    state = strip_prefix(state, "model.")
    target = module.state_dict()
    wants_head = any(k.startswith("head.") for k in target)
    wants_backbone_prefix = any(k.startswith("backbone.") for k in target)
    unused = sorted(k for k in state if k.startswith("head.")) if not wants_head else []
    state = {k: v for k, v in state.items() if k not in unused}
    if not wants_backbone_prefix:
        state = strip_prefix(state, "backbone.")
    try:
        report = load_strict(module, state, source)
    except WeightsError as exc:
        raise WeightsError(f"{what}: {exc}\n  (expected a single-level recognizer checkpoint with keys "
                           f"'backbone.*' built like this pathway: same depth, base_channels and ARC options)") \
            from None
    if unused:
        report.reinitialised.append(f"head (the single-level classifier, {len(unused)} tensors, is not used)")
    return report


def load_pathway_weights(multitask_model: HierarchicalMultiTask, level: str, path: str | Path,
                         source: str = "auto", *, inflate: str = "mean") -> InteropReport:
    """Load a single-level checkpoint (MMAction2 SlowOnly, fineact Recognizer3d, ...) into one pathway.

    `level` names the pathway (by default the pathways are named like the levels: event / set / element).
    The file's classifier is not used (the multi-task network has its own heads); everything else must fit the
    pathway exactly (HierarchicalMultiTask.load_pathway). A fineact multi-task checkpoint gives its pathway of
    the same name; ImageNet (torchvision) weights are inflated into the pathway.
    """
    if not isinstance(multitask_model, HierarchicalMultiTask):
        raise ModelError(f"load_pathway_weights needs a HierarchicalMultiTask, got {type(multitask_model).__name__}")
    if level not in multitask_model.pathways:
        raise ModelError(f"no pathway {level!r}; pathways are {list(multitask_model.pathways)}")
    pathway = multitask_model.pathways[level]
    path = Path(path)
    state = read_weights_file(path)
    check_pathway_source(multitask_model, level, path)  # a set base model given as the event pathway: refused
    layout = detect_source(state) if source == "auto" else source
    notes: list[str] = []
    unused: list[str] = []
    if layout == "torchvision":
        unused = sorted(k for k in state if k.startswith(("fc.", "module.fc.")))
        backbone = getattr(pathway, "backbone", pathway)
        if not isinstance(backbone, ResNet3d):
            raise ModelError(f"pathway {level!r} has no ResNet3d backbone to inflate 2D weights into")
        single = {f"backbone.{k}": v for k, v in inflate_resnet2d(backbone, strip_prefix(state, "module."), inflate,
                                                                  str(path)).items()}
        notes.append(f"2D ImageNet weights inflated to 3D ({inflate})")
    else:
        mapped = to_fineact(state, layout)
        notes += mapped.notes
        single = mapped.state
        if any(k.startswith("pathways.") for k in single):
            prefix = f"pathways.{level}."
            if not any(k.startswith(prefix) for k in single):
                found = sorted({k.split(".")[1] for k in single if k.startswith("pathways.")})
                raise WeightsError(f"weights file {path}: a multi-task checkpoint without pathway {level!r} "
                                   f"(it has {found})")
            single = {k[len(prefix):]: v for k, v in single.items() if k.startswith(prefix)}
    converted = _split_into_arc(pathway, single)
    if converted:
        notes.append(f"{converted} ARC layers took the file's plain convs; their We/Wf/Wa were set to zero")
    base = multitask_model.load_pathway(level, single, source=str(path))
    report = InteropReport(str(path), loaded=base.loaded, reinitialised=base.reinitialised, layout=layout,
                           notes=notes, unused=unused)
    return report
