"""Sliding windows with a real, small trained model, end to end: train -> export (with the training clip
duration recorded) -> `fineact predict --windows` on a generated untrimmed routine -> the files.

The model is trained for 2 epochs on a tiny dataset, so its accuracy is not checked here (the accuracy on known
truth is measured with the demo's model: benchmarks and `fineact demo`); what is checked is everything a user
relies on: windows over the whole video, one row per segment with consistent labels, the timeline files.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from fineact.config import load_config
from fineact.demo.routine import generate_routine, score_timeline
from fineact.engine.run import train
from fineact.predict import load_model

from conftest import tiny_experiment


@pytest.fixture(scope="module")
def trained_export(tiny_gym, tmp_path_factory):
    out = tmp_path_factory.mktemp("windows_model")
    summary = train(load_config(base=tiny_experiment(tiny_gym, out / "run")))
    return summary


@pytest.mark.slow
def test_training_records_the_typical_clip_duration(trained_export, tiny_gym):
    meta = json.loads(trained_export.exported.with_suffix(".json").read_text())
    assert meta["training_clips"]["frames"] == 32 and meta["training_clips"]["fps"] == 25.0  # tiny_gym's clips
    assert meta["training_clips"]["seconds"] == pytest.approx(32 / 25)
    assert load_model(trained_export.best_checkpoint).training_clips == meta["training_clips"]  # from a .ckpt too


@pytest.mark.slow
def test_predict_windows_cli_on_a_generated_routine(trained_export, tmp_path):
    video = generate_routine(tmp_path / "routine", duration=12.0, seed=4, size=32)
    out = tmp_path / "timeline"
    done = subprocess.run([sys.executable, "-m", "fineact.cli", "predict", "--checkpoint", str(trained_export.exported),
                           str(video.path), "--windows", "--stride", "4", "--out", str(out), "--threshold", "0",
                           "--no-progress"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    timeline = json.loads((out / "timeline.json").read_text())
    assert timeline["num_frames"] == video.num_frames and timeline["window"]["span_frames"] == 16  # 4 x 4 clip
    assert timeline["window"]["count"] == len(timeline["windows"]["centre_frame"]) > video.num_frames // 4 - 5
    with open(out / "segments.csv") as handle:
        rows = list(csv.DictReader(handle))
    # threshold 0: no background, so the segments tile the whole video, in order
    assert int(rows[0]["start_frame"]) == 0 and int(rows[-1]["end_frame"]) == video.num_frames
    assert all(a["end_frame"] == b["start_frame"] for a, b in zip(rows, rows[1:]))
    assert {"element", "element_index", "element_score"} <= set(rows[0])
    assert (out / "timeline.png").stat().st_size > 5000


@pytest.mark.slow
def test_a_real_model_on_known_truth_gives_metrics_in_range(trained_export, tmp_path):
    predictor = load_model(trained_export.exported)
    video = generate_routine(tmp_path / "routine", duration=10.0, seed=5, size=32)
    result = predictor.predict_video(video.path, stride=8)
    levels = predictor.module.levels.select(predictor.module.trained_levels)
    scores = score_timeline(result.timeline, video, levels)
    assert set(scores) == {"element", "element_segments"}
    assert 0.0 <= scores["element"]["frame_accuracy"] <= 1.0
    assert scores["element_segments"]["true"] == len(video.elements) > 0


@pytest.mark.slow
def test_window_options_a_model_cannot_use_are_refused_by_name(trained_export, tmp_path, capsys):
    from fineact.cli import main

    video = generate_routine(tmp_path / "routine", duration=10.0, seed=6, size=32)
    common = ["predict", "--checkpoint", str(trained_export.exported), str(video.path), "--windows",
              "--out", str(tmp_path / "out"), "--no-progress"]
    assert main([*common, "--window", "2.0"]) == 2
    assert "--window applies only to segment models" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stride_zero:  # argparse's own refusal (an argument type)
        main([*common, "--stride", "0"])
    assert stride_zero.value.code == 2
    assert "argument --stride: expected a positive integer, found '0'" in capsys.readouterr().err
    assert main([*common, "--threshold", "1.5"]) == 2
    assert "threshold must be a probability in [0, 1], got 1.5" in capsys.readouterr().err
