"""Datasets, keyed samplers, the unreadable-video policy and `fineact check-data`."""

import gc
import os
import shutil
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from conftest import tiny_experiment
from fineact.cli import main
from fineact.config import load_config
from fineact.data.datasets import KeyedSampler
from fineact.data.unreadable import decode as decode_unreadable
from fineact.engine.datamodule import VideoDataModule
from fineact.engine.module import RecognitionModule
from fineact.engine.run import levels_from_config
from fineact.errors import FineactError


@pytest.fixture()
def damaged_gym(tiny_gym, tmp_path):
    """A copy of the tiny dataset with one truncated, one garbage, one missing and one empty video."""
    root = tmp_path / "damaged"
    shutil.copytree(tiny_gym.root, root)
    videos = sorted((root / tiny_gym.videos_dir.name).glob("*.mp4"))
    names = {}
    truncated = videos[0]
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 3])
    videos[1].write_bytes(b"this is not a video" * 50)
    videos[2].unlink()
    videos[3].write_bytes(b"")
    names.update(truncated=videos[0].name, garbage=videos[1].name, missing=videos[2].name, empty=videos[3].name)
    return root, names


def _config(ds_root, tiny_gym, out, **sections):
    base = tiny_experiment(tiny_gym, out, **sections)
    for split in ("train", "val"):
        base["data"][split] = {"annotations": str(ds_root / Path(base["data"][split]["annotations"]).name),
                               "data_root": str(ds_root / tiny_gym.videos_dir.name)}
    return load_config(base=base)


def _datamodule(cfg):
    levels = levels_from_config(cfg)
    module = RecognitionModule(OmegaConf.to_container(cfg), levels.to_dict())
    return VideoDataModule(cfg, levels, module.model), module


def test_keyed_sampler_splits_evaluation_exactly_and_pads_training():
    eval_parts = [list(KeyedSampler(11, shuffle=False, rank=r, world_size=3)) for r in range(3)]
    indices = sorted(i for part in eval_parts for i, _ in part)
    assert indices == list(range(11))  # every video once, none twice
    train_parts = [list(KeyedSampler(11, shuffle=True, seed=5, rank=r, world_size=3)) for r in range(3)]
    assert {len(p) for p in train_parts} == {4}  # same step count on every process
    assert set(i for p in train_parts for i, _ in p) == set(range(11))
    sampler = KeyedSampler(11, shuffle=True, seed=5)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first and sorted(i for i, _ in first) == list(range(11))
    sampler.set_epoch(0)
    assert list(sampler) == first  # an epoch's order and seeds are reproducible


def test_training_replaces_unreadable_videos_and_names_them(tiny_gym, damaged_gym, tmp_path):
    root, names = damaged_gym
    cfg = _config(root, tiny_gym, tmp_path / "r", data={"num_workers": 0})
    datamodule, _ = _datamodule(cfg)
    dataset = datamodule.dataset("train")
    bad_index = next(i for i, s in enumerate(dataset.samples) if Path(s.source).name == names["garbage"])
    item = dataset[(bad_index, 123)]
    assert item["label"].item() >= 0 and item["clips"].shape[1:] == (4, 24, 24)  # a replacement sample
    assert names["garbage"] in item["skipped"]
    skipped = []
    for batch in DataLoader(dataset, batch_size=4, sampler=KeyedSampler(len(dataset), shuffle=True)):
        skipped += decode_unreadable(batch["skipped"])
    assert all(video.reason for video in skipped)
    bad = {Path(video.path).name for video in skipped}
    damaged_in_train = {n for n in names.values() if n in {Path(s.source).name for s in dataset.samples}}
    assert bad == damaged_in_train
    with pytest.raises(FineactError) as info:
        datamodule.raise_if_too_many_bad(skipped)
    message = str(info.value)
    assert "could not be read, more than data.max_bad_fraction=0.01" in message
    assert all(name in message for name in bad)


def test_evaluation_marks_unreadable_videos_instead_of_counting_another(tiny_gym, damaged_gym, tmp_path):
    root, names = damaged_gym
    cfg = _config(root, tiny_gym, tmp_path / "r", data={"num_workers": 0})
    datamodule, module = _datamodule(cfg)
    dataset = datamodule.dataset("val")
    labels = [dataset[(i, 0)]["label"].item() for i in range(len(dataset))]
    damaged_in_val = [s for s in dataset.samples if Path(s.source).name in names.values()]
    assert labels.count(-1) == len(damaged_in_val)
    batch = torch.utils.data.default_collate([dataset[(i, 0)] for i in range(len(dataset))])
    module._evaluate(batch, module.val_metrics)
    results = module.val_metrics.compute()
    assert results.levels["element"].num_videos == len(dataset) - len(damaged_in_val)


def test_same_batches_with_and_without_worker_processes(tiny_gym, tmp_path):
    cfg = load_config(base=tiny_experiment(tiny_gym, tmp_path / "w"))
    datamodule, _ = _datamodule(cfg)
    dataset = datamodule.dataset("train")

    def batches(workers):
        loader = DataLoader(dataset, batch_size=4, num_workers=workers,
                            sampler=KeyedSampler(len(dataset), shuffle=True, seed=1))
        return [(b["clips"], b["flipped"], b["label"]) for b in loader]

    for a, b in zip(batches(0), batches(2), strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b))  # clips, the device's flips and the labels


def test_check_data_lists_every_bad_video(tiny_gym, damaged_gym, tmp_path, capsys):
    root, names = damaged_gym
    cfg = _config(root, tiny_gym, tmp_path / "r")
    path = tmp_path / "cfg.yaml"
    path.write_text(OmegaConf.to_yaml(cfg))
    assert main(["check-data", str(path)]) == 1
    out = capsys.readouterr().out
    for name in names.values():
        assert name in out
    assert "unreadable" in out
    # A model whose window is longer than the clips: every video is reported as too short.
    assert main(["check-data", str(path), "model.args.num_frames=16", "model.args.frame_interval=4"]) == 1
    assert "too short: " in capsys.readouterr().out
    clean = tmp_path / "clean.yaml"
    clean.write_text(OmegaConf.to_yaml(load_config(base=tiny_experiment(tiny_gym, tmp_path / "c"))))
    assert main(["check-data", str(clean)]) == 0


def test_sampler_follows_the_model_clip_specs():
    from fineact.data.sampling import sampler_for
    from fineact.data.sampling import DenseSampler, MultiPathwaySampler, SegmentSampler
    from fineact.errors import ConfigError
    from fineact.models import build_model

    assert isinstance(sampler_for(build_model("tsm_r18").clip_specs), SegmentSampler)
    dense = sampler_for(build_model("tsm_r18", frame_interval=8).clip_specs, num_clips=10)  # Kinetics protocol
    assert isinstance(dense, DenseSampler) and dense.clip_views("test") == 10 and dense.frame_interval == 8
    multi = sampler_for(build_model("hierarchical_multitask", pathway_depth=18, base_channels=4).clip_specs)
    assert isinstance(multi, MultiPathwaySampler) and multi.window == 64
    with pytest.raises(ConfigError, match="twice_sample"):
        sampler_for(build_model("tsm_r18").clip_specs, num_clips=10)


def test_loader_settings_come_from_the_config(tiny_gym, tmp_path):
    cfg = tiny_experiment(tiny_gym, tmp_path / "r", data={"num_workers": 1, "prefetch_factor": 5,
                                                          "persistent_workers": False})
    datamodule, _ = _datamodule(load_config(base=cfg))
    loader = datamodule.train_dataloader()
    assert (loader.num_workers, loader.prefetch_factor, loader.persistent_workers) == (1, 5, False)


class _Finalised:
    """Records in which process it is freed; kept in a reference cycle, so only the collector frees it."""

    def __init__(self, log):
        self.log, self.me = log, self

    def __del__(self):
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()}\n")


class _CollectingDataset(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        gc.collect()  # what any allocation-heavy worker does sooner or later
        return torch.zeros(1)


@pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(), reason="needs fork")
def test_loader_frees_the_parents_garbage_in_the_parent_not_in_workers(tmp_path):
    from fineact.engine.datamodule import ForkSafeDataLoader

    log = tmp_path / "freed.txt"
    for loader_class in (DataLoader, ForkSafeDataLoader):
        log.write_text("")
        gc.disable()  # no automatic collection: only the explicit ones decide where the garbage is freed
        try:
            _Finalised(log)  # garbage in a cycle, as decoded frames held by an abandoned generator were
            list(loader_class(_CollectingDataset(), num_workers=1, multiprocessing_context="fork"))
        finally:
            gc.enable()
        gc.collect()
        pids = {int(line) for line in log.read_text().split()}
        if loader_class is ForkSafeDataLoader:
            assert pids == {os.getpid()}   # freed once, here
        else:
            assert len(pids) == 2          # the plain loader: freed in the parent and again in the worker


def test_training_counts_only_its_own_bad_videos_and_names_each_once(tiny_gym, tmp_path, capsys):
    """Unreadable validation videos are left out of the metrics and do not count against the training split's
    data.max_bad_fraction; every unreadable video is named once, with its reason, however many epochs meet it."""
    from fineact.engine.run import train

    root = tmp_path / "data"
    shutil.copytree(tiny_gym.root, root)
    cfg = _config(root, tiny_gym, tmp_path / "run", trainer={"max_epochs": 2, "progress_bar": False})
    datamodule, _ = _datamodule(cfg)
    val_sources = [Path(s.source) for s in datamodule.dataset("val").samples]
    train_sources = [Path(s.source) for s in datamodule.dataset("train").samples]
    for path in val_sources[:2]:
        path.write_bytes(b"not a video" * 20)
    summary = train(cfg)  # 2 bad of 15 validation videos: 13%, far above the 1% a training split may lose
    out = capsys.readouterr().out
    assert summary.results.levels["element"].num_videos == len(val_sources) - 2
    assert "unreadable video(s) in data.val, left out of the validation metrics" in out
    assert [_lines_naming(out, path) for path in val_sources[:2]] == [1, 1], out
    assert "data.train" not in out

    train_sources[0].write_bytes(b"")  # 1 of 16: allowed with max_bad_fraction=0.1, and named
    cfg = _config(root, tiny_gym, tmp_path / "run2", trainer={"max_epochs": 2, "progress_bar": False},
                  data={"max_bad_fraction": 0.1})
    train(cfg)
    out = capsys.readouterr().out
    assert "1 unreadable video(s) in data.train, replaced by other samples:" in out
    assert _lines_naming(out, train_sources[0]) == 1, out


def _lines_naming(text: str, path: Path) -> int:
    return sum(str(path) in line for line in text.splitlines())


def test_pathways_transformed_once_on_their_union_equal_each_pathway_transformed(tmp_path):
    """Training clips of the hierarchical pathways come from one transform of the union of their frames; they are
    bitwise the clips of transforming each pathway's frames (same crop and flip), in the loader's layout."""
    import numpy as np

    from fineact.data.annotations import Sample
    from fineact.data.datasets import ClipDatasetOptions, VideoClipDataset
    from fineact.data.model_input import collate_batch
    from fineact.data.sampling import MultiPathwaySampler
    from fineact.data.transforms import build_train_transform
    from fineact.data.video import read_frames_multi
    from video_helpers import make_h264_video

    video = tmp_path / "clip.mp4"
    make_h264_video(video, 80, 64, 48)
    sampler = MultiPathwaySampler({"event": (4, 16), "set": (8, 8), "element": (32, 2)})
    transform = build_train_transform("multiscale", size=32, resize=40)
    dataset = VideoClipDataset([Sample(str(video), 3, (3,), sample_id="a")], sampler, transform,
                               ClipDatasetOptions(mode="train"), 32)
    for seed in range(6):
        item = dataset.keyed_item(0, seed)
        rng = np.random.default_rng(seed)  # the dataset's draws, in its order: frames, then crop and flip
        frames = read_frames_multi(video, sampler.indices(80, "train", rng))
        expected, _ = transform(frames, 3, rng)
        for name, clip in expected.items():
            assert torch.equal(item["clips"][name], clip), (seed, name)
            assert item["clips"][name].movedim(0, -1).is_contiguous()  # collate_batch stacks it without a transpose
    batch = collate_batch([dataset.keyed_item(0, s) for s in range(2)])
    assert {name: tuple(t.shape) for name, t in batch["clips"].items()} == {
        "event": (2, 3, 4, 32, 32), "set": (2, 3, 8, 32, 32), "element": (2, 3, 32, 32, 32)}
