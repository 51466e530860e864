"""The test-time views (fineact.data.test_views): one pipeline for evaluation, predict, features and Grad-CAM."""

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import tiny_experiment
from fineact.config import load_config
from fineact.data.sampling import DenseSampler
from fineact.data.test_views import TestViews
from fineact.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_test_transform
from fineact.engine.datamodule import VideoDataModule
from fineact.engine.module import RecognitionModule
from fineact.engine.run import levels_from_config
from fineact.predict import Predictor

TINY_PATHWAYS = {"event": [4, 8], "set": [8, 4], "element": [16, 2]}
MODELS = {
    # a single dense pathway: 2 windows per video
    "dense": ({"name": "slowonly_r50", "args": {"depth": 18, "base_channels": 4, "num_frames": 4,
                                                "frame_interval": 4}}, {"test_clips": 2}),
    # TSN segments take one clip per video (test_clips > 1 is refused): twice_sample gives the second clip
    "segments": ({"name": "tsm_r18", "args": {"num_segments": 4}}, {"twice_sample": True}),
    # several pathways reading one shared window: 2 windows per video
    "pathways": ({"name": "hierarchical_multitask",
                  "args": {"pathway_depth": 18, "base_channels": 4, "pathway_clips": TINY_PATHWAYS,
                           "encoder_dims": {"event": 8, "set": 8, "element": 16}, "fused_dim": 16}},
                 {"test_clips": 2}),
}


def _module_and_datamodule(tiny_gym, tmp_path, kind):
    model, data = MODELS[kind]
    cfg = load_config(base=tiny_experiment(tiny_gym, tmp_path, model=model, data={**data, "test_crops": 3}))
    levels = levels_from_config(cfg)
    module = RecognitionModule(OmegaConf.to_container(cfg), levels.to_dict())
    return module, VideoDataModule(cfg, levels, module.model)


@pytest.mark.parametrize("kind", list(MODELS))
def test_predictor_sees_a_video_as_the_evaluation_dataset_does(tiny_gym, tmp_path, kind):
    module, datamodule = _module_and_datamodule(tiny_gym, tmp_path, kind)
    dataset = datamodule.dataset("val")
    item = dataset[(1, 12345)]  # any key: the test protocol draws no random numbers
    evaluated = item["clips"] if isinstance(item["clips"], dict) else {"clip": item["clips"]}
    predicted = Predictor(module).clips(dataset.samples[1].source)
    assert list(predicted) == list(evaluated) == list(module.model.clip_specs if kind == "pathways" else ["clip"])
    for name, clip in evaluated.items():
        assert clip.shape[0] == 2 * 3  # 2 clips x 3 crops
        assert predicted[name].shape == (1, *clip.shape)
        assert torch.equal(predicted[name][0], clip)
    # an unreadable video's placeholder has the shape of a real one
    assert {k: v.shape for k, v in dataset.placeholder().items()} == {k: v.shape for k, v in evaluated.items()}


def test_views_are_clip_major_each_clip_cropped_left_centre_right():
    # 2 clips of 1 frame; the frame's red value is its column x 20, green tells the clip apart
    frames = np.zeros((2, 4, 8, 3), np.uint8)
    frames[..., 0] = np.arange(8)[None, None, :] * 20
    frames[1, ..., 1] = 200
    views = TestViews(DenseSampler(1, 1, num_clips=2), build_test_transform(size=4, resize=None, crops=3), 4)
    assert (views.clip_views, views.crop_views, views.views) == (2, 3, 6)
    clips, label = views.of_frames({"clip": frames}, 7, np.random.default_rng(0))
    assert label == 7 and clips["clip"].shape == (6, 3, 1, 4, 4) and clips["clip"].dtype == torch.uint8
    pixels = clips["clip"]  # uint8 until the device: normalised by views.model_input
    assert pixels[:, 0, 0, 0, 0].tolist() == [0, 40, 80] * 2           # crops at columns 0, 2, 4, for each clip
    assert pixels[:, 1, 0, 0, 0].tolist() == [0, 0, 0, 200, 200, 200]  # clip 0's three crops, then clip 1's


def test_views_from_the_config_state_what_export_describes(tiny_gym, tmp_path):
    module, _ = _module_and_datamodule(tiny_gym, tmp_path, "dense")
    views = TestViews.from_config(module.cfg.data, module.model.clip_specs)
    assert (views.clip_views, views.crop_views, views.crop_size) == (2, 3, 24)
    assert (views.mean, views.std) == (IMAGENET_MEAN, IMAGENET_STD)
    assert views.frame_sampler.frames_per_view == {"clip": 4}


def test_eval_loader_reads_any_split_in_order_with_the_test_views(tiny_gym, tmp_path):
    _, datamodule = _module_and_datamodule(tiny_gym, tmp_path, "dense")
    batches = list(datamodule.eval_dataloader("train"))  # the train split, evaluated: not augmented
    dataset = datamodule.dataset("train", "test")
    assert torch.cat([b["index"] for b in batches]).tolist() == list(range(len(dataset)))
    first = dataset[(0, 0)]["clips"]
    assert batches[0]["clips"].shape[1:] == first.shape == (6, 3, 4, 24, 24)
    assert torch.equal(batches[0]["clips"][0], first)
    datamodule.eval_split = "train"
    assert torch.equal(next(iter(datamodule.test_dataloader()))["clips"], batches[0]["clips"])
