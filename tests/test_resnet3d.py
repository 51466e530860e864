"""3D ResNets: published sizes, layout, 2D -> 3D inflation, ARC in 3D mode, bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fineact.analysis.profile import count_macs, count_parameters, profile_by_name
from fineact.errors import ModelError, WeightsError
from fineact.models import ClipSpec, build_model, get_entry
from fineact.models.arc import ARCConv, arc_layers
from fineact.models.resnet import resnet
from fineact.interop.inflate import inflate_resnet2d
from fineact.models.resnet3d import (BasicBlock3d, Bottleneck3d, Recognizer3d, ResNet3d, SlowFast, apply_arc3d,
                                     slowfast, slowonly)


def randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN affine parameters and statistics (fresh BNs are identities and residual gammas zero)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) * 0.4 + 0.2
            m.bias.data = torch.rand(n, generator=g) * 0.4 - 0.2
            m.running_mean.data = torch.rand(n, generator=g) * 0.4 - 0.2
            m.running_var.data = torch.rand(n, generator=g) + 0.5
    return model


# -- published sizes ----------------------------------------------------------------------------------------

def test_slowonly_r50_matches_published_params_and_gmacs():
    result = profile_by_name("slowonly_r50")
    assert result.params == 32_454_096
    assert result.gmacs == pytest.approx(20.87, abs=0.01)
    assert result.inputs == {"clip": [1, 3, 4, 224, 224]}
    assert result.paper["params"] == 32_454_096


def test_slowfast_r50_matches_published_params_and_gmacs():
    with torch.device("meta"):
        model = build_model("slowfast_r50")
    assert count_parameters(model) == 34_480_216
    assert model.clip_specs == {"clip": ClipSpec(32, 2)}  # one dense clip; the slow pathway takes every 8th frame
    # Shapes are all the flop counter needs: count on the meta device (no arithmetic, fast on CPU-only CI).
    macs = count_macs(model, torch.zeros(1, 3, 32, 224, 224, device="meta"))
    assert macs / 1e9 == pytest.approx(27.64, abs=0.01)
    assert get_entry("slowfast_r50").paper["params"] == 34_480_216


def test_slowonly_r50_layout():
    model = build_model("slowonly_r50")
    b = model.backbone
    assert model.clip_specs == {"clip": ClipSpec(4, 16)}
    assert b.conv1.kernel_size == (1, 7, 7) and b.conv1.stride == (1, 2, 2)
    assert b.maxpool.kernel_size == (1, 3, 3) and b.maxpool.stride == (1, 2, 2)
    assert [b.stages()[f"layer{i}"][0].conv1.kernel_size[0] for i in range(1, 5)] == [1, 1, 3, 3]
    assert b.layer3[0].conv1.padding == (1, 0, 0)
    assert all(block.conv2.kernel_size == (1, 3, 3) for s in b.stages().values() for block in s)
    assert all(m.stride[0] == 1 for m in b.modules() if isinstance(m, nn.Conv3d))  # no temporal striding
    assert model.feature_dim == 2048 and model.head.fc.in_features == 2048
    assert model.head.dropout.p == 0.5
    assert 0.005 < model.head.fc.weight.std().item() < 0.015 and model.head.fc.bias.abs().max() == 0
    keys = model.state_dict().keys()
    assert {"backbone.conv1.weight", "backbone.layer2.0.downsample.0.weight", "backbone.layer4.2.bn3.weight",
            "head.fc.weight", "head.fc.bias"} <= set(keys)


def test_slowfast_r50_layout():
    with torch.device("meta"):
        model = build_model("slowfast_r50")
    b = model.backbone
    assert isinstance(b, SlowFast) and b.alpha == 8
    assert b.fast.conv1.kernel_size == (5, 7, 7) and b.fast.conv1.out_channels == 8
    assert [b.fast.stages()[f"layer{i}"][0].conv1.kernel_size[0] for i in range(1, 5)] == [3, 3, 3, 3]
    assert [b.slow.stages()[f"layer{i}"][0].conv1.kernel_size[0] for i in range(1, 5)] == [1, 1, 3, 3]
    # Laterals after the stem and res2..res4: fast C -> 2C, (5,1,1) stride (8,1,1) padding (2,0,0), BN, ReLU.
    assert [lat.conv.in_channels for lat in b.laterals] == [8, 32, 64, 128]
    assert [lat.conv.out_channels for lat in b.laterals] == [16, 64, 128, 256]
    for lat in b.laterals:
        assert lat.conv.kernel_size == (5, 1, 1) and lat.conv.stride == (8, 1, 1) and lat.conv.padding == (2, 0, 0)
        assert isinstance(lat.bn, nn.BatchNorm3d)
    # The slow stages read their own channels plus the lateral ones.
    assert [b.slow.stages()[f"layer{i}"][0].conv1.in_channels for i in range(1, 5)] == [80, 320, 640, 1280]
    assert model.feature_dim == 2048 + 256


# -- forward on tiny inputs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [18, 50])
def test_slowonly_small_forward_backward(depth):
    model = slowonly(depth=depth, num_classes=5, base_channels=8)
    clip = torch.randn(2, 3, 4, 32, 32)
    assert model(clip).shape == (2, 5)
    assert model.forward_features(clip).shape == (2, model.feature_dim)
    assert model.forward_feature_map(clip).shape[2] == 4  # T is kept
    assert model({"clip": clip}).shape == (2, 5)           # a one-pathway dict is accepted too
    model(clip).sum().backward()
    assert model.backbone.conv1.weight.grad is not None


def test_slowfast_small_forward_and_frame_split():
    model = slowfast(num_classes=3, base_channels=16, num_frames=8, frame_interval=4, alpha=4)
    assert model.clip_specs == {"clip": ClipSpec(8, 4)}
    clip = torch.randn(2, 3, 8, 32, 32)
    assert model(clip).shape == (2, 3)
    slow, fast = model.backbone.split(clip)
    assert torch.equal(slow, clip[:, :, ::4]) and fast is clip
    slow_map, fast_map = model.forward_feature_map(clip)
    assert slow_map.shape[2] == 2 and fast_map.shape[2] == 8
    assert model.feature_dim == 16 * 8 * 4 + 2 * 8 * 4  # slow 512 + fast 64 (base 16 // beta_inv 8 = 2)
    assert model.forward_features(clip).shape == (2, 576)


# -- 2D -> 3D inflation --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def resnet50_2d(tmp_path_factory):
    torch.manual_seed(0)
    net = randomise_bn(resnet(50)).eval()
    path = tmp_path_factory.mktemp("weights") / "resnet50_imagenet.pth"
    torch.save(net.state_dict(), path)
    return net, path


def test_inflated_slowonly_equals_2d_resnet_on_identical_frames(resnet50_2d):
    """Centre inflation: T identical frames give exactly the 2D network's pooled feature."""
    net2d, path = resnet50_2d
    model = build_model("slowonly_r50", pretrained=str(path), inflate="center").eval()
    report = model.load_report  # the 2D ImageNet classifier is not used; the model's keeps its initialisation
    assert "fc.weight" in report.unused and any(r.startswith("head.fc (classifier") for r in report.reinitialised)
    image = torch.randn(1, 3, 64, 64)
    clip = image[:, :, None].expand(1, 3, 4, 64, 64).contiguous()
    with torch.no_grad():
        diff = (model.forward_features(clip) - net2d.forward_features(image)).abs().max().item()
    assert diff < 1e-4


def test_mean_inflation_equals_2d_resnet_away_from_clip_ends(resnet50_2d):
    """I3D mean inflation (the default): each temporal tap holds w/k. Identical frames reproduce the 2D map
    wherever no temporal window reaches past the clip (9 temporal convs in res4+res5: frames 9..T-10); at the
    ends the zero temporal padding removes taps, so the pooled feature of a short clip differs."""
    net2d, path = resnet50_2d
    model = build_model("slowonly_r50", pretrained=str(path)).eval()
    w2d = net2d.layer3[0].conv1.weight
    w3d = model.backbone.layer3[0].conv1.weight
    assert w3d.shape[2] == 3 and torch.allclose(w3d[:, :, 0, :, :], w2d / 3) and torch.equal(w3d[:, :, 0], w3d[:, :, 2])
    assert torch.equal(model.backbone.layer3[0].bn1.running_var, net2d.layer3[0].bn1.running_var)
    image = torch.randn(1, 3, 64, 64)
    clip = image[:, :, None].expand(1, 3, 19, 64, 64).contiguous()
    with torch.no_grad():
        fmap3d, fmap2d = model.forward_feature_map(clip), net2d.forward_feature_map(image)
    assert (fmap3d[:, :, 9] - fmap2d).abs().max().item() < 1e-4
    assert (fmap3d[:, :, 0] - fmap2d).abs().max().item() > 1e-3  # the clip's first frame feels the padding


def test_inflated_slowfast_slow_pathway_equals_slowonly(resnet50_2d):
    """Lateral input channels of the slow pathway are inflated as zeros: it starts out as the SlowOnly."""
    _, path = resnet50_2d
    sf = build_model("slowfast_r50", pretrained=str(path)).eval()
    so = build_model("slowonly_r50", pretrained=str(path)).eval()
    report = sf.load_report
    assert any(r.startswith("backbone.fast (fast pathway") for r in report.reinitialised)
    assert any(r.startswith("backbone.laterals (lateral") for r in report.reinitialised)
    assert "backbone.slow.layer1.0.conv1.weight" in report.loaded
    assert sf.backbone.slow.layer2[0].conv1.weight[:, 256:].abs().max() == 0
    clip = torch.randn(1, 3, 16, 32, 32)
    with torch.no_grad():
        slow_features = sf.forward_features(clip)[:, :2048]
        expected = so.forward_features(clip[:, :, ::8])
    assert (slow_features - expected).abs().max().item() < 1e-4


def test_inflation_is_strict(tmp_path, resnet50_2d):
    net2d, _ = resnet50_2d
    state = net2d.state_dict()
    bad = dict(state)
    bad["layer1.0.conv9.weight"] = bad.pop("layer1.0.conv1.weight")
    path = tmp_path / "bad.pth"
    torch.save(bad, path)
    with pytest.raises(WeightsError) as err:
        build_model("slowonly_r50", pretrained=str(path))
    assert "missing keys: layer1.0.conv1.weight" in str(err.value)
    assert "unexpected keys: layer1.0.conv9.weight" in str(err.value)
    assert str(path) in str(err.value)
    with pytest.raises(WeightsError, match="shape mismatch"):
        inflate_resnet2d(ResNet3d(50, base_channels=8), state)
    with pytest.raises(WeightsError, match="not found"):
        build_model("slowonly_r50", pretrained=str(tmp_path / "nothing.pth"))
    with pytest.raises(ModelError, match="inflation mode"):
        inflate_resnet2d(ResNet3d(50), state, mode="random")


# -- ARC in 3D mode ----------------------------------------------------------------------------------------

def _arc_cost(model: nn.Module, n: int) -> int:
    total = 0
    for _, layer in arc_layers(model):
        cin, cout = layer.in_channels, layer.out_channels
        total += cin * cin + 2 * cin * cout * (n - 1) // n  # Cin^2 + 2·Cin·Cout·(n-1)/n
    return total


@pytest.mark.parametrize("build", [
    lambda: slowonly(depth=50, num_classes=4, base_channels=8),
    lambda: slowonly(depth=18, num_classes=4, base_channels=8),
    lambda: slowfast(depth=50, num_classes=4, base_channels=32, num_frames=8, alpha=4),
], ids=["slowonly_bottleneck", "slowonly_basic", "slowfast"])
def test_arc_zero_init_keeps_3d_outputs_and_adds_expected_parameters(build):
    torch.manual_seed(0)
    model = randomise_bn(build()).eval()
    frames = model.clip_specs["clip"].num_frames
    clip = torch.randn(2, 3, frames, 32, 32)
    with torch.no_grad():
        before = model(clip)
    params_before = count_parameters(model)
    n = 4
    apply_arc3d(model, stages=(2, 3, 4, 5), num_steps=n)  # res3..res5 start with stride-2 3x3 convs
    layers = arc_layers(model)
    assert layers and all(layer.dims == 3 for _, layer in layers)
    assert any(layer.parts[0].conv.stride == (1, 2, 2) for _, layer in layers)
    per_block = 2 if isinstance(model.backbone, ResNet3d) and model.backbone.block is BasicBlock3d else 1
    pathways = [m for m in model.modules() if isinstance(m, ResNet3d)]
    blocks = sum(len(stage) for p in pathways for stage in p.stages().values())
    assert len(layers) == per_block * blocks
    assert count_parameters(model) - params_before == _arc_cost(model, n)
    with torch.no_grad():
        after = model(clip)
    assert before.abs().max() > 1e-3
    assert torch.allclose(before, after, atol=1e-6)
    # Once We/Wf/Wa move, the recursion changes the output and trains through stride-2 layers.
    model.train()
    for _, layer in layers:
        nn.init.normal_(layer.embed.weight, std=0.05)
    model(clip).sum().backward()
    assert all(layer.embed.weight.grad is not None for _, layer in layers)


def test_arc_options_on_registered_models():
    plain = build_model("slowonly_r50", depth=50, base_channels=8)
    model = build_model("slowonly_r50", depth=50, base_channels=8, arc_stages=(3, 4, 5), arc_steps=4)
    assert count_parameters(model) - count_parameters(plain) == _arc_cost(model, 4)
    assert isinstance(model.backbone.layer2[0].conv2, ARCConv)
    assert not isinstance(model.backbone.layer1[0].conv2, ARCConv)
    assert model.arc_config == {"stages": (3, 4, 5), "steps": 4, "pool": "mean"}
    # The full-size figure matches ARC-TSM-R50's increase (same 3x3 convs): 3,112,960 parameters.
    with torch.device("meta"):
        full = build_model("slowonly_r50", arc_stages=(3, 4, 5))
    assert count_parameters(full) - 32_454_096 == 3_112_960
    fast = build_model("slowfast_r50", base_channels=32, num_frames=8, alpha=4, arc_stages=(5,))
    assert isinstance(fast.backbone.fast.layer4[0].conv2, ARCConv)
    assert isinstance(fast.backbone.slow.layer4[0].conv2, ARCConv)


# -- bad input ---------------------------------------------------------------------------------------------

def test_bad_clips_raise_model_errors():
    model = slowonly(depth=18, num_classes=3, base_channels=8)
    with pytest.raises(ModelError, match="rank 5"):
        model(torch.randn(2, 3, 32, 32))
    with pytest.raises(ModelError, match="channels"):
        model(torch.randn(2, 4, 4, 32, 32))
    with pytest.raises(ModelError, match="float"):
        model(torch.zeros(2, 3, 4, 32, 32, dtype=torch.uint8))
    with pytest.raises(ModelError, match="'clip'"):
        model({"fast": torch.randn(1, 3, 4, 32, 32)})
    fast = slowfast(num_classes=3, base_channels=16, num_frames=8, alpha=4)
    with pytest.raises(ModelError, match="multiple of alpha=4"):
        fast(torch.randn(1, 3, 6, 32, 32))


def test_bad_arguments_raise_model_errors():
    with pytest.raises(ModelError, match="depth"):
        build_model("slowonly_r50", depth=42)
    with pytest.raises(ModelError, match="beta_inv"):
        build_model("slowfast_r50", base_channels=4)
    with pytest.raises(ModelError, match="multiple of alpha"):
        build_model("slowfast_r50", num_frames=12)
    with pytest.raises(ModelError, match="frames"):
        build_model("slowonly_r50", frams=4)
    assert isinstance(build_model("slowonly_r50", depth=34, base_channels=8), Recognizer3d)
    assert Bottleneck3d.arc_targets == (("conv2", "bn2", True),)
    assert BasicBlock3d.arc_targets == (("conv1", "bn1", True), ("conv2", "bn2", False))
