"""State-dict key layouts of the checkpoints users already have, and their renaming onto fineact's keys.

Every layout below is a list of facts about another project's module names (looked up in their code, none of
it copied); `to_fineact` renames a flat {key: tensor} dict of that layout into fineact's *recognizer layout*:

    backbone.conv1.weight, backbone.bn1.*                       stem (2D or 3D)
    backbone.layer{s}.{b}.conv{k}.weight, .bn{k}.*              residual blocks (torchvision names)
    backbone.layer{s}.{b}.downsample.0.weight, .downsample.1.*  projection shortcut
    backbone.slow.* / backbone.fast.*                           SlowFast pathways (same names inside)
    backbone.laterals.{i}.conv.weight, .bn.*                    SlowFast lateral i (0 = after the stem)
    head.fc.weight, head.fc.bias                                the classifier

Layouts
-------
torchvision   ImageNet ResNets: conv1, bn1, layer1.0.conv1, ..., layer2.0.downsample.0/1, fc. fineact's 2D
              ResNet has exactly these keys (a bare fineact ResNet state dict *is* this layout).
tsm-official  mit-han-lab/temporal-shift-module: TSN(...) wraps a torchvision ResNet as `base_model`; training
              under nn.DataParallel adds `module.`; a shifted conv is wrapped as `conv1.net` (TemporalShift(net));
              the classifier is `new_fc` (or `base_model.fc` when trained with dropout 0). Checkpoints are
              {'epoch', 'arch', 'state_dict', 'best_prec1'}. Shift placement "blockres" = fineact's.
mmaction2     open-mmlab/mmaction2 0.x and 1.x: `backbone.*` + `cls_head.*` (+ a `meta` entry next to
              `state_dict`). Convs are mmcv ConvModules: `conv1.conv` + `conv1.bn` (stem), `layer1.0.conv1.conv`
              + `layer1.0.conv1.bn` (block conv k and its BN), `layer1.0.downsample.conv` / `.bn`. ResNetTSM
              wraps the shifted conv: `layer1.0.conv1.conv.net.weight`. ResNet3dSlowFast: `backbone.slow_path.*`,
              `backbone.fast_path.*`, laterals `backbone.slow_path.conv1_lateral` (after the stem) and
              `layer{1,2,3}_lateral` (after res2..res4): a conv only by default (`lateral_norm=False`), conv + BN
              + ReLU with `lateral_norm=True` (1.x). Heads (TSNHead, TSMHead, I3DHead, SlowFastHead) keep their
              Linear in `cls_head.fc_cls`. SlowFastHead concatenates the pooled FAST features first, then the
              slow ones; fineact concatenates slow then fast, so the classifier's input columns are swapped.
              The 0.x and 1.x key names of these models are the same (1.x's migration guide: "no changes in
              model.backbone"); the files differ in their wrapping (`meta`, `message_hub`, ...), which
              `weights.read_weights_file` handles. TSNHead averages the segments' features before fc_cls, fineact
              averages the logits after it: the same numbers (fc is linear) up to float rounding.
              Not loadable, and rejected with the keys named: 3D ResNet-18/34 files (MMAction2's BasicBlock3d
              inflates both 3x3 convs to 3x3x3, fineact's only the first), non-local blocks, TSM temporal_pool.
fineact       fineact's own: Lightning checkpoints (`model.` prefix under `state_dict`), exported
              `.safetensors` (the model's own keys) and plain `torch.save(model.state_dict())`.

Renaming never guesses: a key no rule covers keeps its original name, so the strict load that follows lists it
as unexpected (with the name the user can find in their file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import torch

from fineact.errors import WeightsError

SOURCES = ("torchvision", "tsm-official", "mmaction2", "fineact")

# fineact's own top-level names: recognizers, multi-task networks, bare backbones.
FINEACT_ROOTS = ("backbone.", "head.", "pathways.", "encoders.", "fusion.", "heads.",
                 "conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.", "fc.", "slow.", "fast.", "laterals.")
TORCHVISION_ROOTS = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.", "fc.")
# An MMAction2 ConvModule key: backbone.[slow_path.|fast_path.](conv1|layerS.B.convK|layerS.B.downsample).(conv|bn).
_MM_CONVMODULE = re.compile(r"^backbone\.(?:(?:slow|fast)_path\.)?"
                            r"(?:conv1|layer\d+\.\d+\.(?:conv\d|downsample))\.(?:conv|bn)\.")


@dataclass
class Mapped:
    """A state dict renamed into fineact's recognizer layout, plus what the renaming learned on the way."""

    state: dict[str, torch.Tensor]
    notes: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)          # file keys deliberately not used (named, not dropped)
    shifted_blocks: set[str] | None = None                     # "layer1.0", ... where the file had a shift wrapper
    conv_only_laterals: bool = False                           # MMAction2 SlowFast without lateral BN/ReLU


def strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Remove `prefix` from every key that has it (others unchanged)."""
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}


def _all_start(keys: list[str], roots: tuple[str, ...]) -> bool:
    return bool(keys) and all(k.startswith(roots) for k in keys)


# -- torchvision -----------------------------------------------------------------------------------------------

def _torchvision_mismatch(state: dict[str, torch.Tensor]) -> str | None:
    keys = list(state)
    if "conv1.weight" not in state:
        return "no 'conv1.weight'"
    if state["conv1.weight"].dim() != 4:
        return f"'conv1.weight' is {state['conv1.weight'].dim()}-D, a 2D ResNet's is 4-D"
    if not any(k.startswith("layer1.0.") for k in keys):
        return "no 'layer1.0.*' keys"
    others = [k for k in keys if not k.startswith(TORCHVISION_ROOTS)]
    if others:
        return f"keys outside conv1/bn1/layer1-4/fc, e.g. {others[0]!r}"
    arc = [k for k in keys if re.search(r"\.(parts|embed|fuse|attend)\.", k)]
    if arc:
        return f"ARC layers (a fineact model), e.g. {arc[0]!r}"
    return None


def torchvision_to_fineact(state: dict[str, torch.Tensor]) -> Mapped:
    out = {}
    for k, v in state.items():
        out["head." + k if k.startswith("fc.") else "backbone." + k] = v
    return Mapped(out)


# -- the official TSM code ---------------------------------------------------------------------------------------

def _tsm_official_mismatch(state: dict[str, torch.Tensor]) -> str | None:
    keys = [k[len("module."):] if k.startswith("module.") else k for k in state]
    if not any(k.startswith("base_model.") for k in keys):
        return "no 'module.base_model.*' / 'base_model.*' keys"
    others = [k for k in keys if not k.startswith(("base_model.", "new_fc."))]
    if others:
        return f"keys outside base_model/new_fc, e.g. {others[0]!r}"
    return None


_TSM_SHIFTED = re.compile(r"^(layer\d+\.\d+)\.conv1\.net\.")


def tsm_official_to_fineact(state: dict[str, torch.Tensor]) -> Mapped:
    state = strip_prefix(state, "module.")
    out, shifted = {}, set()
    for k, v in state.items():
        if k.startswith("new_fc."):
            out["head.fc." + k[len("new_fc."):]] = v
            continue
        if k.startswith("base_model.fc."):
            out["head.fc." + k[len("base_model.fc."):]] = v
            continue
        if not k.startswith("base_model."):
            out[k] = v  # reported as unexpected by the strict load
            continue
        rest = k[len("base_model."):]
        m = _TSM_SHIFTED.match(rest)
        if m:
            shifted.add(m.group(1))
            rest = rest.replace(".conv1.net.", ".conv1.", 1)
        out["backbone." + rest] = v
    notes = []
    if any(".layer2.net." in k or k.startswith("backbone.layer2.net.") for k in out):
        notes.append("the file was trained with temporal_pool=True (layer2 wrapped as layer2.net), which fineact's "
                     "TSM does not have")
    return Mapped(out, notes, shifted_blocks=shifted)


# -- MMAction2 ----------------------------------------------------------------------------------------------------

def _mmaction2_mismatch(state: dict[str, torch.Tensor]) -> str | None:
    keys = list(state)
    if not any(_MM_CONVMODULE.match(k) for k in keys) and not any(k.startswith("cls_head.") for k in keys):
        return "no ConvModule keys like 'backbone.conv1.conv.weight' and no 'cls_head.*'"
    others = [k for k in keys if not k.startswith(("backbone.", "cls_head.", "data_preprocessor."))]
    if others:
        return f"keys outside backbone/cls_head, e.g. {others[0]!r}"
    return None


# A module path inside one (2D/3D) MMAction2 ResNet, without the parameter name.
_MM_STEM = re.compile(r"^conv1\.(conv|bn)$")
_MM_BLOCK_CONV = re.compile(r"^(layer\d+\.\d+)\.conv(\d)\.(conv(?:\.net)?|bn)$")
_MM_DOWNSAMPLE = re.compile(r"^(layer\d+\.\d+)\.downsample\.(conv|bn)$")
_MM_LATERAL = re.compile(r"^(conv1|layer(\d+))_lateral\.(conv|bn)$")


def _mm_resnet_module(path: str, shifted: set[str]) -> str | None:
    """MMAction2 ResNet module path -> fineact/torchvision module path (None: no rule)."""
    m = _MM_STEM.match(path)
    if m:
        return "conv1" if m.group(1) == "conv" else "bn1"
    m = _MM_BLOCK_CONV.match(path)
    if m:
        block, k, part = m.groups()
        if part == "conv.net":
            shifted.add(block)
        return f"{block}.conv{k}" if part.startswith("conv") else f"{block}.bn{k}"
    m = _MM_DOWNSAMPLE.match(path)
    if m:
        return f"{m.group(1)}.downsample.{0 if m.group(2) == 'conv' else 1}"
    return None


def mmaction2_to_fineact(state: dict[str, torch.Tensor]) -> Mapped:
    out, notes, unused, shifted = {}, [], [], set()
    is_slowfast = any(k.startswith("backbone.slow_path.") for k in state)
    lateral_bn = any(re.match(r"^backbone\.slow_path\.\w+_lateral\.bn\.", k) for k in state)
    for k, v in state.items():
        if k.startswith("data_preprocessor."):
            unused.append(k)  # normalisation constants, not weights (non-persistent in 1.x, kept by some files)
            continue
        if k.startswith("cls_head."):
            if k in ("cls_head.fc_cls.weight", "cls_head.fc_cls.bias"):
                out["head.fc." + k.rsplit(".", 1)[1]] = v
            else:
                out[k] = v
            continue
        if not k.startswith("backbone."):
            out[k] = v
            continue
        rest = k[len("backbone."):]
        prefix = ""
        if is_slowfast:
            for mm, ours in (("slow_path.", "slow."), ("fast_path.", "fast.")):
                if rest.startswith(mm):
                    prefix, rest = ours, rest[len(mm):]
                    break
        path, _, param = rest.rpartition(".")
        new = None
        lateral = _MM_LATERAL.match(path) if prefix == "slow." else None
        if lateral:
            index = 0 if lateral.group(1) == "conv1" else int(lateral.group(2))
            new = f"laterals.{index}.{lateral.group(3)}"
            prefix = ""
        else:
            mapped = _mm_resnet_module(path, shifted if not is_slowfast else set())
            if mapped is not None:
                new = prefix + mapped
        out[f"backbone.{new}.{param}" if new is not None else k] = v
    if is_slowfast and "head.fc.weight" in out:
        out["head.fc.weight"] = _swap_slowfast_columns(state, out["head.fc.weight"])
        notes.append("SlowFastHead classifier: input columns reordered from MMAction2's (fast, slow) to "
                     "fineact's (slow, fast)")
    conv_only = is_slowfast and not lateral_bn and any(".laterals." in k for k in out)
    return Mapped(out, notes, unused, shifted_blocks=None if is_slowfast else shifted, conv_only_laterals=conv_only)


def _pathway_feature_dim(state: dict[str, torch.Tensor], pathway: str) -> int:
    """Output channels of the last stage of an MMAction2 pathway (its pooled feature size)."""
    pattern = re.compile(rf"^backbone\.{pathway}\.layer4\.(\d+)\.conv(\d)\.conv\.weight$")
    found = [(int(m.group(1)), int(m.group(2)), k) for k in state for m in [pattern.match(k)] if m]
    if not found:
        raise WeightsError(f"MMAction2 SlowFast checkpoint: no '{pathway}.layer4.*.conv*.conv.weight' keys, "
                           "so the classifier's input split (fast | slow) cannot be found")
    return state[max(found)[2]].shape[0]


def _swap_slowfast_columns(state: dict[str, torch.Tensor], weight: torch.Tensor) -> torch.Tensor:
    slow, fast = _pathway_feature_dim(state, "slow_path"), _pathway_feature_dim(state, "fast_path")
    if weight.shape[1] != slow + fast:
        raise WeightsError(f"MMAction2 SlowFast checkpoint: cls_head.fc_cls.weight has {weight.shape[1]} input "
                           f"columns, expected fast {fast} + slow {slow} = {slow + fast}")
    return torch.cat((weight[:, fast:], weight[:, :fast]), dim=1)


# -- fineact ----------------------------------------------------------------------------------------------------

def _fineact_mismatch(state: dict[str, torch.Tensor]) -> str | None:
    keys = [k[len("model."):] if k.startswith("model.") else k for k in state]
    if any(_MM_CONVMODULE.match(k) for k in keys) or any(k.startswith("cls_head.") for k in keys):
        return "has MMAction2 ConvModule keys"
    others = [k for k in keys if not k.startswith(FINEACT_ROOTS)]
    if others:
        return f"keys outside fineact's module names (backbone/head/pathways/...), e.g. {others[0]!r}"
    return None


def fineact_to_fineact(state: dict[str, torch.Tensor]) -> Mapped:
    if all(k.startswith("model.") for k in state):
        state = strip_prefix(state, "model.")
    return Mapped(dict(state))


# -- registry of layouts ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    name: str
    looks_like: str                                          # for error messages
    mismatch: Callable[[dict[str, torch.Tensor]], str | None]  # None when the keys fit this layout
    to_fineact: Callable[[dict[str, torch.Tensor]], Mapped]


LAYOUTS: dict[str, Layout] = {
    "mmaction2": Layout("mmaction2", "backbone.conv1.conv.weight, backbone.layer1.0.conv1.bn.weight, "
                        "cls_head.fc_cls.weight (backbone.slow_path.* / fast_path.* for SlowFast)",
                        _mmaction2_mismatch, mmaction2_to_fineact),
    "tsm-official": Layout("tsm-official", "module.base_model.conv1.weight, "
                           "module.base_model.layer1.0.conv1.net.weight, module.new_fc.weight",
                           _tsm_official_mismatch, tsm_official_to_fineact),
    "torchvision": Layout("torchvision", "conv1.weight (4-D), bn1.*, layer1.0.conv1.weight, fc.weight",
                          _torchvision_mismatch, torchvision_to_fineact),
    "fineact": Layout("fineact", "backbone.*, head.fc.*, pathways.* (optionally under model.)",
                      _fineact_mismatch, fineact_to_fineact),
}


def detect_source(state_dict) -> str:
    """Which layout the keys of `state_dict` use: one of SOURCES. Raises a WeightsError naming every candidate
    considered and why it does not fit. A path is read first (fineact.interop.weights.read_weights_file)."""
    if not isinstance(state_dict, dict):
        from fineact.interop.weights import read_weights_file

        state_dict = read_weights_file(state_dict)
    if not state_dict:
        raise WeightsError("the weights file holds no tensors")
    state = strip_prefix(state_dict, "module.") if all(k.startswith("module.") for k in state_dict) \
        and not any(k.startswith("module.base_model.") for k in state_dict) else state_dict
    reasons = {}
    for name in ("mmaction2", "tsm-official", "torchvision", "fineact"):
        why = LAYOUTS[name].mismatch(state)
        if why is None:
            return name
        reasons[name] = why
    sample = ", ".join(list(state_dict)[:6])
    lines = ["cannot tell which checkpoint layout these weights use; candidates considered:"]
    lines += [f"  {name}: expects keys like {LAYOUTS[name].looks_like}; here: {why}" for name, why in reasons.items()]
    lines.append(f"  first keys of the file: {sample}")
    lines.append(f"  pass source= one of {list(SOURCES)} if you know the layout")
    raise WeightsError("\n".join(lines))


def to_fineact(state_dict: dict[str, torch.Tensor], source: str) -> Mapped:
    """Rename `state_dict` (layout `source`) into fineact's recognizer layout."""
    if source not in LAYOUTS:
        raise WeightsError(f"unknown checkpoint source {source!r}; expected 'auto' or one of {list(SOURCES)}")
    state = dict(state_dict)
    if source != "tsm-official" and state and all(k.startswith("module.") for k in state):
        state = strip_prefix(state, "module.")  # saved from nn.DataParallel / DDP
    why = LAYOUTS[source].mismatch(state)
    if why is not None:
        raise WeightsError(f"the weights are not in the {source!r} layout (expected keys like "
                           f"{LAYOUTS[source].looks_like}): {why}")
    return LAYOUTS[source].to_fineact(state)
