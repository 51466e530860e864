"""Grad-CAM on any named layer: localisation on a constructed model, real fineact models, state restored, pictures."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageSequence
from torch import nn

from fineact.analysis.gradcam import (cam_animation_frames, cam_grid_image, default_cam_layers, grad_cam,
                                      list_layers, save_cam_animation, save_cam_grid)
from fineact.analysis.plotting import upscale_factor
from fineact.errors import ModelError
from fineact.models import build_model

SIZE = 32


# -- a model whose logit reads one spatial region -------------------------------------------------------------

class PositionalFeatures(nn.Module):
    """Four channels that fire in fixed places (like the position-specific units of a real network): channel 0
    near the top-left corner, 1 near the bottom-right, 2 near the top-right, 3 near the bottom-left. Each
    frame's map is scaled by that frame's mean brightness. Output (B, 4, H/4, W/4) (2D) or (N, 4, T/2, H/4,
    W/4) (3D, pooled in time)."""

    def __init__(self, dims: int = 2):
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2] // 4, x.shape[-1] // 4
        ys = torch.linspace(0, 1, h)[:, None].expand(h, w)
        xs = torch.linspace(0, 1, w)[None, :].expand(h, w)
        base = torch.stack([F.relu(1 - xs - ys), F.relu(xs + ys - 1), F.relu(xs - ys), F.relu(ys - xs)])
        if self.dims == 2:  # (B, 3, H, W)
            return base[None] * x.mean((1, 2, 3))[:, None, None, None]
        bright = x.mean((1, 3, 4))                                   # (N, T)
        bright = F.avg_pool1d(bright[:, None], 2)[:, 0]              # (N, T/2): temporal stride 2
        return base[None, :, None] * bright[:, None, :, None, None]


class QuadrantNet(nn.Module):
    """Classifier on the squared features of one quadrant only ("tl" or "br"); logits averaged over frames."""

    def __init__(self, region: str, dims: int = 2):
        super().__init__()
        self.features = PositionalFeatures(dims)
        self.region, self.dims = region, dims
        self.fc = nn.Linear(4, 3)
        with torch.no_grad():
            self.fc.weight.fill_(1.0)  # every channel counts the same: only the region decides
            self.fc.bias.zero_()

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        n, c, t, h, w = clip.shape
        if self.dims == 2:
            f = self.features(clip.transpose(1, 2).reshape(n * t, c, h, w))     # (N*T, 4, h, w)
        else:
            f = self.features(clip)                                             # (N, 4, T', h, w)
        fh, fw = f.shape[-2] // 2, f.shape[-1] // 2
        part = f[..., :fh, :fw] if self.region == "tl" else f[..., fh:, fw:]
        pooled = (part ** 2).mean((-2, -1))
        if self.dims == 2:
            return self.fc(pooled).view(n, t, -1).mean(1)
        return self.fc(pooled.mean(-1))


def quadrant_means(cam: torch.Tensor) -> dict[str, float]:
    h, w = cam.shape[-2] // 2, cam.shape[-1] // 2
    return {"tl": float(cam[..., :h, :w].mean()), "tr": float(cam[..., :h, w:].mean()),
            "bl": float(cam[..., h:, :w].mean()), "br": float(cam[..., h:, w:].mean())}


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("region", ["tl", "br"])
def test_cam_peaks_where_the_logit_looks(region, dims):
    torch.manual_seed(0)
    clip = torch.rand(2, 3, 4, 32, 48) + 0.5
    cams = grad_cam(QuadrantNet(region, dims), clip, "features", target=0)
    assert cams.shape == (2, 4, 32, 48)
    assert float(cams.min()) >= 0 and float(cams.max()) == pytest.approx(1.0)
    for clip_cam in cams:
        means = quadrant_means(clip_cam)
        assert max(means, key=means.get) == region
        peak = np.unravel_index(int(clip_cam.mean(0).argmax()), clip_cam.shape[1:])
        assert (peak[0] < 16) == (region == "tl") and (peak[1] < 24) == (region == "tl")


def test_cam_keeps_clips_and_frames_in_order():
    # frame brightness differs per clip and per frame: the CAM of each frame must follow its own frame
    brightness = torch.tensor([[0.2, 1.0, 0.6], [1.0, 0.4, 0.1]])
    clip = brightness[:, None, :, None, None].expand(2, 3, 3, 16, 16).contiguous()
    cams = grad_cam(QuadrantNet("tl", 2), clip, "features", target=1)
    peaks = cams.flatten(2).amax(2)
    np.testing.assert_allclose(peaks.numpy(), (brightness / brightness.amax(1, keepdim=True)).numpy(), rtol=1e-4)


def test_3d_cam_is_upsampled_in_time():
    brightness = torch.tensor([[0.1, 0.1, 1.0, 1.0]])  # the pooled steps: 0.1 then 1.0
    clip = brightness[:, None, :, None, None].expand(1, 3, 4, 16, 16).contiguous()
    cams = grad_cam(QuadrantNet("tl", 3), clip, "features")
    per_frame = cams[0].flatten(1).amax(1)
    assert cams.shape == (1, 4, 16, 16)
    assert per_frame[0] < per_frame[1] < per_frame[2] <= per_frame[3] == pytest.approx(1.0)


# -- real fineact models ---------------------------------------------------------------------------------------

def model_state(model: nn.Module) -> dict:
    return {"params": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "requires_grad": {k: p.requires_grad for k, p in model.named_parameters()},
            "training": {k: m.training for k, m in model.named_modules()},
            "grads": {k: p.grad for k, p in model.named_parameters()}}


def assert_state_unchanged(model: nn.Module, before: dict) -> None:
    after = model_state(model)
    assert after["requires_grad"] == before["requires_grad"]
    assert after["training"] == before["training"]
    assert all(g is None for g in after["grads"].values())
    for k, v in before["params"].items():
        assert torch.equal(after["params"][k], v), k


def check_cams(cams: torch.Tensor, shape: tuple) -> None:
    assert cams.shape == shape
    assert torch.isfinite(cams).all()
    assert float(cams.min()) >= 0.0 and float(cams.max()) <= 1.0


@pytest.fixture(scope="module")
def arc_model():
    torch.manual_seed(0)
    return build_model("arc_tsm_r18", num_classes=5, num_segments=2)


@pytest.mark.parametrize("name, layer", [("tsm_r18", "backbone.layer2"), ("arc_tsm_r18", "backbone.layer3.1.conv2")])
def test_grad_cam_on_segment_models(name, layer, arc_model):
    torch.manual_seed(0)
    model = (arc_model if name == "arc_tsm_r18" else build_model(name, num_classes=5, num_segments=2)).train()
    before = model_state(model)
    clip = torch.randn(2, 3, 2, SIZE, SIZE)
    cams = grad_cam(model, clip, layer, target=[0, 3])
    check_cams(cams, (2, 2, SIZE, SIZE))
    assert_state_unchanged(model, before)


def test_grad_cam_on_slowonly_and_slowfast():
    torch.manual_seed(0)
    slow = build_model("slowonly_r50", depth=18, base_channels=8, num_frames=4, num_classes=5).eval()
    before = model_state(slow)
    cams = grad_cam(slow, torch.randn(1, 3, 4, SIZE, SIZE), "backbone.layer2")
    check_cams(cams, (1, 4, SIZE, SIZE))
    assert float(cams.max()) == pytest.approx(1.0)
    assert_state_unchanged(slow, before)
    fast = build_model("slowfast_r50", depth=18, base_channels=8, num_frames=8, alpha=4, beta_inv=4,
                       num_classes=5).eval()
    assert default_cam_layers(fast) == ["backbone.slow.layer2", "backbone.fast.layer2"]
    clip = torch.randn(1, 3, 8, SIZE, SIZE)
    for layer in default_cam_layers(fast):  # the slow pathway sees 2 frames, upsampled to the clip's 8
        check_cams(grad_cam(fast, clip, layer), (1, 8, SIZE, SIZE))


@pytest.fixture(scope="module")
def multitask():
    torch.manual_seed(0)
    return build_model("hierarchical_multitask", pathway_depth=18, base_channels=8, arc_stages=(4,),
                       levels={"event": 2, "set": 3, "element": 5},
                       pathway_clips={"event": (2, 16), "set": (2, 8), "element": (4, 2)})


def test_grad_cam_on_each_multitask_pathway_and_level(multitask):
    model = multitask.train()  # pathways frozen: they stay in eval mode and run without autograd
    assert model.freeze_pathways and not model.pathways.training
    before = model_state(model)
    clips = {name: torch.randn(2, 3, spec.num_frames, SIZE, SIZE) for name, spec in model.clip_specs.items()}
    for (pathway, spec), level in zip(model.clip_specs.items(), ("element", "set", "event")):
        cams = grad_cam(model, clips, f"pathways.{pathway}.backbone.layer3", level=level)
        check_cams(cams, (2, spec.num_frames, SIZE, SIZE))
    # explaining another head gives another map
    a = grad_cam(model, clips, "pathways.set.backbone.layer2", level="event", target=0)
    b = grad_cam(model, clips, "pathways.set.backbone.layer2", level="element", target=4)
    assert not torch.allclose(a, b)
    assert_state_unchanged(model, before)
    assert model.freeze_pathways and model.training and not model.pathways.training
    with torch.no_grad():
        outputs = model(clips)
    assert not outputs["element"].requires_grad


def test_grad_cam_single_level_head_of_slowfast_multitask():
    model = build_model("slowfast_multitask", depth=18, base_channels=8, num_frames=8, alpha=4, beta_inv=4,
                        levels={"set": 3, "element": 5})
    cams = grad_cam(model, torch.randn(1, 3, 8, SIZE, SIZE), "backbone.fast.layer3", level="set")
    check_cams(cams, (1, 8, SIZE, SIZE))


def test_layer_names_and_errors(multitask, arc_model):
    arc = arc_model
    convs = list_layers(arc, "conv")
    assert "backbone.layer3.1.conv2" in convs and "backbone.conv1" in convs
    assert not any(".parts." in n or n.endswith(".embed") for n in convs)  # ARC internals are not layers
    blocks = list_layers(arc, "block")
    assert blocks[:3] == ["backbone.layer1", "backbone.layer1.0", "backbone.layer1.1"]
    assert "pathways.element.backbone.layer3" in list_layers(multitask, "block")
    assert default_cam_layers(multitask) == [f"pathways.{p}.backbone.layer2" for p in ("event", "set", "element")]
    assert "backbone.layer2.0.conv1.parts.0.conv" in list_layers(arc, "all")
    clip = torch.randn(1, 3, 2, SIZE, SIZE)
    with pytest.raises(ModelError, match="Did you mean 'backbone.layer2'"):
        grad_cam(arc, clip, "backbone.layr2")
    with pytest.raises(ModelError, match="ran 4 times"):
        grad_cam(arc, clip, "backbone.layer2.0.conv1.state_probe")
    with pytest.raises(ModelError, match="level"):
        grad_cam(arc, clip, "backbone.layer2", level="element")
    with pytest.raises(ModelError, match="out of range"):
        grad_cam(arc, clip, "backbone.layer2", target=7)
    with pytest.raises(ModelError, match="kind"):
        list_layers(arc, "convs")
    clips = {name: torch.randn(1, 3, spec.num_frames, SIZE, SIZE) for name, spec in multitask.clip_specs.items()}
    with pytest.raises(ModelError, match="several levels"):
        grad_cam(multitask, clips, "pathways.set.backbone.layer2")
    with pytest.raises(ModelError, match="cannot tell which"):
        grad_cam(multitask, clips, "fusion.0", level="set")


# -- pictures --------------------------------------------------------------------------------------------------

def marker_frames(t: int = 3, h: int = 40, w: int = 56) -> np.ndarray:
    """Grey frames with a red square at the top-left and a green bar along the bottom: any flip or transpose
    moves one of them."""
    frames = np.full((t, h, w, 3), 100, np.uint8)
    frames[:, 2:12, 2:12] = (255, 0, 0)
    frames[:, h - 6:h - 2, :] = (0, 255, 0)
    return frames


def test_cam_grid_keeps_orientation_exactly():
    frames = marker_frames()
    cams = np.zeros((3, 40, 56), np.float32)
    cams[:, 2:12, 2:12] = 1.0  # hot exactly on the red square
    image = cam_grid_image(frames, cams, alpha=0.5, title="orientation")
    k = int(upscale_factor(40, 56))
    assert k == 3
    # find the first raw tile: the top-left-most pure red pixel is the square's corner (2, 2) * k
    red = np.argwhere((image[..., 0] == 255) & (image[..., 1] == 0) & (image[..., 2] == 0))
    y0, x0 = red.min(0) - 2 * k
    tile = image[y0:y0 + 40 * k, x0:x0 + 56 * k]
    np.testing.assert_array_equal(tile, frames[0].repeat(k, 0).repeat(k, 1))
    # the overlay row below: hot (red-ish jet) on the square, cold (blue) elsewhere, in the same place
    gap = 4
    over = image[y0 + 40 * k + gap:y0 + 2 * 40 * k + gap, x0:x0 + 56 * k]
    square, corner = over[5 * k, 5 * k], over[20 * k, 50 * k]
    assert square[0] > 150 and square[2] < 100      # red on the marker
    assert corner[2] > corner[0]                     # blue away from it


def test_save_cam_grid_rows_and_png(tmp_path):
    frames = marker_frames(t=10)
    cams = np.random.default_rng(0).random((10, 10, 14)).astype(np.float32)  # smaller maps are resized
    path = save_cam_grid(frames, {"TSM": cams, "ARC": np.zeros_like(cams)}, tmp_path / "grid.png", max_columns=4)
    with Image.open(path) as image:
        assert image.format == "PNG"
        grid = np.asarray(image.convert("RGB"))
    assert grid.shape[1] > 4 * 56 * 3 and grid.shape[0] > 3 * 40 * 3
    with pytest.raises(ValueError, match="T=10"):
        save_cam_grid(frames, cams[:3], tmp_path / "bad.png")


def test_cam_animation_gif_and_mp4(tmp_path):
    frames = marker_frames(t=5)
    cams = np.linspace(0, 1, 5)[:, None, None] * np.ones((5, 40, 56))
    pictures = cam_animation_frames(frames, cams)
    assert len(pictures) == 5 and all(p.shape[0] % 2 == 0 and p.shape[1] % 2 == 0 for p in pictures)
    gif = save_cam_animation(frames, cams, tmp_path / "cam.gif", fps=5)
    with Image.open(gif) as image:
        assert image.format == "GIF"
        gif_frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(image)]
    assert len(gif_frames) == 5
    # orientation survives the GIF palette: the red marker sits top-left in the raw panel
    first = gif_frames[0]
    red = np.argwhere((first[..., 0] > 200) & (first[..., 1] < 60) & (first[..., 2] < 60))
    green = np.argwhere((first[..., 1] > 200) & (first[..., 0] < 60))
    assert red[:, 0].max() < green[:, 0].min()
    mp4 = save_cam_animation(frames, cams, tmp_path / "cam.mp4")
    with av.open(str(mp4)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 5
    with pytest.raises(ValueError, match="gif or .mp4"):
        save_cam_animation(frames, cams, tmp_path / "cam.avi")
