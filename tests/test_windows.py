"""Sliding-window recognition (fineact.windows): window plans, the one-pass decode, the segment decoding, the files.

The decoding logic is checked with stub scores and a stub model whose outputs are known (it reads a frame's
colour), on videos whose truth is known; a real small trained model runs end to end in test_windows_model.py.
"""

from __future__ import annotations

import csv
import json
import math
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from fineact.config import ExperimentConfig
from fineact.data.sampling import multi_pathway_indices, segment_indices
from fineact.errors import ConfigError
from fineact.labels import LabelLevels, flat_levels
from fineact.models.base import ClipSpec
from fineact.predict import Predictor
from fineact.windows import (BACKGROUND, SegmentOptions, TruthSegment, decode_segments, frame_accuracy,
                             plan_windows, segment_recall, truth_frame_labels)
from fineact.windows import stream as stream_module
from fineact.windows.outputs import plot_timeline, write_segments_csv, write_timeline_json
from fineact.windows.recognise import window_length
from fineact.windows.segments import smooth_probabilities
from fineact.windows.stream import window_frames
from fineact.windows.training_clips import typical_clip_duration

from video_helpers import decode_all, make_h264_video

PATHWAYS = {"event": ClipSpec(4, 16), "set": ClipSpec(8, 8), "element": ClipSpec(16, 4)}


# ------------------------------------------------------------------------------------------------ plans


def test_plan_slides_the_shared_multi_pathway_window_and_covers_the_tail():
    plan = plan_windows(PATHWAYS, num_frames=203, fps=25.0, stride=8)
    assert plan.span == 64
    assert plan.starts.tolist() == list(range(0, 140, 8)) + [139]  # 203 - 64 = 139: a tail window
    for i, start in enumerate(plan.starts.tolist()):
        expected = multi_pathway_indices(64, {k: (s.num_frames, s.frame_interval) for k, s in PATHWAYS.items()},
                                         "test", start_frame=start)
        for name in PATHWAYS:
            assert plan.window(i)[name].tolist() == expected[name].tolist()
    assert plan.last_frames[-1] == 139 + 15 * 4 and plan.first_frames[0] == 0


def test_segment_models_need_a_window_length_and_read_segment_centres():
    spec = {"clip": ClipSpec(8)}
    with pytest.raises(ConfigError, match="--window"):
        plan_windows(spec, num_frames=300, fps=25.0, stride=10)
    plan = plan_windows(spec, num_frames=300, fps=25.0, stride=10, window_frames=50)
    assert plan.span == 50 and plan.starts[-1] == 250
    assert plan.window(3)["clip"].tolist() == (segment_indices(50, 8, "test") + 30).tolist()
    with pytest.raises(ConfigError, match="fixes its window"):
        plan_windows(PATHWAYS, num_frames=300, fps=25.0, stride=8, window_frames=50)


def test_window_length_defaults_to_the_recorded_training_clip_duration():
    segment = {"clip": ClipSpec(8)}
    assert window_length(segment, None, 30.0, {"seconds": 2.0, "frames": 50, "fps": 25.0}) == 60
    assert window_length(segment, 1.5, 30.0, {"seconds": 2.0}) == 45
    assert window_length(segment, None, None, {"seconds": None, "frames": 48}) == 48
    assert window_length(PATHWAYS, None, 25.0, None) is None
    with pytest.raises(ConfigError, match="records no typical training clip duration"):
        window_length(segment, None, 25.0, None)


def test_short_videos_get_one_clamped_window():
    plan = plan_windows(PATHWAYS, num_frames=40, fps=25.0, stride=8)
    assert plan.starts.tolist() == [0]
    assert all(idx.max() <= 39 for idx in plan.indices.values())


def test_typical_clip_duration_is_the_median_of_probed_clips(tmp_path):
    from fineact.data.annotations import Sample

    samples = []
    for i, frames in enumerate((20, 30, 40)):
        path = tmp_path / f"c{i}.mp4"
        make_h264_video(path, frames, 32, 32, fps=20)
        samples.append(Sample(str(path), 0))
    found = typical_clip_duration(samples)
    assert found["frames"] == 30 and found["fps"] == 20.0 and found["seconds"] == 1.5
    assert found["clips_measured"] == 3


# ------------------------------------------------------------------------------------- one-pass decoding


@pytest.fixture(scope="module")
def pattern_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("win") / "pattern.mp4"
    frames = make_h264_video(path, 150, 32, 24, fps=25, gop=12)
    return path, frames


def test_one_decode_serves_every_window_with_a_bounded_buffer(pattern_video, monkeypatch):
    path, frames = pattern_video
    opened = []
    real_open = stream_module._open_container
    monkeypatch.setattr(stream_module, "_open_container", lambda *a: opened.append(a) or real_open(*a))
    plan = plan_windows(PATHWAYS, num_frames=150, fps=25.0, stride=8)
    seen = []
    peak = {"buffered": 0}
    real_drop = stream_module._drop_before

    def watch(buffer, keep_from):
        peak["buffered"] = max(peak["buffered"], len(buffer))
        real_drop(buffer, keep_from)

    monkeypatch.setattr(stream_module, "_drop_before", watch)
    for i, got in window_frames(path, plan):
        seen.append(i)
        for name, idx in plan.window(i).items():
            assert np.array_equal(got[name], frames[idx])
    assert seen == list(range(plan.num_windows))
    assert len(opened) == 1  # one container, no re-opening per window
    assert peak["buffered"] <= plan.span + 1  # never more than one window's span of frames held


def test_a_video_shorter_than_probed_clamps_the_last_windows(pattern_video):
    path, frames = pattern_video
    plan = plan_windows(PATHWAYS, num_frames=170, fps=25.0, stride=8)  # 20 frames more than the file has
    windows = list(window_frames(path, plan))
    assert len(windows) == plan.num_windows
    last = windows[-1][1]["element"]
    assert np.array_equal(last[-1], frames[-1])


# ------------------------------------------------------------------------------------- segment decoding


def tiny_hierarchy() -> LabelLevels:
    """2 events > 4 sets > 8 elements: element e is in set e // 2, set s in event s // 2."""
    elements = [f"element {i}" for i in range(8)]
    return LabelLevels(["event", "set", "element"],
                       {"event": ["E0", "E1"], "set": [f"S{i}" for i in range(4)], "element": elements},
                       {"event": np.arange(8) // 4, "set": np.arange(8) // 2})


def stub_probabilities(window_elements: list[int], confident: float = 0.9, seed: int = 0) -> dict[str, np.ndarray]:
    """Scores of windows that show element e (or nothing, -1: uniform scores): each head puts `confident` on the
    true class, the rest at random."""
    levels = tiny_hierarchy()
    rng = np.random.default_rng(seed)
    probs = {}
    for level in levels.level_names:
        k = levels.num_classes[level]
        p = rng.uniform(0, 1, (len(window_elements), k))
        for i, e in enumerate(window_elements):
            if e >= 0:
                p[i] = (1 - confident) * p[i] / p[i].sum()
                p[i, levels.finest_to[level][e]] += confident
            else:
                p[i] = 1.0
        probs[level] = (p / p.sum(1, keepdims=True)).astype(np.float32)
    return probs


def decode(window_elements, options=None, stride=8, confident=0.9, probs=None):
    probs = probs or stub_probabilities(window_elements, confident)
    centres = np.arange(len(window_elements)) * stride + 32.0
    num_frames = int(centres[-1] + 32)
    return decode_segments(probs, centres, num_frames, 25.0, tiny_hierarchy(), options or SegmentOptions())


def test_segments_follow_known_scores_with_background_between_elements():
    truth = [3] * 10 + [-1] * 6 + [6] * 12
    timeline = decode(truth, SegmentOptions(threshold=0.55))  # above chance (1/2) of the 2-event level
    elements = timeline.level_segments["element"]
    assert [s.index for s in elements] == [3, BACKGROUND, 6]
    first, _, second = elements
    # smoothed over 5 windows, window 9 (centre 104) is the last to score element 3 above 0.55 and window 16
    # the first for element 6; boundaries lie halfway between window centres
    assert (first.start_frame, first.end_frame) == (0, 108)
    assert (second.start_frame, second.end_frame) == (156, timeline.num_frames)
    assert math.isclose(first.end_s, 108 / 25.0) and first.score > 0.8
    for seg in timeline.segments:  # every row is a consistent path or background from some level on
        if seg.labels["element"] != BACKGROUND:
            assert (seg.labels["set"], seg.labels["event"]) == {3: (1, 0), 6: (3, 1)}[seg.labels["element"]]


def test_smoothing_and_short_run_merging_remove_a_one_window_flicker():
    truth = [2] * 8 + [5] + [2] * 8
    raw = decode(truth, SegmentOptions(smooth=1, min_windows=1))
    assert [s.labels["element"] for s in raw.segments] == [2, 5, 2]
    smoothed = decode(truth, SegmentOptions(smooth=5, min_windows=1))
    assert [s.labels["element"] for s in smoothed.segments] == [2]
    merged = decode(truth, SegmentOptions(smooth=1, min_windows=2))
    assert [s.labels["element"] for s in merged.segments] == [2]


def test_every_segment_is_a_valid_path_even_when_the_heads_disagree():
    levels = tiny_hierarchy()
    n = 12
    probs = {"event": np.full((n, 2), 0.5, np.float32), "set": np.full((n, 4), 0.25, np.float32),
             "element": np.full((n, 8), 0.02, np.float32)}
    probs["event"][:] = [0.9, 0.1]         # the event head: E0
    probs["element"][:, 6] = 0.86          # the element head: element 6, which is in E1
    timeline = decode([0] * n, SegmentOptions(smooth=1, threshold=0.0), probs=probs)
    for seg in timeline.segments:
        e = seg.labels["element"]
        assert seg.labels["set"] == levels.finest_to["set"][e] and seg.labels["event"] == levels.finest_to["event"][e]
    # the independent argmaxes would say E0 + element 6: an impossible path
    assert probs["event"][0].argmax() != levels.finest_to["event"][probs["element"][0].argmax()]


def test_a_low_element_score_leaves_the_event_labelled_and_blanks_finer_levels():
    n = 10
    probs = stub_probabilities([1] * n)
    probs["element"][:] = 1 / 8  # the element head has no idea; event and set heads are sure
    timeline = decode([1] * n, SegmentOptions(threshold=0.4), probs=probs)
    assert set(timeline.window_labels["event"].tolist()) == {0}
    assert set(timeline.window_labels["set"].tolist()) == {0}
    assert set(timeline.window_labels["element"].tolist()) == {BACKGROUND}


def test_a_background_class_marks_background_at_every_level():
    levels = flat_levels(["vault", "no element", "salto"])
    probs = {"label": np.array([[0.9, 0.05, 0.05]] * 4 + [[0.1, 0.8, 0.1]] * 4 + [[0.05, 0.05, 0.9]] * 4,
                               np.float32)}
    timeline = decode_segments(probs, np.arange(12) * 4 + 8.0, 56, 25.0, levels, SegmentOptions(smooth=1))
    assert timeline.window_labels["label"].tolist() == [0] * 4 + [BACKGROUND] * 4 + [2] * 4
    with pytest.raises(ConfigError, match="not a class"):
        decode_segments(probs, np.arange(12) * 4.0, 56, 25.0, levels, SegmentOptions(background_class="rest"))


def test_smoothing_is_a_centred_box_filter():
    p = np.eye(3, dtype=np.float32)[[0, 0, 1, 0, 0]]
    q = smooth_probabilities(p, 3)
    assert np.allclose(q[2], [2 / 3, 1 / 3, 0]) and np.allclose(q[0], [1, 0, 0])
    assert np.allclose(q.sum(1), 1)


# ------------------------------------------------------------------------------------------- evaluation


def test_frame_accuracy_and_segment_recall_on_known_truth():
    levels = tiny_hierarchy()
    truth = [TruthSegment(0.0, 2.0, 3), TruthSegment(3.0, 5.0, 6)]
    frames = truth_frame_labels(truth, 150, 25.0, levels)
    assert frames["element"][49] == 3 and frames["element"][50] == BACKGROUND and frames["event"][80] == 1
    # windows (centres 32 + 8 i) say: element 3 up to frame 76, nothing, element 6 from frame 100 to 200
    timeline = decode([3] * 6 + [-1] * 3 + [6] * 12, SegmentOptions(smooth=1, threshold=0.55), stride=8)
    assert timeline.num_frames == 224
    truth = [TruthSegment(0.0, 70 / 25, 3), TruthSegment(104 / 25, 224 / 25, 6)]
    predicted = timeline.frame_labels("element")
    expected = truth_frame_labels(truth, timeline.num_frames, 25.0, levels)["element"]
    assert frame_accuracy(predicted, expected) == 1 - (6 + 4) / 224  # frames 70-75 and 100-103 are wrong
    recall, matched = segment_recall(timeline.level_segments["element"], truth, iou=0.5)
    assert recall == 1.0 and None not in matched
    recall, _ = segment_recall(timeline.level_segments["element"], [TruthSegment(0.0, 2.0, 4)], iou=0.5)
    assert recall == 0.0  # right place, wrong class


# ---------------------------------------------------------------------------------------------- outputs


def test_files_have_the_promised_columns_and_json_without_nan(tmp_path):
    timeline = decode([3] * 10 + [-1] * 6 + [6] * 12, SegmentOptions(smooth=1, threshold=0.55))
    write_segments_csv(timeline, tmp_path / "segments.csv")
    with open(tmp_path / "segments.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["start_s", "end_s", "start_frame", "end_frame", "event", "event_index", "event_score",
                             "set", "set_index", "set_score", "element", "element_index", "element_score"]
    assert [r["element"] for r in rows] == ["element 3", "element 6"] and rows[1]["event"] == "E1"
    write_timeline_json(timeline, tmp_path / "timeline.json", "v.mp4", {"span_frames": 64})

    def refuse(constant):
        raise AssertionError(f"{constant} in JSON")

    data = json.loads((tmp_path / "timeline.json").read_text(), parse_constant=refuse)
    assert data["segments"] == [{k: _json_value(v) for k, v in r.items()} for r in rows]
    assert len(data["windows"]["labels"]["element"]) == 28
    plot = plot_timeline(timeline, tmp_path / "timeline.png", title="stub")
    assert plot.stat().st_size > 5000
    with_truth = plot_timeline(timeline, tmp_path / "truth.png", truth={"element": [(0.0, 4.0, 3), (6.0, 9.0, 6)]})
    assert with_truth.read_bytes() != plot.read_bytes()


def _json_value(text: str):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


# ------------------------------------------------------------------------ the whole path with a stub model


COLOURS = {"red": (230, 20, 20), "green": (20, 230, 20), "blue": (20, 20, 230)}
NEUTRAL = (124, 116, 104)  # the ImageNet mean colour: 0 in every channel after normalisation, no colour wins


class ColourModule(nn.Module):
    """A 'trained model' whose outputs are known: it says which primary colour dominates the clip."""

    def __init__(self, clip_specs):
        super().__init__()
        cfg = OmegaConf.structured(ExperimentConfig)
        cfg.data.resize, cfg.data.crop_size = [24], 24
        self.cfg = cfg
        self.levels = flat_levels(list(COLOURS))
        self.trained_levels = ["label"]
        self.model = nn.Module()
        self.model.clip_specs = clip_specs
        self.calls = 0

    def aggregate_views(self, clips):
        self.calls += 1
        clip = clips if isinstance(clips, torch.Tensor) else next(iter(clips.values()))
        means = clip.mean(dim=(1, 3, 4, 5))  # (B, C): mean normalised value of each colour channel
        return {"label": (4 * (means - means.mean(1, keepdim=True))).softmax(-1)}


def colour_video(path, plan: list[tuple[str | None, int]], fps: int = 25) -> list[TruthSegment]:
    """Solid-colour stretches (None: grey, no class); returns the truth in seconds."""
    truth, frame = [], 0
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for colour, count in plan:
            rgb = np.full((32, 32, 3), COLOURS[colour] if colour else NEUTRAL, np.uint8)
            for _ in range(count):
                container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
            if colour:
                truth.append(TruthSegment(frame / fps, (frame + count) / fps, list(COLOURS).index(colour)))
            frame += count
        container.mux(stream.encode(None))
    return truth


def test_predict_video_finds_known_segments_with_a_stub_model(tmp_path):
    truth = colour_video(tmp_path / "routine.mp4", [("red", 60), (None, 30), ("green", 70), ("blue", 50)])
    predictor = Predictor(ColourModule({"clip": ClipSpec(8, 2)}))
    result = predictor.predict_video(tmp_path / "routine.mp4", stride=4, batch_size=8,
                                     options=SegmentOptions(smooth=1, threshold=0.5))
    timeline = result.timeline
    assert result.probabilities["label"].shape == (len(range(0, 210 - 16 + 1, 4)) + 1, 3)
    assert predictor.module.calls == math.ceil(result.probabilities["label"].shape[0] / 8)  # batched
    shown = [s for s in timeline.segments if not s.is_background]
    assert [s.names["label"] for s in shown] == ["red", "green", "blue"]
    expected = truth_frame_labels(truth, 210, 25.0, predictor.module.levels)["label"]
    assert frame_accuracy(timeline.frame_labels("label"), expected) > 0.9
    assert segment_recall(timeline.level_segments["label"], truth, iou=0.5)[0] == 1.0
    for seg, true in zip(shown, truth):  # boundaries within half a window (8 frames) of the truth
        assert abs(seg.start_frame - round(true.start_s * 25)) <= 8 and abs(seg.end_frame - round(true.end_s * 25)) <= 8
    files = result.write(tmp_path / "out", render="annotated.mp4")
    assert {p.name for p in files.values()} == {"timeline.json", "segments.csv", "timeline.png",
                                                "window_scores.safetensors", "annotated.mp4"}
    rendered = decode_all(files["render"])
    assert len(rendered) == 210 and rendered.shape[2] >= 480  # every frame, enlarged for readable text


@pytest.mark.parametrize("crops", [1, 3])
def test_transforming_each_frame_once_gives_the_window_clip_the_test_pipeline_gives(pattern_video, crops):
    from fineact.data.test_views import stack_views
    from fineact.data.transforms import build_test_transform

    path, frames = pattern_video
    transform = build_test_transform(16, 20, crops)
    rng = np.random.default_rng(0)
    plan = plan_windows({"clip": ClipSpec(8, 2)}, num_frames=150, fps=25.0, stride=16)

    def prepare(rgb):
        return stack_views({"f": rgb[None]}, None, 1, transform, rng)[0]["f"]

    for i, got in window_frames(path, plan, prepare=prepare, combine=lambda f: torch.cat(f, dim=-3)):
        whole = stack_views({"clip": frames[plan.window(i)["clip"]]}, None, 1, transform, rng)[0]["clip"]
        assert got["clip"].shape == whole.shape == (crops, 3, 8, 16, 16)
        assert torch.allclose(got["clip"], whole, atol=1e-5)
