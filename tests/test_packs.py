"""Packs (`fineact pack`, data.<split>.shards): same clips and metrics as the files, bad records named, packs of
other data refused, interrupted packing resumed, and no torchvision on the way."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("litdata")

from conftest import tiny_experiment  # noqa: E402
from fineact.config import load_config  # noqa: E402
from fineact.data import pack_writer  # noqa: E402
from fineact.data.annotations import Sample  # noqa: E402
from fineact.data.model_input import flip_marked  # noqa: E402
from fineact.data.pack_writer import pack_split  # noqa: E402
from fineact.data.packs import sample_of  # noqa: E402
from fineact.data.unreadable import decode  # noqa: E402
from fineact.data.video import probe_video, read_frames  # noqa: E402
from fineact.engine.datamodule import VideoDataModule  # noqa: E402
from fineact.engine.model_factory import build_from_config  # noqa: E402
from fineact.engine.run import levels_from_config, train  # noqa: E402
from fineact.errors import ConfigError  # noqa: E402

SHARD = 20_000  # bytes: the tiny clips (~5 KB) make several shards


@pytest.fixture(scope="module")
def packs(tiny_gym, tmp_path_factory):
    folder = tmp_path_factory.mktemp("packs")
    cfg = load_config(base=tiny_experiment(tiny_gym, folder / "run"))
    for split in ("train", "val"):
        pack_split(cfg, split, folder / split, SHARD, workers=1, progress=False)
    return folder


def _pack_config(tiny_gym, out, packs, **sections):
    data = {"train": {"shards": str(packs / "train")}, "val": {"shards": str(packs / "val")}}
    return load_config(base=tiny_experiment(tiny_gym, out, data={**data, **sections.pop("data", {})}, **sections))


def _datamodule(cfg):
    levels = levels_from_config(cfg)
    return VideoDataModule(cfg, levels, build_from_config(cfg, levels)[0])


def _clips_by_sample(loader):
    """{sample index: its clip as the model sees it (the device's flip done) and its label}."""
    def seen(batch):  # evaluation batches carry no flips
        return flip_marked(batch["clips"], batch["flipped"]) if "flipped" in batch else batch["clips"]

    return {int(i): (clip, label) for batch in loader for i, clip, label in zip(batch["index"], seen(batch),
                                                                              batch["label"])}


def test_a_pack_gives_every_sample_the_clip_its_file_gives_each_epoch(tiny_gym, packs, tmp_path):
    files = _datamodule(load_config(base=tiny_experiment(tiny_gym, tmp_path / "f")))
    pack = _datamodule(_pack_config(tiny_gym, tmp_path / "p", packs))
    for epoch in (0, 1):
        from_files = files.train_dataloader()
        from_files.sampler.set_epoch(epoch)
        from_pack = pack.train_dataloader()
        from_pack.epoch_of = lambda: epoch
        expected, found = _clips_by_sample(from_files), _clips_by_sample(from_pack)
        assert sorted(found) == sorted(expected) == list(range(16))  # every sample once, none twice
        assert all(torch.equal(found[i][0], expected[i][0]) and found[i][1] == expected[i][1]
                   for i in expected)  # same frames, crop, flip and label (same key)
    assert set(_clips_by_sample(pack.eval_dataloader("val"))) == set(range(15))


def test_training_from_the_pack_matches_training_from_the_files(tiny_gym, packs, tmp_path):
    # One step per epoch (batch = the whole split): the order of samples inside the batch, the only thing
    # that differs, changes the gradient by float rounding only (no dropout: its mask follows batch positions).
    sections = {"data": {"batch_size": 16}, "trainer": {"max_epochs": 2},
                "model": {"name": "slowonly_r50", "args": {"depth": 18, "base_channels": 4, "num_frames": 4,
                                                           "frame_interval": 4, "dropout": 0.0}}}
    from_files = train(load_config(base=tiny_experiment(tiny_gym, tmp_path / "files", **sections)))
    from_pack = train(_pack_config(tiny_gym, tmp_path / "pack", packs, **sections))
    weights_a = torch.load(from_files.last_checkpoint, weights_only=True)["state_dict"]
    weights_b = torch.load(from_pack.last_checkpoint, weights_only=True)["state_dict"]
    for name, value in weights_a.items():
        if value.is_floating_point():
            assert torch.allclose(value, weights_b[name], atol=1e-5, rtol=1e-4), name
    a, b = from_files.results.headline()["element"], from_pack.results.headline()["element"]
    assert a["num_videos"] == b["num_videos"] == 15
    for key, value in a.items():
        assert value == pytest.approx(b[key], abs=1e-6), key


def test_a_window_of_a_longer_video_is_reencoded_to_just_that_window(tiny_gym):
    video = sorted(Path(tiny_gym.videos_dir).glob("*.mp4"))[0]
    window = Sample(source=str(video), label=3, start_frame=5, end_frame=21, sample_id="w", line=7,
                    annotation_file="spans.txt")
    _, record, source_bytes = pack_writer.encoded_sample((0, window, {}))
    meta = json.loads(record["meta"])
    assert (meta["encoding"], meta["num_frames"], meta["window"]) == ("libx264", 16, [5, 21])
    assert 0 < source_bytes < video.stat().st_size
    sample = sample_of(record, "pack")
    assert probe_video_bytes(sample) == 16
    original = read_frames(video, range(5, 21)).astype(np.float32)
    packed = read_frames(sample.source, range(16)).astype(np.float32)
    h, w = packed.shape[1:3]
    assert np.abs(packed - original[:, :h, :w]).mean() < 8  # H.264 at crf 20: close, not bit-exact


def probe_video_bytes(sample):
    import io

    import av

    with av.open(io.BytesIO(sample.source.data)) as container:
        return sum(1 for _ in container.decode(video=0))


def _corrupt_record(pack: Path, clip: Path) -> None:
    """Overwrite the container header of `clip`'s bytes inside the pack's chunk files."""
    data = clip.read_bytes()
    for chunk in pack.glob("chunk-*.bin"):
        content = chunk.read_bytes()
        at = content.find(data)
        if at >= 0:
            chunk.write_bytes(content[:at] + b"\x00" * 64 + content[at + 64:])
            return
    raise AssertionError(f"{clip} not found in {pack}")


def test_a_corrupt_record_is_skipped_and_named(tiny_gym, tmp_path):
    cfg = load_config(base=tiny_experiment(tiny_gym, tmp_path / "run"))
    pack_split(cfg, "val", tmp_path / "val", SHARD, progress=False)
    lines = Path(tiny_gym.val_list).read_text().split()
    bad = Path(tiny_gym.videos_dir) / f"{lines[0]}.mp4"
    _corrupt_record(tmp_path / "val", bad)
    module = _datamodule(_pack_config(tiny_gym, tmp_path / "p", tmp_path))
    batches = list(module.eval_dataloader("val"))
    skipped = [video for batch in batches for video in decode(batch["skipped"])]
    assert len(skipped) == 1 and str(bad) in skipped[0].path and "record 0 of pack" in skipped[0].path
    assert "not a readable video" in skipped[0].reason
    labels = torch.cat([batch["label"] for batch in batches])
    assert len(labels) == 15 and (labels == -1).sum() == 1  # left out of the metrics, the others kept


def test_a_pack_built_from_other_data_is_refused(tiny_gym, packs, tmp_path):
    other = tmp_path / "other_train.txt"
    other.write_text("\n".join(Path(tiny_gym.train_list).read_text().splitlines()[1:]) + "\n")
    cfg = _pack_config(tiny_gym, tmp_path / "p", packs,
                       data={"train": {"shards": str(packs / "train"), "annotations": str(other),
                                       "data_root": str(tiny_gym.videos_dir)}})
    with pytest.raises(ConfigError, match=r"data.train.annotations: the pack was made from another file"):
        _datamodule(cfg).dataset("train")
    cfg = _pack_config(tiny_gym, tmp_path / "q", packs, data={"start_index": 0})
    with pytest.raises(ConfigError, match=r"data.start_index: pack made with 1, this config has 0"):
        _datamodule(cfg).dataset("train")


def test_interrupted_packing_resumes_after_the_last_complete_shard(tiny_gym, tmp_path, monkeypatch):
    cfg = load_config(base=tiny_experiment(tiny_gym, tmp_path / "run"))
    encode, calls = pack_writer.encoded_sample, []

    def interrupted(job):
        if len(calls) == 9:
            raise KeyboardInterrupt
        calls.append(job[0])
        return encode(job)

    monkeypatch.setattr(pack_writer, "encoded_sample", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pack_split(cfg, "train", tmp_path / "pack", SHARD, progress=False)
    progress = json.loads((tmp_path / "pack" / pack_writer.PROGRESS).read_text())
    resume_at = progress["shards"][-1]["end"]
    assert 0 < resume_at < 9
    monkeypatch.setattr(pack_writer, "encoded_sample", lambda job: calls.append(job[0]) or encode(job))
    calls.clear()
    index = pack_split(cfg, "train", tmp_path / "pack", SHARD, progress=False)
    assert calls == list(range(resume_at, 16))  # only what was not committed is encoded again
    assert index.num_samples == 16 and not (tmp_path / "pack" / pack_writer.PROGRESS).exists()
    from litdata import StreamingDataset

    records = list(StreamingDataset(str(tmp_path / "pack")))
    assert [int(r["position"]) for r in records] == list(range(16))
    sources = [json.loads(r["meta"])["source"] for r in records]
    assert all(bytes(r["video"]) == Path(s).read_bytes() for r, s in zip(records, sources))  # whole clips: copies


def test_packing_and_reading_a_pack_never_import_torchvision(tiny_gym, tmp_path):
    # LitData's package requires torchvision, whose wheel cannot be imported with the CPU torch.
    config = tmp_path / "c.yaml"
    from omegaconf import OmegaConf

    config.write_text(OmegaConf.to_yaml(OmegaConf.create(tiny_experiment(tiny_gym, tmp_path / "run"))))
    script = f"""
import sys
from fineact.cli import main
assert main(["pack", {str(config)!r}, "--split", "val", "--out", {str(tmp_path / "val")!r}]) == 0
from fineact.config import load_config
from fineact.engine.datamodule import VideoDataModule
from fineact.engine.model_factory import build_from_config
from fineact.engine.run import levels_from_config
cfg = load_config({str(config)!r}, ["data.val.shards={tmp_path / 'val'}"])
levels = levels_from_config(cfg)
next(iter(VideoDataModule(cfg, levels, build_from_config(cfg, levels)[0]).eval_dataloader("val")))
print("torchvision" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "False"


class RecordTrainingSamples(__import__("lightning").Callback):
    def __init__(self):
        self.seen = {}

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.seen.setdefault(trainer.current_epoch, []).extend(batch["index"].tolist())


class StopAfterFirstEpoch(__import__("lightning").Callback):
    def on_train_epoch_end(self, trainer, module):
        trainer.should_stop = True


def test_a_resumed_run_reads_the_epochs_an_uninterrupted_run_reads(tiny_gym, packs, tmp_path):
    # Lightning keeps LitData's loader state in the checkpoint; resuming after epoch 0 must start epoch 1's
    # own order and keys, not replay epoch 0's.
    whole, first, resumed = RecordTrainingSamples(), RecordTrainingSamples(), RecordTrainingSamples()
    train(_pack_config(tiny_gym, tmp_path / "whole", packs, trainer={"max_epochs": 2}), callbacks=[whole])
    train(_pack_config(tiny_gym, tmp_path / "cut", packs, trainer={"max_epochs": 2}),
          callbacks=[first, StopAfterFirstEpoch()])
    train(_pack_config(tiny_gym, tmp_path / "cut", packs, trainer={"max_epochs": 2}), resume=True,
          callbacks=[resumed])
    assert list(first.seen) == [0] and list(resumed.seen) == [1]
    assert first.seen[0] == whole.seen[0] and resumed.seen[1] == whole.seen[1] != whole.seen[0]
    weights = [torch.load(tmp_path / run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
               for run in ("whole", "cut")]
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
