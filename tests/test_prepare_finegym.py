"""`fineact prepare finegym` and the same evaluation read two ways: trimmed clips vs untrimmed videos + JSON."""

import json

import numpy as np
import pytest
import yaml

from fineact.cli import main
from fineact.data.video import probe_video, read_frames
from fineact.data.video_pool import read_window
from fineact.demo.untrimmed import write_untrimmed_dataset

from conftest import tiny_experiment


@pytest.fixture(scope="module")
def gym(tmp_path_factory):
    return write_untrimmed_dataset(tmp_path_factory.mktemp("gym_prepare") / "data", num_videos=5, duration=30,
                                   fps=(25, 30), size=32, missing=1, seed=4)


@pytest.fixture(scope="module")
def prepared(gym):
    out = gym.root.parent / "trimmed"
    status = main(["prepare", "finegym", "--annotations", str(gym.annotation_json), "--videos", str(gym.videos_dir),
                   "--splits", str(gym.split_files["train"]), str(gym.split_files["val"]), "--out", str(out),
                   "--workers", "2", "--no-progress"])
    assert status == 0
    return out


def test_prepare_writes_every_present_element_and_the_lists(gym, prepared):
    clips = sorted(p.stem for p in (prepared / "videos").glob("*.mp4"))
    assert clips == sorted(e.clip_id for e in gym.elements(present_only=True))
    for split, path in gym.split_files.items():
        listed = (prepared / path.name).read_text().splitlines()
        assert listed == [f"{e.clip_id} {e.label}" for e in gym.elements(split, present_only=True)]
        videos = (prepared / f"{path.stem}_videos.txt").read_text().splitlines()
        assert videos == [f"{e.clip_id}.mp4 {e.label}" for e in gym.elements(split, present_only=True)]
    table = json.loads((prepared / "missing_videos.json").read_text())
    assert [row["youtube_id"] for row in table["videos"]] == gym.missing


def test_trimmed_clips_hold_the_frames_of_the_untrimmed_path(gym, prepared):
    for element in gym.elements(present_only=True):
        video = gym.video(element.clip_id[:11])
        clip = prepared / "videos" / f"{element.clip_id}.mp4"
        info = probe_video(clip)
        assert info.num_frames == element.num_frames and round(info.fps) == video.fps  # native rate and size
        trimmed = read_frames(clip, np.arange(element.num_frames)).astype(np.int16)
        errors = {}
        for shift in (-1, 0, 1):  # trimmed frame k against untrimmed frame first + shift + k
            k = np.arange(element.num_frames)
            k = k[(element.first_frame + shift + k >= 0) & (element.first_frame + shift + k < video.num_frames)]
            untrimmed = read_window(video.path, element.first_frame + shift + k).astype(np.int16)
            errors[shift] = np.abs(untrimmed - trimmed[k]).mean()
        assert errors[0] < 3.0  # re-encoding noise at CRF 18 on the arenas' grain: a few grey levels
        assert errors[0] < min(errors[-1], errors[1])


def test_prepare_resumes_skipping_finished_clips(gym, prepared, capsys):
    victim = next((prepared / "videos").glob("*.mp4"))
    victim.unlink()
    args = ["prepare", "finegym", "--annotations", str(gym.annotation_json), "--videos", str(gym.videos_dir),
            "--splits", str(gym.split_files["train"]), str(gym.split_files["val"]), "--out", str(prepared),
            "--workers", "1", "--no-progress"]
    assert main(args) == 0
    total = len(gym.elements(present_only=True))
    assert f"1 clip(s) written, {total - 1} already there" in capsys.readouterr().out
    assert victim.is_file() and not list((prepared / "videos").glob(".*partial*"))


def test_check_data_prints_the_missing_video_table(gym, prepared, tmp_path, capsys):
    config = tmp_path / "untrimmed.yaml"
    config.write_text(yaml.safe_dump(_config(gym, prepared, tmp_path / "run", untrimmed=True)))
    assert main(["check-data", str(config)]) == 1  # a missing video is a finding
    out = capsys.readouterr().out
    assert gym.missing[0] in out and "missing" in out and "samples present" in out


def _config(gym, prepared, out_dir, untrimmed: bool) -> dict:
    class Paths:
        categories_file, set_categories_file = gym.categories_file, gym.set_categories_file
        train_list = gym.split_files["train"] if untrimmed else prepared / gym.split_files["train"].name
        val_list = gym.split_files["val"] if untrimmed else prepared / gym.split_files["val"].name
        videos_dir = gym.videos_dir if untrimmed else prepared / "videos"

    data = {"max_bad_fraction": 0.9, **({"finegym_annotations": str(gym.annotation_json)} if untrimmed else {})}
    config = tiny_experiment(Paths, out_dir, data=data)
    for split in ("train", "val"):
        config["data"][split] = {key: str(value) for key, value in config["data"][split].items()}
    config["data"].update(categories=str(gym.categories_file), set_categories=str(gym.set_categories_file))
    return config


def test_one_model_scores_the_same_on_trimmed_clips_and_on_untrimmed_videos(gym, prepared, tmp_path):
    trimmed_cfg, untrimmed_cfg = tmp_path / "trimmed.yaml", tmp_path / "untrimmed.yaml"
    trimmed_cfg.write_text(yaml.safe_dump(_config(gym, prepared, tmp_path / "run", untrimmed=False)))
    untrimmed_cfg.write_text(yaml.safe_dump(_config(gym, prepared, tmp_path / "run", untrimmed=True)))
    assert main(["train", str(trimmed_cfg)]) == 0
    checkpoint = tmp_path / "run" / "checkpoints" / "best.ckpt"
    results = {}
    for name, config in (("trimmed", trimmed_cfg), ("untrimmed", untrimmed_cfg)):
        assert main(["test", str(config), "--checkpoint", str(checkpoint), "--split", "val", "--overwrite"]) == 0
        results[name] = json.loads((checkpoint.parent / "results_val.json").read_text())
    present = len(gym.elements("val", present_only=True))
    trimmed, untrimmed = (results[k]["metrics"]["element"] for k in ("trimmed", "untrimmed"))
    assert trimmed["num_videos"] == untrimmed["num_videos"] == present
    assert abs(trimmed["top1"] - untrimmed["top1"]) <= 1 / present + 1e-9  # at most one video flips (encoding noise)
    coverage = results["untrimmed"]["coverage"]
    assert coverage["num_videos"] == present and coverage["split_total"] == len(gym.elements("val"))
    missing_val = [v for v in gym.missing if any(e.split == "val" for e in gym.video(v).elements)]
    assert coverage["missing_videos"] == missing_val
