"""fineact.data.sampling: index arithmetic pinned by hand-computed examples, plus properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fineact.data.sampling import (
    DenseSampler,
    MultiPathwaySampler,
    SegmentSampler,
    dense_indices,
    multi_pathway_indices,
    segment_indices,
    window_starts,
)
from fineact.errors import ConfigError, VideoError

PAPER_PATHWAYS = {"event": (4, 16), "set": (8, 8), "element": (32, 2)}


def rng(seed=0):
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------------- segment (TSN/TSM)


def test_segment_test_mode_takes_segment_centres():
    # tick = 80 / 8 = 10 -> int(5 + 10k)
    assert segment_indices(80, 8, "test").tolist() == [5, 15, 25, 35, 45, 55, 65, 75]
    # tick = 50 / 8 = 6.25 -> int(3.125 + 6.25k)
    assert segment_indices(50, 8, "test").tolist() == [3, 9, 15, 21, 28, 34, 40, 46]


def test_segment_twice_appends_the_segment_starts():
    indices = segment_indices(80, 8, "test", twice=True)
    assert indices.tolist() == [5, 15, 25, 35, 45, 55, 65, 75, 0, 10, 20, 30, 40, 50, 60, 70]
    assert segment_indices(50, 4, "test", twice=True).tolist() == [6, 18, 31, 43, 0, 12, 25, 37]  # tick 12.5


def test_segment_train_draws_one_frame_per_integer_segment():
    # avg = 83 // 8 = 10: segment k covers [10k, 10k + 10); frames 80..82 are never drawn (as in TSM)
    for seed in range(30):
        indices = segment_indices(83, 8, "train", rng(seed))
        assert all(10 * k <= i < 10 * k + 10 for k, i in enumerate(indices))
    drawn = np.concatenate([segment_indices(83, 8, "train", rng(seed)) for seed in range(200)])
    assert set(drawn[:: 8] % 10) == set(range(10))  # every offset inside segment 0 occurs


def test_segment_train_ignores_twice():
    assert len(segment_indices(80, 8, "train", rng(), twice=True)) == 8


def test_segment_short_video_policies():
    # 5 frames, 8 segments: segment k takes frame k, then loop or clamp
    assert segment_indices(5, 8, "test", short_video="loop").tolist() == [0, 1, 2, 3, 4, 0, 1, 2]
    assert segment_indices(5, 8, "test", short_video="clamp").tolist() == [0, 1, 2, 3, 4, 4, 4, 4]
    assert segment_indices(5, 8, "train", rng(), short_video="clamp").tolist() == [0, 1, 2, 3, 4, 4, 4, 4]


def test_segment_start_frame_shifts_into_the_window():
    assert segment_indices(80, 8, "test", start_frame=100).tolist() == [105, 115, 125, 135, 145, 155, 165, 175]


# ------------------------------------------------------------------------------------------------ dense


def test_dense_test_single_clip_is_centred():
    # span = 8 * 8 = 64, room = 100 - 64 + 1 = 37, start = int(37 / 2) = 18
    assert dense_indices(100, 8, 8, 1, "test").tolist() == [18, 26, 34, 42, 50, 58, 66, 74]


def test_dense_test_clips_centred_in_equal_parts():
    # span 64, room = 300 - 64 + 1 = 237, avg = 79: starts int(39.5 + 79k) = 39, 118, 197
    clips = dense_indices(300, 4, 16, 3, "test").reshape(3, 4)
    assert clips.tolist() == [[39, 55, 71, 87], [118, 134, 150, 166], [197, 213, 229, 245]]


def test_dense_train_start_covers_exactly_where_the_window_fits():
    # span 2 * 32 = 64 in 70 frames: start uniform in [0, 6]
    starts = {int(dense_indices(70, 32, 2, 1, "train", rng(seed))[0]) for seed in range(300)}
    assert starts == set(range(7))


def test_dense_train_several_clips_one_per_part():
    # room = 100 - 16 + 1 = 85, avg = 42.5: clip 0 starts in [0, 42), clip 1 in [42, 85)
    for seed in range(50):
        first, second = dense_indices(100, 4, 4, 2, "train", rng(seed)).reshape(2, 4)[:, 0]
        assert 0 <= first < 42 <= second < 85


def test_dense_short_video_policies():
    # span 4 * 16 = 64 > 40 frames: start 0, frames 0, 16, 32, 48 -> 48 maps to 8 (loop) or 39 (clamp)
    assert dense_indices(40, 4, 16, 1, "test").tolist() == [0, 16, 32, 8]
    assert dense_indices(40, 4, 16, 1, "train", rng(), short_video="clamp").tolist() == [0, 16, 32, 39]


def test_window_starts_formula():
    assert window_starts(64, 64, 1, "test").tolist() == [0]
    assert window_starts(64, 64, 1, "train", rng()).tolist() == [0]
    assert window_starts(10, 64, 4, "test").tolist() == [0, 0, 0, 0]
    # room 101, avg 10.1: int(5.05 + 10.1k)
    assert window_starts(164, 64, 10, "test").tolist() == [5, 15, 25, 35, 45, 55, 65, 75, 85, 95]


# ----------------------------------------------------------------------------------------- multi-pathway


def test_multi_pathway_shares_one_window():
    # window 64; test start = int((100 - 64 + 1) / 2) = 18; every pathway starts at the window start
    got = multi_pathway_indices(100, PAPER_PATHWAYS, "test")
    assert got["event"].tolist() == [18, 34, 50, 66]
    assert got["set"].tolist() == [18, 26, 34, 42, 50, 58, 66, 74]
    assert got["element"].tolist() == list(range(18, 82, 2))


def test_multi_pathway_shorter_pathway_is_centred():
    # window max(4*16, 4*4) = 64; the 4x4 pathway spans 16, offset (64 - 16) // 2 = 24
    got = multi_pathway_indices(64, {"long": (4, 16), "short": (4, 4)}, "test")
    assert got["long"].tolist() == [0, 16, 32, 48]
    assert got["short"].tolist() == [24, 28, 32, 36]


def test_multi_pathway_train_window_is_shared_and_random():
    for seed in range(20):
        got = multi_pathway_indices(200, PAPER_PATHWAYS, "train", rng(seed))
        start = got["event"][0]
        assert 0 <= start <= 200 - 64
        assert got["set"][0] == got["element"][0] == start
        assert set(got["event"]) <= set(got["set"]) <= set(got["element"])  # one decode serves all three
    starts = {int(multi_pathway_indices(200, PAPER_PATHWAYS, "train", rng(s))["event"][0]) for s in range(20)}
    assert len(starts) > 10


def test_multi_pathway_test_clips():
    # room = 164 - 64 + 1 = 101, 2 clips: avg 50.5, starts int(25.25) = 25, int(75.75) = 75
    got = multi_pathway_indices(164, PAPER_PATHWAYS, "test", num_clips=2)
    assert got["event"].reshape(2, 4).tolist() == [[25, 41, 57, 73], [75, 91, 107, 123]]
    assert got["element"].shape == (64,)


def test_multi_pathway_short_video():
    # 45 frames < window 64: start 0, frames 0, 16, 32, 48 -> 48 clamps to 44; then shifted by start_frame
    got = multi_pathway_indices(45, {"event": (4, 16)}, "test", short_video="clamp", start_frame=10)
    assert got["event"].tolist() == [10, 26, 42, 54]


# ----------------------------------------------------------------------------------------------- samplers


def test_samplers_return_dicts_and_clip_views():
    segments = SegmentSampler(8, twice=True)
    assert segments.indices(80, "test")["clip"].shape == (16,)
    assert (segments.clip_views("test"), segments.clip_views("train")) == (2, 1)
    dense = DenseSampler(8, 8, num_clips=10)
    assert dense.indices(300, "test")["clip"].shape == (80,)
    assert dense.indices(300, "train", rng())["clip"].shape == (8,)
    assert (dense.clip_views("test"), dense.clip_views("train")) == (10, 1)
    multi = MultiPathwaySampler(PAPER_PATHWAYS, num_clips=2)
    shapes = {name: indices.shape for name, indices in multi.indices(300, "test").items()}
    assert shapes == {"event": (8,), "set": (16,), "element": (64,)}
    assert multi.window == 64 and multi.frames_per_view == {"event": 4, "set": 8, "element": 32}
    np.testing.assert_array_equal(
        multi.indices(300, "test")["set"], multi_pathway_indices(300, PAPER_PATHWAYS, "test", num_clips=2)["set"]
    )


def test_sampler_copies_its_pathways():
    pathways = {"a": (4, 16)}
    sampler = MultiPathwaySampler(pathways)
    pathways["b"] = (8, 8)
    assert list(sampler.pathways) == ["a"]


# ------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: segment_indices(80, 0, "test"), "num_segments must be a positive integer"),
        (lambda: segment_indices(80, 8, "val"), "mode must be one of"),
        (lambda: dense_indices(80, 8, 8, short_video="wrap"), "short_video must be one of"),
        (lambda: multi_pathway_indices(80, {}, "test"), "non-empty mapping"),
        (lambda: multi_pathway_indices(80, {"a": (4,)}, "test"), r"pathway 'a' must be \(T, interval\)"),
        (lambda: DenseSampler(8, 0), "frame_interval must be a positive integer"),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


def test_empty_video():
    with pytest.raises(VideoError, match="video with 0 frames"):
        segment_indices(0, 8, "test")


# ------------------------------------------------------------------------------------------- properties

frames = st.integers(1, 400)
modes = st.sampled_from(["train", "test"])
policies = st.sampled_from(["loop", "clamp"])


@settings(max_examples=60, deadline=None)
@given(frames, st.integers(1, 16), modes, policies, st.integers(0, 2**32 - 1), st.integers(0, 50))
def test_segment_properties(num_frames, num_segments, mode, policy, seed, start):
    first = segment_indices(num_frames, num_segments, mode, rng(seed), start_frame=start, short_video=policy)
    again = segment_indices(num_frames, num_segments, mode, rng(seed), start_frame=start, short_video=policy)
    np.testing.assert_array_equal(first, again)
    assert first.shape == (num_segments,) and first.dtype == np.int64
    assert first.min() >= start and first.max() < start + num_frames
    if num_frames >= num_segments or policy == "clamp":
        assert np.all(np.diff(first) >= 0)


@settings(max_examples=60, deadline=None)
@given(frames, st.integers(1, 32), st.integers(1, 16), st.integers(1, 4), modes, st.integers(0, 2**32 - 1))
def test_dense_properties(num_frames, clip_len, interval, num_clips, mode, seed):
    args = (num_frames, clip_len, interval, num_clips, mode)
    indices = dense_indices(*args, rng(seed), short_video="clamp")
    np.testing.assert_array_equal(indices, dense_indices(*args, rng(seed), short_video="clamp"))
    assert indices.shape == (num_clips * clip_len,)
    assert indices.min() >= 0 and indices.max() < num_frames
    assert np.all(np.diff(indices.reshape(num_clips, clip_len), axis=1) >= 0)  # sorted within a clip
    if num_frames >= clip_len * interval:
        assert np.all(np.diff(indices.reshape(num_clips, clip_len), axis=1) == interval)


@settings(max_examples=40, deadline=None)
@given(frames, modes, policies, st.integers(0, 2**32 - 1))
def test_multi_pathway_properties(num_frames, mode, policy, seed):
    got = multi_pathway_indices(num_frames, PAPER_PATHWAYS, mode, rng(seed), short_video=policy)
    for name, (t, _) in PAPER_PATHWAYS.items():
        assert got[name].shape == (t,)
        assert got[name].min() >= 0 and got[name].max() < num_frames
        if num_frames >= 64 or policy == "clamp":
            assert np.all(np.diff(got[name]) >= 0)


def test_train_samples_differ_across_seeds():
    segment_draws = {tuple(segment_indices(300, 8, "train", rng(seed))) for seed in range(10)}
    dense_draws = {tuple(dense_indices(300, 8, 8, 1, "train", rng(seed))) for seed in range(10)}
    assert len(segment_draws) > 5 and len(dense_draws) > 5


def test_test_mode_needs_no_rng():
    assert segment_indices(80, 8, "test", rng=None).tolist() == segment_indices(80, 8, "test", rng(5)).tolist()
