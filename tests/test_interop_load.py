"""Loading the checkpoints users already have (fineact.interop.load_weights / load_pathway_weights).

Every test writes a file in a peer's layout by renaming a fineact model's state dict with an INDEPENDENT
mapping written here from the documented key patterns (fineact -> peer, the opposite direction of the
library's peer -> fineact mapping), loads it, and checks the outputs equal those of a model given the same
tensors the native way (load_state_dict / the builders' own loaders).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

from fineact.errors import WeightsError
from fineact.interop import detect_source, load_pathway_weights, load_weights
from fineact.models import build_model
from fineact.models.resnet import resnet
from fineact.models.resnet3d import Lateral

SIZE = 32  # spatial size of the test clips



pytestmark = pytest.mark.usefixtures("one_thread")

# -- helpers ---------------------------------------------------------------------------------------------------------

def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every tensor a distinct random value (BN statistics and affines, ARC maps, classifiers), so that a
    wrongly routed key changes the outputs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif t.dim() == 1:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1 + (1.0 if name.endswith("weight") else 0.0))
            else:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
    return model.eval()


def clip(frames: int, seed: int = 1, batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, frames, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def outputs_equal(a, b, atol: float = 0.0) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(outputs_equal(a[k], b[k], atol) for k in a)
    return torch.allclose(a, b, rtol=0, atol=atol)


def run(model, x):
    with torch.no_grad():
        return model.eval()(x)


# -- independent renamings: fineact -> peer layouts (from the peers' documented module names) ------------------------

BLOCK_CONV = re.compile(r"^(layer\d+\.\d+)\.conv(\d)\.weight$")
BLOCK_BN = re.compile(r"^(layer\d+\.\d+)\.bn(\d)\.(\w+)$")
DOWNSAMPLE = re.compile(r"^(layer\d+\.\d+)\.downsample\.([01])\.(\w+)$")


def mm_resnet_key(key: str, shift_conv1: bool) -> str:
    """One fineact/torchvision ResNet key (no prefix) -> MMAction2 ConvModule naming."""
    if key.startswith("conv1."):
        return "conv1.conv." + key[len("conv1."):]
    if key.startswith("bn1."):
        return "conv1.bn." + key[len("bn1."):]
    m = BLOCK_CONV.match(key)
    if m:
        block, k = m.groups()
        wrapped = ".net" if shift_conv1 and k == "1" else ""
        return f"{block}.conv{k}.conv{wrapped}.weight"
    m = BLOCK_BN.match(key)
    if m:
        block, k, param = m.groups()
        return f"{block}.conv{k}.bn.{param}"
    m = DOWNSAMPLE.match(key)
    if m:
        block, index, param = m.groups()
        return f"{block}.downsample.{'conv' if index == '0' else 'bn'}.{param}"
    raise AssertionError(f"test mapping has no rule for {key}")


def to_mmaction2(state: dict, tsm: bool = False) -> dict:
    """fineact single-level recognizer (2D or SlowOnly) -> MMAction2 (ResNet / ResNetTSM / ResNet3dSlowOnly)."""
    out = {}
    for k, v in state.items():
        if k.startswith("head.fc."):
            out["cls_head.fc_cls." + k[len("head.fc."):]] = v
        else:
            assert k.startswith("backbone.")
            out["backbone." + mm_resnet_key(k[len("backbone."):], tsm)] = v
    return out


def to_mmaction2_slowfast(state: dict, slow_dim: int, lateral_norm: bool) -> dict:
    """fineact SlowFast recognizer -> MMAction2 ResNet3dSlowFast + SlowFastHead (fast features first)."""
    out = {}
    for k, v in state.items():
        if k == "head.fc.weight":
            out["cls_head.fc_cls.weight"] = torch.cat((v[:, slow_dim:], v[:, :slow_dim]), dim=1)
        elif k == "head.fc.bias":
            out["cls_head.fc_cls.bias"] = v
        elif k.startswith("backbone.laterals."):
            index, rest = k[len("backbone.laterals."):].split(".", 1)
            name = "conv1_lateral" if index == "0" else f"layer{index}_lateral"
            if rest.startswith("bn.") and not lateral_norm:
                continue
            out[f"backbone.slow_path.{name}.{rest}"] = v
        else:
            pathway, rest = k[len("backbone."):].split(".", 1)
            out[f"backbone.{pathway}_path." + mm_resnet_key(rest, False)] = v
    return out


def to_tsm_official(state: dict) -> dict:
    """fineact TSM recognizer -> the TSM repository's TSN(base_model=resnet, is_shift=True) under DataParallel."""
    out = {}
    for k, v in state.items():
        if k.startswith("head.fc."):
            out["module.new_fc." + k[len("head.fc."):]] = v
            continue
        rest = k[len("backbone."):]
        rest = re.sub(r"^(layer\d+\.\d+)\.conv1\.", r"\1.conv1.net.", rest)
        out["module.base_model." + rest] = v
    return out


def mm_checkpoint_1x(state: dict) -> dict:
    """MMAction2 1.x file: state_dict + meta + message_hub (with an object the weights-only reader refuses)."""
    return {"meta": {"mmengine_version": "0.10.4", "epoch": 50, "dataset_meta": None},
            "state_dict": state, "message_hub": {"log_scalars": {"train/loss": HistoryLike([1.0, 0.5])}}}


def mm_checkpoint_0x(state: dict) -> dict:
    """MMAction2 0.x file: meta (with numpy values in hook_msgs) + state_dict."""
    return {"meta": {"mmcv_version": "1.3.8", "epoch": 40, "hook_msgs": {"best_score": np.float64(0.79)}},
            "state_dict": state}


class HistoryLike:
    """Stands for mmengine's HistoryBuffer: a class torch.load(weights_only=True) refuses."""

    def __init__(self, values):
        self.values = list(values)


def save(obj, tmp_path, name: str):
    path = tmp_path / name
    torch.save(obj, path)
    return path


# -- torchvision -----------------------------------------------------------------------------------------------------

def test_torchvision_into_resnet_and_segment_recognizer(tmp_path):
    source = randomize(resnet(18, num_classes=1000), seed=3)
    path = save(source.state_dict(), tmp_path, "resnet18-imagenet.pth")
    assert detect_source(torch.load(path, weights_only=True)) == "torchvision"

    target = resnet(18, num_classes=1000)
    report = load_weights(target, path)
    x = torch.randn(2, 3, SIZE, SIZE)
    assert torch.equal(run(target, x), run(source, x))
    assert report.layout == "torchvision" and not report.reinitialised

    tsn = build_model("tsn_r18", num_classes=5, num_segments=2)
    report = load_weights(tsn, path)
    assert any(r.startswith("head.fc") for r in report.reinitialised)   # 1000 ImageNet classes vs 5
    frames = clip(2).transpose(1, 2).reshape(-1, 3, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(tsn.eval().backbone.forward_features(frames), source.eval().forward_features(frames))


def test_torchvision_inflated_into_slowonly_matches_builder(tmp_path):
    path = save(randomize(resnet(18), seed=4).state_dict(), tmp_path, "r18.pth")
    native = build_model("slowonly_r50", depth=18, num_classes=7, pretrained=str(path))
    ours = build_model("slowonly_r50", depth=18, num_classes=7)
    report = load_weights(ours, path)
    x = clip(4)
    with torch.no_grad():
        assert torch.equal(ours.eval().forward_features(x), native.eval().forward_features(x))
    assert any(r.startswith("head.fc") for r in report.reinitialised)
    assert "fc.weight" in report.unused


def test_torchvision_into_arc_slowonly_splits_convs_into_parts(tmp_path):
    path = save(randomize(resnet(18), seed=5).state_dict(), tmp_path, "r18.pth")
    native = build_model("slowonly_r50", depth=18, num_classes=3, pretrained=str(path), arc_stages=(5,))
    ours = build_model("slowonly_r50", depth=18, num_classes=3, arc_stages=(5,))
    report = load_weights(ours, path)
    x = clip(4)
    with torch.no_grad():
        assert torch.allclose(ours.eval().forward_features(x), native.eval().forward_features(x), atol=1e-5)
    assert any("ARC" in n for n in report.notes)


# -- the official TSM repository -------------------------------------------------------------------------------------

def test_tsm_official_checkpoint_r50(tmp_path):
    native = randomize(build_model("tsm_r50", num_classes=6, num_segments=4), seed=6)
    ckpt = {"epoch": 25, "arch": "resnet50", "state_dict": to_tsm_official(native.state_dict()), "best_prec1": 47.8}
    path = save(ckpt, tmp_path, "TSM_somethingv1_RGB_resnet50_shift8_blockres_avg_segment4_e25.pth")
    assert detect_source(ckpt["state_dict"]) == "tsm-official"
    model = build_model("tsm_r50", num_classes=6, num_segments=4)
    report = load_weights(model, path)
    assert outputs_equal(run(model, clip(4)), run(native, clip(4)))
    assert report.layout == "tsm-official" and report.reinitialised == []
    assert not any("shift" in n for n in report.notes)


# -- MMAction2 -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("wrap", [mm_checkpoint_1x, mm_checkpoint_0x])
def test_mmaction2_tsm(tmp_path, wrap):
    native = randomize(build_model("tsm_r18", num_classes=6, num_segments=4), seed=7)
    state = to_mmaction2(native.state_dict(), tsm=True)
    assert "backbone.layer1.0.conv1.conv.net.weight" in state and "backbone.conv1.bn.running_var" in state
    path = save(wrap(state), tmp_path, "tsm_r18_mmaction2.pth")
    model = build_model("tsm_r18", num_classes=6, num_segments=4)
    report = load_weights(model, path)
    assert report.layout == "mmaction2" and report.reinitialised == []
    assert outputs_equal(run(model, clip(4)), run(native, clip(4)))


def test_mmaction2_tsn_and_classifier_with_another_class_count(tmp_path):
    native = randomize(build_model("tsn_r18", num_classes=400, num_segments=2), seed=8)
    path = save(mm_checkpoint_0x(to_mmaction2(native.state_dict())), tmp_path, "tsn_k400.pth")
    same = build_model("tsn_r18", num_classes=400, num_segments=2)
    load_weights(same, path, source="mmaction2")
    assert outputs_equal(run(same, clip(2)), run(native, clip(2)), atol=1e-5)  # consensus order: fc is linear

    other = build_model("tsn_r18", num_classes=10, num_segments=2)  # fine-tuning: another class count
    report = load_weights(other, path)
    assert report.reinitialised == ["head.fc (classifier: class count differs or not in the file)"]
    frames = clip(2).transpose(1, 2).reshape(-1, 3, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(other.eval().backbone.forward_features(frames), native.backbone.forward_features(frames))

    tsm = build_model("tsm_r18", num_classes=400, num_segments=2)  # a TSN file into TSM: allowed, but said
    report = load_weights(tsm, path)
    assert any("temporal shift differs" in n for n in report.notes)


def test_mmaction2_slowonly(tmp_path):
    native = randomize(build_model("slowonly_r50", num_classes=9, base_channels=8), seed=9)
    state = to_mmaction2(native.state_dict())
    assert state["backbone.layer3.0.conv1.conv.weight"].shape[2] == 3      # 3x1x1 temporal kernel in res4
    path = save(mm_checkpoint_1x(state), tmp_path, "slowonly_r50_4x16.pth")
    model = build_model("slowonly_r50", num_classes=9, base_channels=8)
    load_weights(model, path)
    assert outputs_equal(run(model, clip(4)), run(native, clip(4)))


SLOWFAST = dict(num_classes=5, depth=18, base_channels=16, num_frames=16)  # fast pathway: 2 base channels


def test_mmaction2_slowfast_with_lateral_norm(tmp_path):
    native = randomize(build_model("slowfast_r50", **SLOWFAST), seed=10)
    state = to_mmaction2_slowfast(native.state_dict(), native.backbone.slow.feature_dim, lateral_norm=True)
    assert "backbone.slow_path.layer3_lateral.bn.weight" in state and "backbone.fast_path.conv1.conv.weight" in state
    path = save(mm_checkpoint_1x(state), tmp_path, "slowfast.pth")
    model = build_model("slowfast_r50", **SLOWFAST)
    report = load_weights(model, path)
    assert outputs_equal(run(model, clip(16)), run(native, clip(16)), atol=1e-5)
    assert any("(fast, slow)" in n for n in report.notes)


def test_mmaction2_slowfast_conv_only_laterals(tmp_path):
    native = randomize(build_model("slowfast_r50", **SLOWFAST), seed=11)
    state = to_mmaction2_slowfast(native.state_dict(), native.backbone.slow.feature_dim, lateral_norm=False)
    path = save(mm_checkpoint_0x(state), tmp_path, "slowfast_default.pth")
    model = build_model("slowfast_r50", **SLOWFAST)
    with pytest.raises(WeightsError, match="adapt_laterals=True"):
        load_weights(model, path)
    assert all(isinstance(m.bn, nn.BatchNorm3d) for m in model.modules() if isinstance(m, Lateral))  # untouched

    report = load_weights(model, path, adapt_laterals=True)
    for m in native.modules():  # the native twin: conv-only laterals, same tensors
        if isinstance(m, Lateral):
            m.bn, m.relu = nn.Identity(), nn.Identity()
    native.load_state_dict({k: v for k, v in native.state_dict().items()})
    assert outputs_equal(run(model, clip(16)), run(native, clip(16)), atol=1e-5)
    assert any("conv-only" in n for n in report.notes)


def test_mmaction2_tsm_into_arc_tsm(tmp_path):
    plain = randomize(build_model("tsm_r18", num_classes=6, num_segments=2), seed=12)
    path = save(mm_checkpoint_1x(to_mmaction2(plain.state_dict(), tsm=True)), tmp_path, "tsm.pth")
    arc = build_model("arc_tsm_r18", num_classes=6, num_segments=2)
    report = load_weights(arc, path)
    assert outputs_equal(run(arc, clip(2)), run(plain, clip(2)), atol=1e-5)  # zero We/Wf/Wa: the plain convs
    assert any("ARC layers" in n for n in report.notes)


# -- fineact's own files ---------------------------------------------------------------------------------------------

def test_fineact_lightning_checkpoint_and_safetensors_export(tmp_path):
    from safetensors.torch import save_file

    arc = dict(num_classes=4, num_segments=2, arc_stages=(5,))
    native = randomize(build_model("arc_tsm_r18", **arc), seed=13)
    native.backbone.layer4[0].conv1.embed.weight.data.normal_(0, 0.05)  # trained ARC maps, not zero
    ckpt = {"state_dict": {"model." + k: v for k, v in native.state_dict().items()},
            "hyper_parameters": {"config": {"model": {"name": "arc_tsm_r18"}}, "levels": {}}, "epoch": 3}
    path = save(ckpt, tmp_path, "last.ckpt")
    model = build_model("arc_tsm_r18", **arc)
    assert load_weights(model, path).layout == "fineact"
    assert outputs_equal(run(model, clip(2)), run(native, clip(2)))

    export = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in native.state_dict().items()}, str(export))
    model = build_model("arc_tsm_r18", **arc)
    load_weights(model, export)
    assert outputs_equal(run(model, clip(2)), run(native, clip(2)))


# -- the multi-task network from peer checkpoints --------------------------------------------------------------------

MT = dict(pathway_depth=18, base_channels=8, pathway_clips={"event": (2, 16), "set": (4, 8), "element": (8, 2)})


def test_multitask_pathways_from_mmaction2_and_fineact_checkpoints(tmp_path):
    sources = {level: randomize(build_model("slowonly_r50", num_classes=n, depth=18, base_channels=8, num_frames=f),
                                seed=i)
               for i, (level, n, f) in enumerate((("event", 4, 2), ("set", 14, 4), ("element", 99, 8)))}
    paths = {"event": save(mm_checkpoint_1x(to_mmaction2(sources["event"].state_dict())), tmp_path, "event.pth"),
             "set": save(mm_checkpoint_0x(to_mmaction2(sources["set"].state_dict())), tmp_path, "set.pth"),
             "element": save({"state_dict": {"model." + k: v for k, v in sources["element"].state_dict().items()}},
                             tmp_path, "element.ckpt")}
    model = build_model("hierarchical_multitask", **MT)
    native = build_model("hierarchical_multitask", **MT)
    for level, path in paths.items():
        report = load_pathway_weights(model, level, path)
        assert any(r.startswith("head") for r in report.reinitialised)  # the single-level classifier: not used
        native.load_pathway(level, sources[level].state_dict())
    clips = {level: clip(f, seed=i) for i, (level, (f, _)) in enumerate(MT["pathway_clips"].items())}
    with torch.no_grad():
        ours, theirs = model.eval().forward_pathway_features(clips), native.eval().forward_pathway_features(clips)
    assert outputs_equal(ours, theirs)
    assert all(not p.requires_grad for p in model.pathways.parameters())  # still frozen

    # A whole multi-task checkpoint loads with load_weights; a single-level one is pointed to load_pathway_weights.
    whole = save({k: v for k, v in randomize(native, seed=20).state_dict().items()}, tmp_path, "multitask.pth")
    fresh = build_model("hierarchical_multitask", **MT)
    load_weights(fresh, whole)
    assert outputs_equal(run(fresh, clips), run(native, clips))
    with pytest.raises(WeightsError, match="load_pathway_weights"):
        load_weights(fresh, paths["event"])


# -- errors: nothing is dropped silently -----------------------------------------------------------------------------

def test_unknown_and_missing_backbone_keys_are_listed(tmp_path):
    native = randomize(build_model("tsm_r18", num_classes=6, num_segments=4), seed=14)
    state = to_mmaction2(native.state_dict(), tsm=True)
    state["backbone.layer2.0.non_local_block.g.conv.weight"] = torch.zeros(8, 8, 1, 1)
    del state["backbone.layer4.1.conv2.conv.weight"]
    path = save(mm_checkpoint_1x(state), tmp_path, "broken.pth")
    with pytest.raises(WeightsError) as err:
        load_weights(build_model("tsm_r18", num_classes=6, num_segments=4), path)
    message = str(err.value)
    assert "backbone.layer2.0.non_local_block.g.conv.weight" in message   # the file's own name
    assert "backbone.layer4.1.conv2.weight" in message and "missing" in message and "unexpected" in message

    model = build_model("tsm_r18", num_classes=6, num_segments=4)
    report = load_weights(model, path, strict=False)  # loads what fits, lists the rest
    assert report.missing == ["backbone.layer4.1.conv2.weight"]
    assert report.unexpected == ["backbone.layer2.0.non_local_block.g.conv.weight"]


def test_backbone_shape_mismatch_and_wrong_model_are_errors(tmp_path):
    path = save(to_tsm_official(randomize(build_model("tsm_r18", num_classes=6)).state_dict()), tmp_path, "r18.pth")
    with pytest.raises(WeightsError, match="missing keys: backbone.layer1.2.conv1.weight"):
        load_weights(build_model("tsm_r34", num_classes=6), path)   # ResNet-34 has more blocks
    with pytest.raises(WeightsError, match="shape mismatch keys: backbone.layer1.0.conv1.weight"):
        load_weights(build_model("tsm_r50", num_classes=6), path)
    with pytest.raises(WeightsError, match="shape mismatch keys: backbone.conv1.weight") as err:
        load_weights(build_model("slowonly_r50", num_classes=6, depth=18, base_channels=8), path)  # 2D into 3D
    assert "hint: backbone.conv1.weight is 4-D in the file and 5-D in the model" in str(err.value)

    arc = build_model("arc_tsm_r18", num_classes=6, arc_stages=(5,))
    path = save(arc.state_dict(), tmp_path, "arc.pth")
    with pytest.raises(WeightsError, match="hint: the file has ARC layers the model lacks"):
        load_weights(build_model("tsm_r18", num_classes=6), path)


def test_undetectable_layout_lists_the_candidates(tmp_path):
    path = save({"encoder.blocks.0.attn.qkv.weight": torch.zeros(3, 3)}, tmp_path, "vit.pth")
    with pytest.raises(WeightsError) as err:
        detect_source(path)
    for candidate in ("torchvision", "tsm-official", "mmaction2", "fineact", "encoder.blocks.0.attn.qkv.weight"):
        assert candidate in str(err.value)
    with pytest.raises(WeightsError, match="not in the 'mmaction2' layout"):
        load_weights(build_model("tsm_r18"), path, source="mmaction2")


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_weights(build_model("tsm_r18"), tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot be read"):
        load_weights(build_model("tsm_r18"), bad)
