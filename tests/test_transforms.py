"""fineact.data.transforms: one crop/flip per sample, crop positions, label swap, normalisation, shapes."""

import numpy as np
import pytest
import torch

from fineact.data.transforms import (
    SSV1_FLIP_LABEL_MAP,
    CentreCrop,
    Compose,
    MultiScaleCrop,
    Normalize,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    TenCrop,
    ThreeCrop,
    ToFloat,
    ToModelLayout,
    build_test_transform,
    build_train_transform,
    resize_target,
)
from fineact.errors import ConfigError, VideoError


def rng(seed=0):
    return np.random.default_rng(seed)


def still_clip(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A clip whose frames are all the same random image: any per-frame difference in the output is a bug."""
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return np.repeat(image[None], num_frames, axis=0)


def position_clip(height: int, width: int) -> torch.Tensor:
    """Float (T=2, C=3, H, W) clip whose pixel value is y * width + x: a crop's first pixel gives its offset."""
    grid = torch.arange(height * width, dtype=torch.float32).reshape(height, width)
    return grid.expand(2, 3, height, width).clone()


# ------------------------------------------------------------------------------ one draw per sample


@pytest.mark.parametrize("kind", ["multiscale", "random_resized"])
def test_same_crop_and_flip_for_every_frame_and_pathway(kind):
    transform = build_train_transform(kind, size=32, resize=(48, 64))
    sample = {"slow": still_clip(4, 60, 80), "fast": still_clip(8, 60, 80)}
    for seed in range(10):
        out, _ = transform(sample, rng=rng(seed))
        slow, fast = out["slow"], out["fast"]
        assert slow.shape == (3, 4, 32, 32) and fast.shape == (3, 8, 32, 32)
        for clip in (slow, fast):
            assert torch.equal(clip, clip[:, :1].expand_as(clip))  # every frame identical
        assert torch.equal(slow[:, 0], fast[:, 0])  # both pathways cropped and flipped alike


def test_test_views_identical_across_pathways():
    transform = build_test_transform(size=32, resize=40, crops=10)
    out, _ = transform({"a": still_clip(2, 40, 60), "b": still_clip(5, 40, 60)})
    assert out["a"].shape == (10, 3, 2, 32, 32) and out["b"].shape == (10, 3, 5, 32, 32)
    assert torch.equal(out["a"][:, :, 0], out["b"][:, :, 3])


def test_deterministic_with_seed_and_varied_across_seeds():
    transform = build_train_transform("multiscale", size=32, resize=48)
    clip = still_clip(2, 48, 64)
    first, _ = transform(clip, rng=rng(3))
    again, _ = transform(clip, rng=rng(3))
    assert torch.equal(first, again)
    outputs = {transform(clip, rng=rng(seed))[0].sum().item() for seed in range(10)}
    assert len(outputs) > 3


# -------------------------------------------------------------------------------------- flip and labels


def test_flip_swaps_left_right_labels_only_when_flipped():
    clip = position_clip(4, 6)
    always = RandomHorizontalFlip(p=1.0, label_map=SSV1_FLIP_LABEL_MAP)
    flipped, label = always(clip, 86, rng())
    assert torch.equal(flipped, clip.flip(-1)) and label == 87
    assert always(clip, 167, rng())[1] == 166
    assert always(clip, 5, rng())[1] == 5  # not a direction class
    assert always(clip, np.int64(93), rng())[1] == 94
    never = RandomHorizontalFlip(p=0.0, label_map=SSV1_FLIP_LABEL_MAP)
    same, label = never(clip, 86, rng())
    assert torch.equal(same, clip) and label == 86


def test_random_flip_and_label_agree():
    flip = RandomHorizontalFlip(p=0.5, label_map={0: 1, 1: 0})
    clip = position_clip(4, 6)
    seen = set()
    for seed in range(40):
        out, label = flip({"a": clip, "b": clip[:1]}, 0, rng(seed))
        was_flipped = torch.equal(out["a"], clip.flip(-1))
        assert was_flipped == (label == 1)
        assert torch.equal(out["b"], out["a"][:1])
        seen.add(was_flipped)
    assert seen == {True, False}


def test_train_builder_passes_label_map():
    transform = build_train_transform(size=16, resize=(24, 32), flip_label_map=SSV1_FLIP_LABEL_MAP)
    labels = {transform(still_clip(1, 24, 32), 86, rng(seed))[1] for seed in range(20)}
    assert labels == {86, 87}
    assert build_train_transform(size=16, resize=None, flip=False)(still_clip(1, 24, 32), 86, rng())[1] == 86


# -------------------------------------------------------------------------------------- crop positions


def test_centre_crop_position():
    (out, _) = CentreCrop(4)(position_clip(8, 12))
    assert out.shape == (2, 3, 4, 4)
    assert out[0, 0, 0, 0] == 2 * 12 + 4  # top (8-4)//2 = 2, left (12-4)//2 = 4


def test_three_crop_along_the_longer_side():
    wide, _ = ThreeCrop(8)(position_clip(8, 12))
    assert wide.shape == (3, 2, 3, 8, 8)
    assert wide[:, 0, 0, 0, 0].tolist() == [0, 2, 4]  # left, centre, right
    tall, _ = ThreeCrop(8)(position_clip(12, 8))
    assert tall[:, 0, 0, 0, 0].tolist() == [0, 2 * 8, 4 * 8]  # top, centre, bottom


def test_ten_crop_corners_centre_and_mirrors():
    views, _ = TenCrop(4)(position_clip(8, 12))
    assert views.shape == (10, 2, 3, 4, 4)
    # top-left, top-right, bottom-left, bottom-right, centre
    assert views[:5, 0, 0, 0, 0].tolist() == [0, 8, 4 * 12, 4 * 12 + 8, 2 * 12 + 4]
    assert torch.equal(views[5:], views[:5].flip(-1))


def test_marker_pixel_seen_by_the_right_views():
    frame = np.zeros((1, 40, 60, 3), np.uint8)
    frame[0, 0, 59] = 255  # top-right corner
    views, _ = Compose([ToFloat(), TenCrop(20)])(frame)
    has_marker = [bool(view.max() > 0) for view in views]
    assert has_marker == [False, True, False, False, False, False, True, False, False, False]


def test_multiscale_candidates_follow_tsm():
    crop = MultiScaleCrop(224)
    sides = [240, 210, 180, 158]  # int(240 * s) for s in (1, .875, .75, .66); none within 3 px of 224
    expected = [(sides[i], sides[j]) for i in range(4) for j in range(4) if abs(i - j) <= 1]
    assert crop.candidate_sizes(240, 320) == expected
    assert len(expected) == 10
    # w_step = (320 - 240) // 4 = 20, h_step = 0: 13 fixed positions on a 5x5 grid of steps
    offsets = crop.candidate_offsets(240, 320, 240, 240)
    assert offsets[:5] == [(0, 0), (0, 80), (0, 0), (0, 80), (0, 40)]
    assert sorted(set(left for _, left in offsets)) == [0, 20, 40, 60, 80] and len(offsets) == 13
    corners_and_centre = [(0, 0), (0, 108), (60, 0), (60, 108), (30, 54)]  # steps (15, 27) for a 180x210 crop
    assert MultiScaleCrop(224, more_fix_crop=False).candidate_offsets(240, 320, 180, 210) == corners_and_centre
    assert MultiScaleCrop(224).candidate_sizes(226, 300)[0] == (224, 224)  # 226 is snapped to 224


def test_multiscale_draws_only_candidates_and_all_of_them():
    crop = MultiScaleCrop(224)
    allowed = {
        (top, left, h, w)
        for h, w in crop.candidate_sizes(240, 320)
        for top, left in crop.candidate_offsets(240, 320, h, w)
    }
    drawn = [crop.draw((240, 320), rng(seed)) for seed in range(300)]
    assert set(drawn) <= allowed
    assert {(h, w) for _, _, h, w in drawn} == set(crop.candidate_sizes(240, 320))
    out, _ = crop(position_clip(240, 320), rng=rng())
    assert out.shape == (2, 3, 224, 224)


def test_random_resized_crop_boxes():
    crop = RandomResizedCrop(16)
    for seed in range(200):
        top, left, h, w = crop.draw((60, 80), rng(seed))
        assert 0 <= top and top + h <= 60 and 0 <= left and left + w <= 80
        assert 0.08 * 0.9 <= h * w / 4800 <= 1.0
        assert 3 / 4 * 0.85 <= w / h <= 4 / 3 * 1.15  # rounding to whole pixels
    assert crop._fallback_box(10, 100) == (0, 43, 10, 13)  # too wide: centre crop at ratio 4/3


@pytest.mark.parametrize("crop_class", [MultiScaleCrop, RandomResizedCrop])
def test_crop_drawn_on_the_resized_frame_is_cut_from_the_source_pixels_it_covers(crop_class):
    """A crop of frames 'resized to 256' is the same draw as on frames really resized so, mapped back to the
    source to within half a source pixel (whole pixels, inside the frame)."""
    source, resized = (240, 320), (256, 341)  # short side 256; long side int(320 * 256 / 240)
    fused, on_resized = crop_class(224, resize=256), crop_class(224)
    for seed in range(200):
        top, left, h, w = fused.draw(source, rng(seed))
        r_top, r_left, r_h, r_w = on_resized.draw(resized, rng(seed))  # the same random numbers
        scale_y, scale_x = source[0] / resized[0], source[1] / resized[1]
        assert abs(top - r_top * scale_y) <= 0.5 and abs(left - r_left * scale_x) <= 0.5
        assert abs(top + h - (r_top + r_h) * scale_y) <= 0.5 and abs(left + w - (r_left + r_w) * scale_x) <= 0.5
        assert 0 <= top < top + h <= source[0] and 0 <= left < left + w <= source[1]
    assert fused.draw(resized, rng(1)) == on_resized.draw(resized, rng(1))  # frames already that size: no mapping


def test_one_resampling_of_the_source_matches_resizing_the_frame_then_the_crop():
    """On a smooth image the crop resized straight from the source equals the two-step result (resize the whole
    frame, crop, resize the crop) up to the half-pixel placement: the same region, one resampling fewer."""
    y, x = np.mgrid[0:120, 0:160]
    image = (100 + 60 * np.sin(x / 17.0) * np.cos(y / 13.0)).astype(np.uint8)
    clip = np.repeat(np.repeat(image[None, :, :, None], 3, axis=3), 2, axis=0)
    fused = build_train_transform("multiscale", size=64, resize=100, flip=False)
    two_steps = Compose([ToFloat(), Resize(100), MultiScaleCrop(64)])
    for seed in range(20):
        got, _ = fused(clip, rng=rng(seed))
        expected, _ = two_steps(clip, rng=rng(seed))
        difference = (got.transpose(0, 1).float() - expected).abs()
        assert difference.mean() < 1.5 and difference.max() < 8  # a shifted crop would differ by tens of levels


# --------------------------------------------------------------------------------------- resize & values


def test_resize_short_side_and_fixed():
    clip = position_clip(240, 320)
    assert Resize(256)(clip)[0].shape == (2, 3, 256, 341)  # long side int(320 * 256 / 240)
    assert Resize(256)(position_clip(320, 240))[0].shape == (2, 3, 341, 256)
    assert Resize((240, 320))(position_clip(100, 120))[0].shape == (2, 3, 240, 320)
    constant = torch.full((2, 3, 50, 70), 77.0)
    assert torch.allclose(Resize(20)(constant)[0], torch.tensor(77.0))
    assert Resize((50, 70))(constant)[0] is constant  # no-op when the size already matches


def test_config_resize_is_a_short_side_or_a_fixed_size():
    from omegaconf import OmegaConf

    sizes = OmegaConf.create({"short": [256], "fixed": [240, 320]})
    assert resize_target(sizes.short) == 256 and isinstance(resize_target(sizes.short), int)
    assert resize_target(sizes.fixed) == (240, 320)
    assert Resize(resize_target(sizes.fixed))(position_clip(100, 120))[0].shape == (2, 3, 240, 320)


def test_normalisation_numbers():
    frame = np.empty((1, 2, 2, 3), np.uint8)
    frame[..., 0], frame[..., 1], frame[..., 2] = 0, 128, 255
    out, _ = Compose([ToFloat(), Normalize(), ToModelLayout()])(frame)
    assert out.shape == (3, 1, 2, 2) and out.dtype == torch.float32
    expected = [(0 - 0.485) / 0.229, (128 / 255 - 0.456) / 0.224, (1 - 0.406) / 0.225]
    assert torch.allclose(out[:, 0, 0, 0], torch.tensor(expected))
    assert torch.allclose(out[:, 0, 0, 0], torch.tensor([-2.1179039, 0.2051821, 2.64]))


def test_to_float_accepts_numpy_and_torch():
    clip = still_clip(3, 6, 8)
    from_numpy, _ = ToFloat()(clip)
    from_torch, _ = ToFloat()(torch.from_numpy(clip))
    assert from_numpy.shape == (3, 3, 6, 8) and from_numpy.dtype == torch.float32
    assert torch.equal(from_numpy, from_torch)
    assert from_numpy[0, :, 2, 5].tolist() == clip[0, 2, 5].astype(float).tolist()


# ------------------------------------------------------------------------------------------ pipelines


@pytest.mark.parametrize(
    ("crops", "shape"), [(1, (3, 4, 224, 224)), (3, (3, 3, 4, 224, 224)), (10, (10, 3, 4, 224, 224))]
)
def test_test_pipeline_shapes(crops, shape):
    transform = build_test_transform(size=224, resize=256, crops=crops)
    out, label = transform({"clip": still_clip(4, 120, 160)}, 7)
    assert out["clip"].shape == shape and out["clip"].dtype == torch.uint8 and label == 7  # normalised on the device
    # the loader layout: model axes, the decoder's memory order (channels innermost, dense)
    assert out["clip"].movedim(-4, -1).is_contiguous() and transform.crop_views == crops


def test_train_pipeline_default_shapes():
    clip = torch.from_numpy(still_clip(2, 240, 320))
    for kind in ("multiscale", "random_resized"):
        out, _ = build_train_transform(kind)(clip, rng=rng())
        assert out.shape == (3, 2, 224, 224) and out.dtype == torch.uint8


def test_test_centre_crop_view_is_the_centre():
    transform = build_test_transform(size=32, resize=None, crops=3)
    clip = still_clip(1, 32, 96)
    views, _ = transform(clip)
    centre, _ = build_test_transform(size=32, resize=None, crops=1)(clip)
    assert torch.equal(views[1], centre)


# ---------------------------------------------------------------------------------------------- errors


def test_bad_clips():
    with pytest.raises(VideoError, match=r"clip 'clip': expected uint8 frames \(T, H, W, 3\), found ndarray float32"):
        ToFloat()(np.zeros((2, 4, 4, 3), np.float32))
    with pytest.raises(VideoError, match="expected uint8 frames"):
        ToFloat()(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(VideoError, match="share one frame size"):
        CentreCrop(2)({"a": position_clip(4, 4), "b": position_clip(4, 6)})
    with pytest.raises(VideoError, match="crop 8x8 does not fit in frames of 4x6"):
        CentreCrop(8)(position_clip(4, 6))


def test_bad_configs():
    with pytest.raises(ConfigError, match="crops must be 1, 3 or 10"):
        build_test_transform(crops=5)
    with pytest.raises(ConfigError, match="kind must be 'multiscale' or 'random_resized'"):
        build_train_transform("jitter")
    with pytest.raises(ConfigError, match="size must be a positive int"):
        Resize(0)
    with pytest.raises(ConfigError, match="flip probability"):
        RandomHorizontalFlip(p=2)
    with pytest.raises(ConfigError, match="integer label"):
        RandomHorizontalFlip(1.0, {1: 2})(position_clip(2, 2), "left", rng())
