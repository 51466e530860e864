"""The hierarchical multi-task network (seed 000) and the SlowFast multi-task baseline."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fineact.analysis.profile import count_parameters, profile_by_name
from fineact.errors import ModelError, WeightsError
from fineact.models import ARCConv, ClipSpec, build_model
from fineact.models.multitask import HierarchicalMultiTask, default_loss_weights, level_loss
from fineact.models.resnet3d import ResNet3d, slowonly

TINY = dict(pathway_depth=18, base_channels=8)  # CPU-sized pathways
SIZE = 32


def randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) * 0.4 + 0.2
            m.bias.data = torch.rand(n, generator=g) * 0.4 - 0.2
    return model


def clips_for(model, batch: int = 2) -> dict[str, torch.Tensor]:
    return {name: torch.randn(batch, 3, spec.num_frames, SIZE, SIZE) for name, spec in model.clip_specs.items()}


def targets_for(model, batch: int = 2) -> dict[str, torch.Tensor]:
    return {level: torch.randint(0, n, (batch,)) for level, n in model.levels.items()}


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict[str, torch.Tensor], module: nn.Module) -> set[str]:
    return {k for k, v in module.state_dict().items() if not torch.equal(before[k], v)}


def sgd_step(model: nn.Module, clips, targets) -> None:
    optimiser = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    total, _ = model.loss(model(clips), targets)
    optimiser.zero_grad()
    total.backward()
    optimiser.step()


# -- structure ---------------------------------------------------------------------------------------------

def test_paper_defaults():
    with torch.device("meta"):  # full size, shapes only: no memory or init time spent on 99 M parameters
        model = build_model("hierarchical_multitask")
    assert model.levels == {"event": 4, "set": 14, "element": 99}
    assert model.clip_specs == {"event": ClipSpec(4, 16), "set": ClipSpec(8, 8), "element": ClipSpec(32, 2)}
    assert all(spec.span == 64 for spec in model.clip_specs.values())  # one 64-frame window serves all three
    assert [enc[0].out_features for enc in model.encoders.values()] == [128, 256, 1024]
    assert model.fusion[0].in_features == 1408 and model.fusion[0].out_features == 1024
    assert isinstance(model.encoders["event"][1], nn.ReLU) and isinstance(model.encoders["event"][2], nn.Dropout)
    assert {k: h.out_features for k, h in model.heads.items()} == {"event": 4, "set": 14, "element": 99}
    assert model.loss_weights == {"event": 1.0, "set": 2.0, "element": 4.0}
    assert all(isinstance(p.backbone, ResNet3d) and p.feature_dim == 2048 for p in model.pathways.values())
    # Three SlowOnly-R50 backbones (31,634,496 each) + encoders + fusion + heads.
    head_free = 3 * 31_634_496
    joint = (2048 * 128 + 128) + (2048 * 256 + 256) + (2048 * 1024 + 1024) + (1408 * 1024 + 1024) \
        + 1024 * 117 + 117
    assert count_parameters(model) == head_free + joint
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == joint  # frozen pathways
    t16 = build_model("hierarchical_multitask", set_frames=16, set_interval=4, **TINY)
    assert t16.clip_specs["set"] == ClipSpec(16, 4)


def test_forward_outputs_one_logit_tensor_per_level():
    model = build_model("hierarchical_multitask", **TINY).eval()
    clips = clips_for(model)
    with torch.no_grad():
        out = model(clips)
        features = model.forward_pathway_features(clips)
        again = model.forward_from_features(features)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"event": (2, 4), "set": (2, 14), "element": (2, 99)}
    assert {k: tuple(v.shape) for k, v in features.items()} == {k: (2, 64) for k in ("event", "set", "element")}
    assert all(torch.equal(out[k], again[k]) for k in out)
    assert model.forward_features(clips).shape == (2, model.feature_dim) and model.feature_dim == 1024


# -- the 1 : 2 : 4 loss --------------------------------------------------------------------------------------

def test_loss_is_one_two_four_weighted_cross_entropy():
    model = build_model("hierarchical_multitask", **TINY)
    torch.manual_seed(1)
    outputs = {level: torch.randn(5, n) for level, n in model.levels.items()}
    targets = {level: torch.randint(0, n, (5,)) for level, n in model.levels.items()}

    def ce(logits, target):  # -s_p + log sum_j exp(s_j), averaged over the batch (eq. 1)
        return (-logits.gather(1, target[:, None]).squeeze(1) + logits.exp().sum(1).log()).mean()

    by_hand = 1 * ce(outputs["event"], targets["event"]) + 2 * ce(outputs["set"], targets["set"]) \
        + 4 * ce(outputs["element"], targets["element"])
    total, per_level = model.loss(outputs, targets)
    assert torch.allclose(total, by_hand, atol=1e-5)
    assert torch.allclose(per_level["set"], ce(outputs["set"], targets["set"]), atol=1e-6)


def test_loss_weights_are_configurable_for_any_number_of_levels():
    assert default_loss_weights(["a", "b", "c", "d"]) == {"a": 1.0, "b": 2.0, "c": 4.0, "d": 8.0}
    outputs = {"coarse": torch.randn(3, 2), "fine": torch.randn(3, 7)}
    targets = {"coarse": torch.tensor([0, 1, 1]), "fine": torch.tensor([6, 0, 3])}
    total, _ = level_loss(outputs, targets, {"coarse": 0.5, "fine": 3.0})
    expected = 0.5 * F.cross_entropy(outputs["coarse"], targets["coarse"]) \
        + 3.0 * F.cross_entropy(outputs["fine"], targets["fine"])
    assert torch.allclose(total, expected)
    with pytest.raises(ModelError, match="lack level"):
        level_loss(outputs, {"coarse": targets["coarse"]}, {"coarse": 1.0, "fine": 2.0})
    with pytest.raises(ModelError, match="integer class indices"):
        level_loss(outputs, {"coarse": torch.zeros(3), "fine": targets["fine"]}, {"coarse": 1.0, "fine": 2.0})
    with pytest.raises(ModelError, match="one weight per level"):
        build_model("hierarchical_multitask", loss_weights={"event": 1.0}, **TINY)


# -- frozen (the paper's second stage) vs end-to-end (its future work) ---------------------------------------

def test_frozen_pathways_train_only_encoders_fusion_and_heads():
    torch.manual_seed(0)
    model = randomise_bn(build_model("hierarchical_multitask", **TINY))
    model.train()
    assert not any(m.training for m in model.pathways.modules())  # BN statistics stay put
    assert all(m.training for m in model.encoders.modules())
    before = snapshot(model)
    clips, targets = clips_for(model), targets_for(model)
    features = model.forward_pathway_features(clips)
    assert not any(f.requires_grad for f in features.values())
    sgd_step(model, clips, targets)
    moved = changed(before, model)
    assert not any(k.startswith("pathways.") for k in moved)
    trainable = {k for k in model.state_dict() if k.startswith(("encoders.", "fusion.", "heads."))}
    assert moved == trainable


def test_end_to_end_training_changes_every_weight():
    torch.manual_seed(0)
    model = randomise_bn(build_model("hierarchical_multitask", freeze_pathways=False, **TINY))
    model.train()
    assert all(m.training for m in model.pathways.modules())
    before = snapshot(model)
    sgd_step(model, clips_for(model), targets_for(model))
    unchanged = set(model.state_dict()) - changed(before, model)
    # Everything moves (weights, and BN running statistics), except BN step counters.
    assert {k for k in unchanged if not k.endswith("num_batches_tracked")} == set()
    model.set_pathways_frozen(True)
    assert not any(p.requires_grad for p in model.pathways.parameters())


# -- pathway checkpoints ---------------------------------------------------------------------------------------

def _single_level(num_classes: int, frames: int, interval: int):
    torch.manual_seed(3)
    return randomise_bn(slowonly(depth=18, num_classes=num_classes, num_frames=frames, frame_interval=interval,
                                 base_channels=8)).eval()


def test_load_pathway_from_lightning_checkpoint(tmp_path):
    single = _single_level(14, 8, 8)
    path = tmp_path / "set.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in single.state_dict().items()}, "epoch": 3}, path)
    model = build_model("hierarchical_multitask", pathway_checkpoints={"set": str(path)}, **TINY).eval()
    report = model.load_reports["set"]
    assert "backbone.conv1.weight" in report.loaded
    assert any("head" in r for r in report.reinitialised)  # the single-level classifier is not used, and said so
    clip = torch.randn(1, 3, 8, SIZE, SIZE)
    with torch.no_grad():
        assert torch.allclose(model.forward_pathway_features({**clips_for(model, 1), "set": clip})["set"],
                              single.forward_features(clip), atol=1e-6)
    # A plain state dict (as saved by torch.save(model.state_dict())) loads too.
    event = _single_level(4, 4, 16)
    model.load_pathway("event", event.state_dict())
    assert not any(p.requires_grad for p in model.pathways.parameters())


def test_load_pathway_is_strict(tmp_path):
    model = build_model("hierarchical_multitask", **TINY)
    state = _single_level(99, 32, 2).state_dict()
    state["backbone.layer1.0.conv7.weight"] = state.pop("backbone.layer1.0.conv1.weight")
    with pytest.raises(WeightsError) as err:
        model.load_pathway("element", state)
    text = str(err.value)
    assert "pathway 'element'" in text
    assert "missing keys: backbone.layer1.0.conv1.weight" in text
    assert "unexpected keys: backbone.layer1.0.conv7.weight" in text
    wider = slowonly(depth=18, num_classes=99, base_channels=16).state_dict()
    with pytest.raises(WeightsError, match="shape mismatch"):
        model.load_pathway("element", wider)
    with pytest.raises(ModelError, match="no pathway 'elements'"):
        model.load_pathway("elements", wider)
    with pytest.raises(WeightsError, match="not found"):
        model.load_pathway("element", tmp_path / "missing.pth")


# -- bad input ---------------------------------------------------------------------------------------------

def test_bad_inputs_name_what_was_expected():
    model = build_model("hierarchical_multitask", **TINY)
    clips = clips_for(model, 1)
    with pytest.raises(ModelError) as err:
        model({"event": clips["event"], "set": clips["set"]})
    assert "['element']" in str(err.value) and "['event', 'set', 'element']" in str(err.value)
    with pytest.raises(ModelError, match="rank 5"):
        model({**clips, "set": clips["set"][:, :, 0]})
    with pytest.raises(ModelError, match="expected a dict"):
        model(clips["event"])
    with pytest.raises(ModelError, match=r"must be \(N, 64\)"):
        model.forward_from_features({k: torch.randn(1, 32) for k in clips})
    with pytest.raises(ModelError, match="takes levels as"):
        build_model("hierarchical_multitask", levels=99)
    with pytest.raises(ModelError, match="encoder_dims"):
        build_model("hierarchical_multitask", pathway_clips={"coarse": (4, 16), "fine": (16, 4)}, **TINY)


def test_custom_hierarchy_and_pathways():
    model = build_model("hierarchical_multitask", levels={"coarse": 3, "fine": 9},
                        pathway_clips={"slow": (2, 8), "fast": (8, 2)}, encoder_dims={"slow": 16, "fast": 32},
                        fused_dim=24, **TINY)
    assert model.clip_specs == {"slow": ClipSpec(2, 8), "fast": ClipSpec(8, 2)}
    assert model.loss_weights == {"coarse": 1.0, "fine": 2.0}
    out = model(clips_for(model))
    assert {k: v.shape[1] for k, v in out.items()} == {"coarse": 3, "fine": 9}
    # Any module with forward_features/feature_dim can be a pathway, given its clip spec.
    direct = HierarchicalMultiTask({"only": ResNet3d(18, 8)}, {"a": 2}, encoder_dims={"only": 8}, fused_dim=8,
                                   clip_specs={"only": ClipSpec(4, 4)})
    assert direct({"only": torch.randn(1, 3, 4, SIZE, SIZE)})["a"].shape == (1, 2)
    with pytest.raises(ModelError, match="clip_specs"):
        HierarchicalMultiTask({"only": ResNet3d(18, 8)}, {"a": 2}, encoder_dims={"only": 8})


def test_arc_pathways_follow_the_freeze_flag():
    model = build_model("hierarchical_multitask", arc_stages=(5,), **TINY)
    assert model.arc_config["stages"] == (5,)
    assert not any(p.requires_grad for p in model.pathways.parameters())
    decorated = [n for n, m in model.named_modules() if isinstance(m, ARCConv)]
    # ResNet3d-18 pathways: both 3x3 convs of res5's 2 blocks, in each of the 3 pathways.
    assert len(decorated) == 3 * 2 * 2 and all(".layer4." in n for n in decorated)
    end_to_end = build_model("hierarchical_multitask", arc_stages=(5,), freeze_pathways=False, **TINY)
    assert all(p.requires_grad for p in end_to_end.parameters())


def test_profile_multitask_by_name():
    result = profile_by_name("hierarchical_multitask", size=SIZE, **TINY)
    assert result.inputs == {"event": [1, 3, 4, SIZE, SIZE], "set": [1, 3, 8, SIZE, SIZE],
                             "element": [1, 3, 32, SIZE, SIZE]}
    assert result.gmacs > 0


# -- the SlowFast multi-task baseline ----------------------------------------------------------------------------

def test_slowfast_multitask_baseline(tmp_path):
    with torch.device("meta"):
        full = build_model("slowfast_multitask")
    # SlowFast-R50 without its 400-class fc (34,480,216 - 922,000) + three classifiers on 2304 features.
    assert count_parameters(full) == 34_480_216 - (2304 * 400 + 400) + 2304 * 117 + 117
    assert full.clip_specs == {"clip": ClipSpec(32, 2)}
    model = build_model("slowfast_multitask", base_channels=16, num_frames=8, alpha=4)
    clip = torch.randn(2, 3, 8, SIZE, SIZE)
    out = model(clip)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"event": (2, 4), "set": (2, 14), "element": (2, 99)}
    targets = {level: torch.randint(0, n, (2,)) for level, n in model.levels.items()}
    total, per_level = model.loss(out, targets)
    assert torch.allclose(total, per_level["event"] + 2 * per_level["set"] + 4 * per_level["element"])
    total.backward()
    # The backbone of a single-level SlowFast checkpoint loads; its classifier is not used.
    single = build_model("slowfast_r50", num_classes=99, base_channels=16, num_frames=8, alpha=4)
    path = tmp_path / "slowfast_element.pth"
    torch.save(single.state_dict(), path)
    loaded = build_model("slowfast_multitask", base_channels=16, num_frames=8, alpha=4,
                         pretrained_backbone=str(path)).eval()
    with torch.no_grad():
        assert torch.allclose(loaded.forward_features(clip), single.eval().forward_features(clip), atol=1e-6)
    assert any("head" in r for r in loaded.load_report.reinitialised)


def test_imagenet_weights_inflate_into_every_pathway_after_arc(tmp_path):
    from fineact.models.resnet import resnet

    net2d = resnet(18)
    path = tmp_path / "r18.pth"
    torch.save(net2d.state_dict(), path)
    model = build_model("hierarchical_multitask", levels={"event": 4}, pathway_clips={"event": (2, 16)},
                        pathway_depth=18, pretrained=str(path), arc_stages=(5,))
    pathway = model.pathways["event"].backbone
    w2d, w3d = net2d.layer3[0].conv1.weight, pathway.layer3[0].conv1.weight  # res4: temporal kernel 3
    assert torch.allclose(w3d, w2d.unsqueeze(2).expand_as(w3d) / 3)
    parts = torch.cat([p.conv.weight for p in pathway.layer4[0].conv1.parts])  # ARC on res5, split from the file
    assert torch.allclose(parts[:, :, 1], net2d.layer4[0].conv1.weight / 3)
    named = {r.split(" (")[0] for r in model.load_report.reinitialised}
    assert named == {"heads.event", "encoders", "fusion"}
    assert not any(p.requires_grad for p in model.pathways.parameters())  # still frozen after loading
