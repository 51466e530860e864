"""2D ResNet with torchvision keys, strict pretrained loading, the temporal shift and the TSM/TSN heads."""

import pytest
import torch

from fineact.errors import ModelError, WeightsError
from fineact.models import build_model
from fineact.models.resnet import resnet
from fineact.models.tsm import TemporalShift

from reference_impls import torchvision_resnet50_features


def randomise_bn_statistics(model, seed=0):
    """Give every BN non-trivial affine parameters and running stats, as a trained network has."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            c = m.num_features
            m.weight.data = 0.5 + torch.rand(c, generator=g)
            m.bias.data = 0.1 * torch.randn(c, generator=g)
            m.running_mean = 0.1 * torch.randn(c, generator=g)
            m.running_var = 0.5 + torch.rand(c, generator=g)
    return model


def test_resnet_state_dict_keys_are_torchvisions():
    keys = set(resnet(50).state_dict())
    for key in ["conv1.weight", "bn1.running_var", "layer1.0.conv3.weight", "layer1.0.downsample.0.weight",
                "layer1.0.downsample.1.num_batches_tracked", "layer3.5.bn2.bias", "layer4.2.conv3.weight",
                "fc.weight", "fc.bias"]:
        assert key in keys
    assert not any(".shift" in k for k in keys)  # the shift slot has no parameters
    keys18 = set(resnet(18).state_dict())
    assert "layer2.0.downsample.0.weight" in keys18 and "layer1.0.downsample.0.weight" not in keys18
    assert sum(p.numel() for p in resnet(18).parameters()) == 11_689_512   # torchvision's published sizes
    assert sum(p.numel() for p in resnet(50).parameters()) == 25_557_032
    assert sum(p.numel() for p in resnet(101).parameters()) == 44_549_160


def test_unshifted_resnet50_features_equal_torchvision_layout_reference(tmp_path):
    source = randomise_bn_statistics(resnet(50), seed=1)
    state = source.state_dict()
    path = tmp_path / "resnet50_imagenet.pth"
    torch.save(state, path)
    model = build_model("tsn_r50", num_classes=1000, num_segments=2, pretrained=str(path)).eval()
    clip = torch.randn(1, 3, 2, 64, 64)
    ours = model.backbone.forward_features(clip[:, :, 0])
    reference = torchvision_resnet50_features(state, clip[:, :, 0])
    assert (ours - reference).abs().max().item() < 1e-5
    # A matching class count loads the ImageNet classifier too.
    assert torch.equal(model.head.fc.weight, state["fc.weight"])


def test_pretrained_classifier_is_reinitialised_when_class_count_differs(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(resnet(18).state_dict(), path)
    model = build_model("tsm_r18", num_classes=7, pretrained=str(path))
    assert "head.fc (classifier: class count differs or not in the file)" in model.load_report.reinitialised
    assert model.head.fc.weight.shape == (7, 512)
    assert model.head.fc.weight.std().item() < 0.01 and model.head.fc.bias.abs().max().item() == 0


def test_pretrained_with_wrong_keys_lists_missing_and_unexpected(tmp_path):
    state = resnet(18).state_dict()
    state["layer1.0.conv9.weight"] = torch.zeros(1)
    del state["layer1.0.conv1.weight"]
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as info:
        build_model("tsm_r18", pretrained=str(path))
    message = str(info.value)
    # The model's names for the file's keys (the recognizer holds the ResNet as `backbone`).
    assert "missing keys: backbone.layer1.0.conv1.weight" in message
    assert "unexpected keys: backbone.layer1.0.conv9.weight" in message
    assert str(path) in message


def test_pretrained_of_another_depth_reports_shape_mismatch(tmp_path):
    path = tmp_path / "r34.pth"
    torch.save(resnet(18).state_dict(), path)  # ResNet-18 weights offered to a ResNet-50
    with pytest.raises(WeightsError, match="shape mismatch|missing"):
        build_model("tsm_r50", pretrained=str(path))


def test_unreadable_weights_file_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot be read"):
        build_model("tsm_r18", pretrained=str(path))
    with pytest.raises(WeightsError, match="not found"):
        build_model("tsm_r18", pretrained=str(tmp_path / "absent.pth"))


def test_temporal_shift_moves_one_eighth_each_way_with_zero_ends():
    n, t, c = 2, 4, 16
    x = torch.arange(n * t * c, dtype=torch.float32).view(n * t, c, 1, 1) + 1
    out = TemporalShift(t, shift_div=8)(x).view(n, t, c)
    ref = x.view(n, t, c)
    fold = c // 8
    assert torch.equal(out[:, :-1, :fold], ref[:, 1:, :fold])            # channels [0, fold): frame t+1
    assert torch.equal(out[:, -1, :fold], torch.zeros(n, fold))           # last frame: zero-filled
    assert torch.equal(out[:, 1:, fold:2 * fold], ref[:, :-1, fold:2 * fold])  # [fold, 2fold): frame t-1
    assert torch.equal(out[:, 0, fold:2 * fold], torch.zeros(n, fold))
    assert torch.equal(out[:, :, 2 * fold:], ref[:, :, 2 * fold:])        # the rest unchanged


def _shift_by_rolling(x, t, fold):
    """An independent statement of the shift: roll whole frames, then zero the frame that wrapped around."""
    v = x.reshape(-1, t, *x.shape[1:])
    ahead = torch.roll(v[:, :, :fold], shifts=-1, dims=1)
    ahead[:, -1] = 0
    behind = torch.roll(v[:, :, fold:2 * fold], shifts=1, dims=1)
    behind[:, 0] = 0
    return torch.cat((ahead, behind, v[:, :, 2 * fold:]), dim=2).reshape(x.shape)


@pytest.mark.parametrize("t, c", [(4, 16), (3, 12), (1, 8), (2, 5)])  # 5 channels: fold 0, no shift
def test_temporal_shift_values_gradient_and_traced_form_agree(t, c):
    shift = TemporalShift(t, shift_div=8)
    x = torch.randn(2 * t, c, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.equal(shift(x), _shift_by_rolling(x, t, c // 8))
    assert torch.autograd.gradcheck(shift, (x,))
    traced = torch.jit.trace(shift, x.detach())               # the concatenation form export uses
    assert torch.equal(traced(x.detach()), shift(x).detach())


def test_temporal_shift_keeps_channels_last_both_ways():
    shift = TemporalShift(4, shift_div=8)
    x = torch.randn(8, 16, 5, 5).contiguous(memory_format=torch.channels_last).requires_grad_()
    out = shift(x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(out)
    out.backward(grad)
    assert x.grad.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out.detach(), _shift_by_rolling(x.detach().contiguous(), 4, 2))


def test_shift_placement_every_block_and_every_second_for_resnet101():
    r50 = build_model("tsm_r50")
    assert all(isinstance(b.shift, TemporalShift) for s in r50.backbone.stages().values() for b in s)
    r101 = build_model("tsm_r101")
    for stage in r101.backbone.stages().values():
        for i, block in enumerate(stage):
            assert isinstance(block.shift, TemporalShift) == (i % 2 == 0)
    tsn = build_model("tsn_r50")
    assert not any(isinstance(m, TemporalShift) for m in tsn.modules())


def test_shift_is_on_the_residual_branch_only():
    model = build_model("tsm_r18", num_segments=4).eval()
    block = model.backbone.layer1[0]
    x = torch.rand(4, 64, 8, 8)
    shifted_branch = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(block.shift(x))))))
    assert torch.allclose(block(x), torch.relu(shifted_branch + x), atol=1e-6)  # shortcut takes unshifted x


def test_consensus_head_averages_segment_logits_and_is_initialised_small():
    model = build_model("tsm_r18", num_classes=5, num_segments=4).eval()
    fc = model.head.fc
    assert fc.weight.std().item() == pytest.approx(0.001, rel=0.2) and fc.bias.abs().sum().item() == 0
    clip = torch.randn(2, 3, 4, 32, 32)
    frames = clip.transpose(1, 2).reshape(8, 3, 32, 32)
    per_frame = fc(model.backbone.forward_features(frames)).view(2, 4, 5)
    assert torch.allclose(model(clip), per_frame.mean(1), atol=1e-6)
    # T = 2 * num_segments: two clips of the same video, averaged (twice-sampling)
    assert model(torch.randn(2, 3, 8, 32, 32)).shape == (2, 5)


@pytest.mark.parametrize("bad_shape, match", [((3, 8, 32, 32), "rank 5"), ((1, 3, 6, 32, 32), "multiple of"),
                                              ((1, 1, 8, 32, 32), "channels")])
def test_bad_clips_are_clear_errors(bad_shape, match):
    model = build_model("tsm_r18")
    with pytest.raises(ModelError, match=match):
        model(torch.zeros(bad_shape))


def test_integer_clip_is_rejected():
    with pytest.raises(ModelError, match="float"):
        build_model("tsn_r18")(torch.zeros(1, 3, 8, 32, 32, dtype=torch.uint8))


@pytest.mark.parametrize("kwargs, match", [({"num_segments": 0}, "num_segments"), ({"frame_interval": 0}, "frame_interval")])
def test_impossible_clip_arguments_are_refused(kwargs, match):
    with pytest.raises(ModelError, match=match):
        build_model("tsm_r18", **kwargs)
