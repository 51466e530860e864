"""uint8 through the loader, normalised on the device (fineact.data.model_input): the same numbers as the float
pipeline wherever the operations are the same, and one normalisation for every path."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data._utils.collate import default_collate

from conftest import tiny_experiment
from fineact.config import load_config
from fineact.data.datasets import VideoClipDataset
from fineact.data.model_input import IMAGENET_MEAN, IMAGENET_STD, Normalization, collate_batch, flip_marked
from fineact.data.transforms import (CentreCrop, Compose, MultiScaleCrop, Normalize, RandomHorizontalFlip, Resize,
                                     TenCrop, ThreeCrop, ToFloat, ToModelLayout, build_test_transform,
                                     build_train_transform, resize_target)
from fineact.engine.datamodule import VideoDataModule
from fineact.engine.features import extract_features, pathway_features
from fineact.engine.module import RecognitionModule
from fineact.engine.run import levels_from_config
from fineact.errors import ConfigError


def frames(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)


def float_pipeline(*steps, crop_views: int = 1) -> Compose:
    """The pipeline before uint8 loading: float32 from the first step, normalised on the CPU."""
    return Compose([ToFloat(), *steps, Normalize(), ToModelLayout()], crop_views=crop_views)


@pytest.mark.parametrize(("crops", "view_crop"), [(1, CentreCrop), (3, ThreeCrop), (10, TenCrop)])
def test_test_views_are_bitwise_the_float_pipeline(crops, view_crop):
    clip = frames(3, 30, 44)
    before, _ = float_pipeline(view_crop(24), crop_views=crops)(clip)
    after, _ = build_test_transform(size=24, resize=None, crops=crops)(clip)
    assert after.dtype == torch.uint8 and after.shape == before.shape
    assert torch.equal(Normalization().clip(after), before)


def test_train_crops_and_flips_are_bitwise_the_float_pipeline():
    sample = {"slow": frames(2, 24, 40, seed=1), "fast": frames(6, 24, 40, seed=2)}
    # scale 1 of a 24-pixel short side is a 24 x 24 crop: placed and flipped at random, never resized
    before = float_pipeline(MultiScaleCrop(24, scales=(1,)), RandomHorizontalFlip(0.5))
    after = build_train_transform("multiscale", size=24, resize=None, scales=(1,))
    outcomes = set()
    for seed in range(12):
        expected, label_before = before(sample, 5, np.random.default_rng(seed))
        got, label_after = after(sample, 5, np.random.default_rng(seed))
        assert label_before == label_after
        for name in sample:
            assert got[name].dtype == torch.uint8
            assert torch.equal(Normalization().clip(got[name]), expected[name])
        outcomes.add(got["slow"].numpy().tobytes())
    assert len(outcomes) > 4  # the seeds cover many crop positions and both flips


def test_batches_normalised_after_transfer_equal_the_float_pipeline_per_sample():
    clips = [frames(4, 30, 40, seed=s) for s in range(3)]
    expected = torch.stack([float_pipeline(CentreCrop(24))(c)[0] for c in clips])
    items = [{"clips": build_test_transform(24, None)(c)[0], "label": 0} for c in clips]
    batch = collate_batch(items)
    assert batch["clips"].dtype == torch.uint8 and torch.equal(batch["clips"], default_collate(items)["clips"])
    assert batch["clips"].movedim(1, -1).is_contiguous()  # stacked in memory order: no transpose
    assert torch.equal(Normalization().clips({"p": batch["clips"]})["p"], expected)
    assert Normalization().clip(expected) is expected  # float clips count as normalised already


def test_uint8_resize_is_the_float_resize_to_within_rounding():
    clip = frames(4, 60, 90, seed=4)
    for size in (32, (48, 64), 80):  # down and up
        floats, _ = Compose([ToFloat(), Resize(size)])(clip)
        uint8s, _ = build_test_transform(size=32, resize=size)(clip)  # resize, then a centre crop
        centre = CentreCrop(32)(floats)[0]
        assert (uint8s.transpose(0, 1).float() - centre).abs().max() <= 1.0


def test_normalisation_numbers_and_checks():
    pixel = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 3, 1, 1, 1)  # (N, C, T, H, W)
    out = Normalization().clip(pixel).flatten()
    expected = [(0 - 0.485) / 0.229, (128 / 255 - 0.456) / 0.224, (1 - 0.406) / 0.225]
    assert out.dtype == torch.float32 and torch.allclose(out, torch.tensor(expected))
    assert (Normalization().mean, Normalization().std) == (IMAGENET_MEAN, IMAGENET_STD)
    with pytest.raises(ConfigError, match="3 means and 3 positive stds"):
        Normalization(std=(0.2, 0.0, 0.2))


@pytest.fixture
def tiny(tiny_gym, tmp_path):
    cfg = load_config(base=tiny_experiment(tiny_gym, tmp_path))
    levels = levels_from_config(cfg)
    module = RecognitionModule(OmegaConf.to_container(cfg), levels.to_dict()).eval()
    return module, VideoDataModule(cfg, levels, module.model)


def test_module_normalises_loader_batches_after_the_transfer(tiny):
    module, datamodule = tiny
    batch = next(iter(datamodule.train_dataloader()))
    raw, flipped = batch["clips"].clone(), batch["flipped"].clone()
    assert raw.dtype == torch.uint8 and raw.shape[1:] == (3, 4, 24, 24) and flipped.shape == (raw.shape[0],)
    batch = module.on_after_batch_transfer(batch, 0)
    assert torch.equal(batch["clips"], Normalization().clip(flip_marked(raw, flipped)))
    with torch.no_grad():  # forward takes uint8 too (the Predictor's views), normalising them the same way
        assert torch.equal(module(flip_marked(raw, flipped))["element"], module(batch["clips"])["element"])


def test_training_flips_done_on_the_device_equal_flipping_in_the_worker(tiny):
    """The datamodule's train dataset draws each flip (and its label swap) where the transform's own flip step
    would, and leaves the mirroring to on_after_batch_transfer: the batches are bitwise those of flipping in the
    worker."""
    module, datamodule = tiny
    data = datamodule.cfg.data
    dataset = datamodule.dataset("train")
    assert dataset.options.device_flip is not None
    worker_flips = VideoClipDataset(
        dataset.samples, dataset.frame_sampler,
        build_train_transform(data.train_crop, data.crop_size, resize_target(data.resize), flip=True),
        replace(dataset.options, device_flip=None), dataset.crop_size)
    keys = [(i % len(dataset), 100 + i) for i in range(10)]
    marked = collate_batch([dataset[k] for k in keys])
    assert 0 < int(marked["flipped"].sum()) < len(keys)  # some flipped, some not
    in_worker = collate_batch([worker_flips[k] for k in keys])
    assert "flipped" not in in_worker  # nothing left for the device to flip
    on_device = module.on_after_batch_transfer(marked, 0)
    assert torch.equal(on_device["clips"], Normalization().clip(in_worker["clips"]))
    assert torch.equal(on_device["label"], in_worker["label"])


def test_feature_extraction_sees_the_evaluation_input(tiny, tmp_path):
    module, datamodule = tiny
    path = extract_features(module, datamodule, "val", tmp_path / "val.safetensors", progress=False)
    from safetensors.torch import load_file

    stored = load_file(str(path))
    views = datamodule.dataset("val", "test")[(2, 0)]["clips"]  # uint8 (V, C, T, H, W)
    with torch.no_grad():
        expected = pathway_features(module.model, Normalization().clip(views))["clip"]
    torch.testing.assert_close(stored["clip"][2], expected, rtol=1e-4, atol=1e-5)


def test_flips_marked_for_the_device_mirror_only_the_marked_clips():
    batch = torch.randint(0, 256, (4, 3, 2, 5, 6), dtype=torch.uint8)
    flipped = torch.tensor([True, False, False, True])
    before = batch.clone()
    out = flip_marked({"p": batch}, flipped)["p"]
    assert torch.equal(out, torch.where(flipped.view(-1, 1, 1, 1, 1), batch.flip(-1), batch))
    assert torch.equal(batch, before) and not torch.equal(out, batch)  # a new batch; the loader's is untouched
    assert flip_marked(batch, torch.zeros(4, dtype=torch.bool)) is batch
