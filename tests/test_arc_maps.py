"""Capturing the ARC recursion: states, attention vectors, unchanged outputs, and the Fig. 3 / Fig. 6 pictures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fineact.analysis.arc_maps import (attention_layers, capture_arc, paper_state_layer, plot_attention_vectors,
                                       plot_state_maps, record_arc)
from fineact.errors import ModelError
from fineact.models import build_model
from fineact.models.arc import ARCConv, arc_layers

SIZE = 32
T = 2


def randomise_arc(model, seed: int = 0, std: float = 0.05):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in arc_layers(model):
            for conv in [layer.embed, *layer.fuse, *layer.attend]:
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * std)
    return model


@pytest.fixture(scope="module")
def fresh():
    torch.manual_seed(0)
    return build_model("arc_tsm_r18", num_classes=5, num_segments=T).eval()


@pytest.fixture(scope="module")
def trained_like():
    torch.manual_seed(1)
    return randomise_arc(build_model("arc_tsm_r18", num_classes=5, num_segments=T)).eval()


@pytest.fixture(scope="module")
def clip():
    return torch.randn(2, 3, T, SIZE, SIZE, generator=torch.Generator().manual_seed(3))


def test_capture_does_not_change_outputs(trained_like, clip):
    with torch.no_grad():
        plain = trained_like(clip)
        with record_arc(trained_like) as captures:
            recorded = trained_like(clip)
        again = trained_like(clip)  # hooks are gone afterwards
    assert torch.equal(plain, recorded) and torch.equal(plain, again)
    assert len(captures) == len(arc_layers(trained_like))
    assert all(not layer.state_probe._forward_hooks for _, layer in arc_layers(trained_like))


def test_step_one_state_is_the_layer_input(trained_like, clip):
    name = "backbone.layer2.1.conv2"
    layer = dict(trained_like.named_modules())[name]
    seen = []
    handle = layer.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    try:
        cap = capture_arc(trained_like, clip, name)[name]
    finally:
        handle.remove()
    assert cap.num_steps == 4 and len(cap.states) == 4 and cap.steps_recorded == 4
    assert torch.equal(cap.states[0], seen[0])
    assert not torch.equal(cap.states[1], seen[0])  # the state evolves once the attention maps are not zero
    # channel average per clip and frame: (N*T, C, h, w) -> (N, T, h, w)
    x = seen[0]
    expected = x.view(2, T, *x.shape[1:]).mean(2)
    assert cap.state_maps[0].shape == (2, T, x.shape[-2], x.shape[-1])
    torch.testing.assert_close(cap.state_maps[0], expected)
    torch.testing.assert_close(cap.state_map_stack(1)[0], expected[1].numpy())


def test_attention_vectors_zero_when_fresh_nonzero_when_randomised(fresh, trained_like, clip):
    for name, layer in arc_layers(fresh)[:3]:
        cap = capture_arc(fresh, clip, name, keep_states=False)[name]
        assert cap.states == []
        assert len(cap.attention_vectors) == layer.num_steps - 1
        assert all(v.shape == (2, layer.in_channels) for v in cap.attention_vectors)
        assert all(torch.count_nonzero(v) == 0 for v in cap.attention_vectors)
        assert cap.attention_matrix().shape == (3, layer.in_channels)
    name = "backbone.layer3.0.conv1"
    cap = capture_arc(trained_like, clip, name, keep_attention_maps=True)[name]
    assert all(torch.count_nonzero(v) > 0 for v in cap.attention_vectors)
    # the vector is the broadcast attention map averaged over all positions of each clip
    full = cap.attention_maps[1]                                      # (N*T, C, h, w)
    torch.testing.assert_close(cap.attention_vectors[1], full.view(2, T, *full.shape[1:]).mean((1, 3, 4)))


def test_3d_layers_and_layer_selection(clip):
    torch.manual_seed(0)
    model = randomise_arc(build_model("slowonly_r50", depth=18, base_channels=8, num_frames=T, num_classes=5,
                                      arc_stages=(3, 4))).eval()
    with torch.no_grad():
        plain = model(clip)
        with record_arc(model, "backbone.layer3") as captures:
            recorded = model(clip)
    assert torch.equal(plain, recorded)
    assert sorted(captures) == ["backbone.layer3.0.conv1", "backbone.layer3.0.conv2", "backbone.layer3.1.conv1",
                                "backbone.layer3.1.conv2"]
    cap = captures["backbone.layer3.0.conv1"]
    assert cap.dims == 3 and cap.state_maps[0].shape[:2] == (2, T)
    assert cap.attention_vectors[0].shape == (2, cap.in_channels)
    assert paper_state_layer(model) == "backbone.layer2.1.conv2"
    assert attention_layers(model) == ["backbone.layer2.0.conv1", "backbone.layer3.0.conv1"]


def test_selection_errors(fresh):
    with pytest.raises(ModelError, match="no ARC layer 'backbone.layer2.1.conv3'.*Did you mean"):
        capture_arc(fresh, torch.zeros(1, 3, T, SIZE, SIZE), "backbone.layer2.1.conv3")
    with pytest.raises(ModelError, match="has no ARC layers"):
        capture_arc(build_model("tsm_r18", num_classes=5, num_segments=T), torch.zeros(1, 3, T, SIZE, SIZE))


def test_paper_layers(fresh):
    assert paper_state_layer(fresh) == "backbone.layer2.1.conv2"
    assert attention_layers(fresh) == ["backbone.layer2.0.conv1", "backbone.layer3.0.conv1",
                                       "backbone.layer4.0.conv1"]
    assert all(isinstance(dict(fresh.named_modules())[n], ARCConv) for n in attention_layers(fresh))


def test_plots(tmp_path, fresh, trained_like, clip):
    frames = np.full((T, SIZE, SIZE, 3), 90, np.uint8)
    frames[:, 2:10, 2:10] = (255, 0, 0)
    caps = capture_arc(trained_like, clip, attention_layers(trained_like) + [paper_state_layer(trained_like)])
    paths = [plot_attention_vectors({k: caps[k] for k in attention_layers(trained_like)}, tmp_path / "att.png"),
             plot_attention_vectors(capture_arc(fresh, clip, "backbone.layer4.0.conv1")["backbone.layer4.0.conv1"],
                                    tmp_path / "att_zero.png"),
             plot_state_maps(frames, caps[paper_state_layer(trained_like)], tmp_path / "states.png", sample=1)]
    for path in paths:
        with Image.open(path) as image:
            image.load()
            assert image.format == "PNG" and min(image.size) > 200
    with pytest.raises(ValueError, match="frames"):
        plot_state_maps(frames[:1], caps[paper_state_layer(trained_like)], tmp_path / "bad.png")
