"""Load the checkpoints users already have into fineact models: `load_weights` and `load_pathway_weights`.

    report = load_weights(model, "tsm_r50_kinetics.pth")            # layout detected from the keys
    report = load_weights(model, "slowonly.pth", source="mmaction2")
    print(report.summary())

Steps: read the file (weights only) -> detect its layout (keymaps.detect_source) -> rename its keys into
fineact's recognizer layout (keymaps.to_fineact) -> fit them to the model (bare backbone, recognizer,
multi-level head; 2D ImageNet weights are inflated into 3D models) -> split plain convs into ARC parts where
the model has ARC layers -> load strictly (fineact.models.weights.load_strict).

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
from fineact.interop.keymaps import SOURCES, Mapped, detect_source, strip_prefix, to_fineact
from fineact.models.arc import arc_layers
from fineact.models.base import classifiers
from fineact.models.multitask import HierarchicalMultiTask, MultiLevelRecognizer
from fineact.models.resnet import ResNet
from fineact.models.resnet3d import INFLATE_MODES, Lateral, Recognizer3d, ResNet3d, SlowFast, inflate_resnet2d
from fineact.models.tsm import TemporalShift
from fineact.models.weights import LoadReport, load_strict

_WRAPPERS = ("state_dict", "model", "model_state_dict", "module")


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


# -- reading -----------------------------------------------------------------------------------------------------

class _Inert:
    """Stands in for a non-tensor object of a checkpoint's metadata (mmengine buffers, numpy scalars, ...).

    Built by the weights-only unpickler instead of the real class, it runs no code and keeps nothing. Only
    tensors under `state_dict` are used, so the stand-ins are thrown away with the metadata.
    """

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __call__(self, *args, **kwargs):
        return type(self)()


def _unwrap(obj, path: Path) -> dict[str, torch.Tensor]:
    while isinstance(obj, dict):
        wrapper = next((k for k in _WRAPPERS if k in obj and isinstance(obj[k], dict)), None)
        if wrapper is None:
            break
        obj = obj[wrapper]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"weights file {path}: expected a dict of tensors (optionally under 'state_dict'), "
                           f"found {type(obj).__name__}" + (f" with keys {list(obj)[:8]}" if isinstance(obj, dict)
                                                            else ""))
    return dict(obj)


def read_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """The flat {key: tensor} dict of a .pth/.pt/.ckpt/.tar (weights only) or .safetensors file.

    Checkpoints of training frameworks carry metadata next to `state_dict` (MMAction2 0.x/1.x: `meta`,
    `message_hub`, ...), sometimes with classes the weights-only unpickler refuses. Those globals are replaced by
    inert stand-ins (no code from the file runs); only the tensors are kept.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path}: not found (expected a .pth/.pt/.ckpt or .safetensors file)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return _unwrap(load_file(str(path)), path)
        except WeightsError:
            raise
        except Exception as exc:
            raise WeightsError(f"weights file {path}: not a readable safetensors file ({type(exc).__name__}: "
                               f"{exc})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as first:
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception:
            names = []
        if not names:
            raise WeightsError(f"weights file {path}: cannot be read as weights only "
                               f"({type(first).__name__}: {str(first).splitlines()[0]})") from None
        stand_ins = [(type(f"Inert_{i}", (_Inert,), {}), name) for i, name in enumerate(names)]
        try:
            with torch.serialization.safe_globals(stand_ins):
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise WeightsError(f"weights file {path}: cannot be read as weights only ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0]})") from None
    return _unwrap(obj, path)


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


# -- torchvision ImageNet weights into 3D models (inflation) -----------------------------------------------------

def _plain_twin(pathway: ResNet3d) -> ResNet3d:
    """A ResNet3d built like `pathway` but without ARC (inflation writes plain conv keys)."""
    return ResNet3d(pathway.depth, pathway.base_channels, in_channels=pathway.conv1.in_channels,
                    stem_kernel=pathway.conv1.kernel_size, temporal_kernels=pathway.temporal_kernels,
                    lateral_channels=pathway.lateral_channels)


def _inflate(pathway: ResNet3d, state_2d: dict[str, torch.Tensor], mode: str, source: str) -> dict:
    twin = _plain_twin(pathway)
    inflate_resnet2d(twin, state_2d, mode, source)
    return twin.state_dict()


def _torchvision_into_3d(model: nn.Module, state_2d: dict[str, torch.Tensor], mode: str,
                         source: str) -> tuple[dict[str, torch.Tensor], dict[str, str], list[str]]:
    """Inflate into every 3D pathway. Returns (state, {prefix: why it has no counterpart}, unused keys)."""
    if mode not in INFLATE_MODES:
        raise ModelError(f"inflate must be one of {INFLATE_MODES}, got {mode!r}")
    state: dict[str, torch.Tensor] = {}
    without: dict[str, str] = {}
    modules = dict(model.named_modules())
    slowfasts = [name for name, m in modules.items() if isinstance(m, SlowFast)]
    for name in slowfasts:
        prefix = f"{name}." if name else ""
        slow = modules[name].slow
        state.update({f"{prefix}slow.{k}": v for k, v in _inflate(slow, state_2d, mode, source).items()})
        without[f"{prefix}fast."] = "fast pathway: its channels differ from the 2D network, left as built"
        without[f"{prefix}laterals."] = "lateral connections: no 2D counterpart, left as built"
    for name, module in modules.items():
        inside_slowfast = any(name.startswith(f"{sf}." if sf else "") for sf in slowfasts)
        if isinstance(module, ResNet3d) and not inside_slowfast:
            prefix = f"{name}." if name else ""
            state.update({f"{prefix}{k}": v for k, v in _inflate(module, state_2d, mode, source).items()})
    if isinstance(model, HierarchicalMultiTask):
        for part in ("encoders.", "fusion."):
            without[part] = "no counterpart in a 2D ImageNet network, left as built"
    unused = sorted(k for k in state_2d if k.startswith("fc."))
    return state, without, unused


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
        start = 0
        for i, c in enumerate(layer.split):
            sl = slice(start, start + c)
            state[f"{name}.parts.{i}.conv.weight"] = weight[sl]
            for p, v in bn.items():
                state[f"{name}.parts.{i}.bn.{p}"] = v if p == "num_batches_tracked" else v[sl]
            start += c
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
    absent = [k for k in target if k not in usable and not k.endswith("num_batches_tracked")]
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
    inflate:  for 2D ImageNet weights into a 3D model: "mean" (I3D) or "center" (resnet3d.inflate_resnet2d).
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
        state3d, without, unused = _torchvision_into_3d(model, strip_prefix(state, "module."), inflate, str(path))
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
    layout = detect_source(state) if source == "auto" else source
    notes: list[str] = []
    unused: list[str] = []
    if layout == "torchvision":
        unused = sorted(k for k in state if k.startswith(("fc.", "module.fc.")))
        backbone = getattr(pathway, "backbone", pathway)
        if not isinstance(backbone, ResNet3d):
            raise ModelError(f"pathway {level!r} has no ResNet3d backbone to inflate 2D weights into")
        single = {f"backbone.{k}": v for k, v in _inflate(backbone, strip_prefix(state, "module."), inflate,
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
    base = multitask_model.load_pathway(level, single)
    report = InteropReport(str(path), loaded=base.loaded, reinitialised=base.reinitialised, layout=layout,
                           notes=notes, unused=unused)
    return report
