"""fineact.data.video: frame-accurate reads (equal to a full sequential decode), frame folders, errors."""

import os

import numpy as np
import pytest
from PIL import Image
from video_helpers import decode_all, make_h264_video

from fineact.data import video as video_module
from fineact.data.video import VideoInfo, probe_video, read_frames, read_frames_multi
from fineact.errors import ConfigError, FineactError, VideoError

NUM_FRAMES, WIDTH, HEIGHT = 120, 64, 48


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """name -> (path, frames of a full sequential decode) for the containers and timings we must handle."""
    folder = tmp_path_factory.mktemp("videos")
    specs = {
        "mp4": ("clip.mp4", {}),  # B-frames, GOP 24 > a 16-frame sampling stride
        "mp4_offset": ("offset.mp4", {"pts_offset": 1000}),  # first pts is 40 s, not 0
        "mp4_long_gop": ("long_gop.mp4", {"gop": 250, "bframes": 3}),  # one keyframe: seeking never helps
        "mkv_offset": ("offset.mkv", {"pts_offset": 37}),  # no sample index: decoded sequentially
        "ts": ("clip.ts", {}),  # MPEG-TS: imprecise seeking, pts start at 1.4 s
        "mp4_vfr": ("vfr.mp4", {"frame_pts": [i + 3 * (i >= 50) + 2 * (i >= 80) for i in range(NUM_FRAMES)]}),
        "mkv_vfr": ("vfr.mkv", {"frame_pts": [i + 3 * (i >= 50) for i in range(NUM_FRAMES)]}),
    }
    made = {}
    for name, (filename, options) in specs.items():
        path = folder / filename
        made[name] = (path, make_h264_video(path, NUM_FRAMES, WIDTH, HEIGHT, **options))
    return made


def _index_sets(seed: int, count: int = 12):
    """Random index sets: sparse and dense, sorted and shuffled, with repeats."""
    rng = np.random.default_rng(seed)
    sets = [
        [0],
        [NUM_FRAMES - 1],
        [23, 24, 25],  # around a keyframe (B-frames before it are decoded after it)
        list(range(0, NUM_FRAMES, 16)),  # sparse 4x16-like, stride below the GOP
        list(range(30, 94)),  # dense window
        [100, 5, 100, 47, 5],  # unsorted with repeats
    ]
    for _ in range(count):
        size = int(rng.integers(1, 20))
        indices = rng.integers(0, NUM_FRAMES, size)
        sets.append(sorted(indices.tolist()) if rng.random() < 0.5 else indices.tolist())
    return sets


def test_frames_are_distinguishable(videos):
    _, frames = videos["mp4"]
    flat = frames.reshape(len(frames), -1).astype(np.int16)
    assert len(frames) == NUM_FRAMES
    assert all(np.abs(flat[i] - flat[i + 1]).mean() > 5 for i in range(NUM_FRAMES - 1))


@pytest.mark.parametrize("name", ["mp4", "mp4_offset", "mp4_long_gop", "mkv_offset", "ts", "mp4_vfr", "mkv_vfr"])
def test_read_frames_equals_sequential_decode(videos, name):
    path, truth = videos[name]
    for indices in _index_sets(seed=len(name)):
        got = read_frames(path, indices)
        assert got.dtype == np.uint8 and got.shape == (len(indices), HEIGHT, WIDTH, 3)
        np.testing.assert_array_equal(got, truth[indices], err_msg=f"{name} {indices}")


def test_numpy_indices_and_string_path(videos):
    path, truth = videos["mp4"]
    indices = np.array([7, 3, 99], dtype=np.int32)
    np.testing.assert_array_equal(read_frames(str(path), indices), truth[indices])


def test_sparse_read_seeks_and_decodes_less(videos):
    path, truth = videos["mp4"]
    frames, stats = video_module._read_video_frames(path, np.array([2, 100, 119]))
    assert stats.mode == "seek" and stats.seeks >= 1
    assert stats.decoded < NUM_FRAMES // 2
    for i in (2, 100, 119):
        np.testing.assert_array_equal(frames[i], truth[i])


def test_dense_read_stops_after_last_frame(videos):
    path, _ = videos["mp4"]
    _, stats = video_module._read_video_frames(path, np.arange(0, 20))
    assert stats.seeks == 0 and stats.decoded <= 20


def test_long_gop_never_seeks_but_skips_unneeded_b_frames(videos):
    path, truth = videos["mp4_long_gop"]
    frames, stats = video_module._read_video_frames(path, np.array([10, 110]))
    assert stats.seeks == 0
    assert stats.decoded < 0.8 * 111  # non-reference B-frames that are not requested are never decoded
    np.testing.assert_array_equal(frames[110], truth[110])


@pytest.mark.parametrize("name", ["mp4_vfr", "mkv_vfr", "mkv_offset", "ts"])
def test_unproven_constant_rate_decodes_sequentially(videos, name):
    path, _ = videos[name]
    _, stats = video_module._read_video_frames(path, np.array([5, 110]))
    assert stats.mode == "sequential"


def test_read_frames_multi_decodes_union_once(videos, monkeypatch):
    path, truth = videos["mp4"]
    calls = []
    original = video_module._read_video_frames
    monkeypatch.setattr(video_module, "_read_video_frames", lambda *a, **k: calls.append(a) or original(*a, **k))
    lists = {"event": [0, 16, 32, 48], "set": list(range(0, 64, 8)), "element": list(range(0, 64, 2))}
    got = read_frames_multi(path, lists)
    assert len(calls) == 1 and sorted(calls[0][1].tolist()) == sorted(set(sum(lists.values(), [])))
    for name, indices in lists.items():
        np.testing.assert_array_equal(got[name], truth[indices])


def test_empty_index_list(videos):
    path, _ = videos["mp4"]
    assert read_frames(path, []).shape == (0, HEIGHT, WIDTH, 3)


def test_probe_video(videos):
    path, _ = videos["mp4_offset"]
    assert probe_video(path) == VideoInfo(NUM_FRAMES, 25.0, WIDTH, HEIGHT, False, "container")
    mkv_info = probe_video(videos["mkv_offset"][0])
    assert (mkv_info.num_frames, mkv_info.num_frames_from) == (NUM_FRAMES, "packets")
    exact = probe_video(videos["ts"][0], exact=True)
    assert (exact.num_frames, exact.num_frames_from) == (NUM_FRAMES, "decoded")


# ----------------------------------------------------------------------------------------- frame folders


@pytest.fixture(scope="module")
def frame_folder(tmp_path_factory, videos):
    """SSv1-style folder: 00001.jpg ... (JPEG, 1-based) and a 0-based PNG folder of the same frames."""
    _, frames = videos["mp4"]
    jpeg_dir = tmp_path_factory.mktemp("ssv1_clip")
    png_dir = tmp_path_factory.mktemp("png_clip")
    for i, frame in enumerate(frames[:30]):
        Image.fromarray(frame).save(jpeg_dir / f"{i + 1:05d}.jpg", quality=90)
        Image.fromarray(frame).save(png_dir / f"frame_{i}.png")
    return jpeg_dir, png_dir, frames[:30]


def test_frame_folder_jpeg_matches_pillow(frame_folder):
    jpeg_dir, _, _ = frame_folder
    indices = [29, 0, 7, 7, 15]
    got = read_frames(jpeg_dir, indices, filename_template="{:05d}.jpg", start_index=1)
    expected = np.stack([np.asarray(Image.open(jpeg_dir / f"{i + 1:05d}.jpg").convert("RGB")) for i in indices])
    np.testing.assert_array_equal(got, expected)


def test_frame_folder_png_is_lossless_and_zero_based(frame_folder):
    _, png_dir, frames = frame_folder
    got = read_frames(png_dir, [3, 1], filename_template="frame_{}.png", start_index=0)
    np.testing.assert_array_equal(got, frames[[3, 1]])


def test_frame_folder_probe_and_multi(frame_folder):
    jpeg_dir, _, _ = frame_folder
    info = probe_video(jpeg_dir, filename_template="{:05d}.jpg")
    assert info == VideoInfo(30, None, WIDTH, HEIGHT, True, "files")
    both = read_frames_multi(jpeg_dir, {"a": [0, 2], "b": [2]}, filename_template="{:05d}.jpg")
    np.testing.assert_array_equal(both["a"][1], both["b"][0])


def test_frame_folder_past_end(frame_folder):
    jpeg_dir, _, _ = frame_folder
    with pytest.raises(VideoError, match=r"frame 30 requested but only 30 frames are available") as error:
        read_frames(jpeg_dir, [0, 30], filename_template="{:05d}.jpg")
    assert str(jpeg_dir) in str(error.value)


def test_frame_folder_wrong_template(frame_folder):
    jpeg_dir, _, _ = frame_folder
    with pytest.raises(VideoError, match=r"no frames matching template 'img_\{:05d\}.jpg'.*img_00001.jpg"):
        read_frames(jpeg_dir, [0])
    with pytest.raises(ConfigError, match="filename_template"):
        read_frames(jpeg_dir, [0], filename_template="{name}.jpg")


def test_frame_folder_gap_and_bad_image(tmp_path):
    for i in (1, 3):
        Image.new("RGB", (8, 6)).save(tmp_path / f"img_{i:05d}.jpg")
    with pytest.raises(VideoError, match=r"img_00002.jpg \(frame 1\) is missing; .* gap at frame 1"):
        read_frames(tmp_path, [1])
    (tmp_path / "img_00002.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(VideoError, match=r"img_00002.jpg: unreadable image"):
        read_frames(tmp_path, [1])


# ------------------------------------------------------------------------------------------------ errors


def test_missing_file(tmp_path):
    with pytest.raises(VideoError, match=r"missing.mp4: no such file or directory"):
        read_frames(tmp_path / "missing.mp4", [0])
    with pytest.raises(VideoError, match="no such file"):
        probe_video(tmp_path / "missing.mp4")


def test_directory_given_as_video_and_file_as_folder(tmp_path, videos):
    with pytest.raises(VideoError, match="expected a video file, found a directory"):
        read_frames(tmp_path, [0], kind="video")
    with pytest.raises(VideoError, match="expected a frame folder, found a file"):
        read_frames(videos["mp4"][0], [0], kind="frames")
    with pytest.raises(ConfigError, match="kind must be one of"):
        read_frames(tmp_path, [0], kind="movie")


def test_unreadable_permissions(tmp_path, videos, monkeypatch):
    path = videos["mp4"][0]
    monkeypatch.setattr(video_module.os, "access", lambda *args: False)  # root ignores chmod, so fake it
    with pytest.raises(VideoError, match=r"clip.mp4: permission denied"):
        read_frames(path, [0])


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read a chmod 000 file")
def test_unreadable_permissions_for_real(tmp_path, videos):
    path = tmp_path / "locked.mp4"
    path.write_bytes(videos["mp4"][0].read_bytes())
    path.chmod(0)
    with pytest.raises(VideoError, match="permission denied"):
        read_frames(path, [0])


def test_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are not the frames you are looking for\n" * 20)
    with pytest.raises(VideoError, match=r"notes.mp4: not a readable video file"):
        read_frames(path, [0])


def test_no_video_stream(tmp_path):
    import av

    path = tmp_path / "audio.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    with pytest.raises(VideoError, match=r"audio.mp4: contains no video stream \(found: audio\)"):
        read_frames(path, [0])


@pytest.fixture(scope="module")
def faststart_bytes(tmp_path_factory):
    """An MP4 with its index first, so cutting it leaves an openable but truncated file."""
    path = tmp_path_factory.mktemp("faststart") / "fs.mp4"
    make_h264_video(path, 48, WIDTH, HEIGHT, container_options={"movflags": "faststart"})
    data = path.read_bytes()
    return data, data.index(b"mdat") + 4


def test_truncated_file(tmp_path, faststart_bytes):
    data, data_start = faststart_bytes
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: data_start + (len(data) - data_start) // 2])
    with pytest.raises(VideoError, match=r"cut.mp4: .*truncated or corrupt"):
        read_frames(cut, [40])


def test_corrupt_frame_data(tmp_path, faststart_bytes):
    data, data_start = faststart_bytes
    path = tmp_path / "zeroed.mp4"
    path.write_bytes(data[:data_start] + bytes(len(data) - data_start))  # index intact, frame data zeroed
    with pytest.raises(VideoError, match=r"zeroed.mp4: truncated or corrupt video, decoding failed"):
        read_frames(path, [10])


def test_truncated_without_index(tmp_path, videos):
    data = videos["mp4"][0].read_bytes()
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])  # the index ("moov") comes last by default: it is gone
    with pytest.raises(VideoError, match=r"half.mp4: not a readable video file"):
        read_frames(path, [0])


def test_zero_frames(tmp_path, faststart_bytes):
    data, data_start = faststart_bytes
    path = tmp_path / "empty.mp4"
    path.write_bytes(data[:data_start])  # header and index, no frame data
    with pytest.raises(VideoError, match=r"empty.mp4: contains no decodable video frames"):
        read_frames(path, [0])
    with pytest.raises(VideoError, match="no decodable video frames"):
        probe_video(path, exact=True)


@pytest.mark.parametrize("name", ["mp4", "mkv_offset", "mp4_vfr"])
def test_index_past_end(videos, name):
    path, _ = videos[name]
    with pytest.raises(VideoError, match=rf"frame 130 requested but only {NUM_FRAMES} frames are available") as error:
        read_frames(path, [3, 130])
    assert str(path) in str(error.value)


def test_bad_indices(videos):
    path, _ = videos["mp4"]
    with pytest.raises(VideoError, match="must be >= 0, got -1"):
        read_frames(path, [0, -1])
    with pytest.raises(VideoError, match="integers"):
        read_frames(path, [0.5])


def test_errors_are_fineact_errors_not_pyav(tmp_path):
    path = tmp_path / "garbage.mkv"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(FineactError):
        read_frames(path, [0])


def test_decode_all_helper_matches_reader(videos):
    path, truth = videos["mp4"]
    np.testing.assert_array_equal(decode_all(path), truth)
    np.testing.assert_array_equal(read_frames(path, range(NUM_FRAMES)), truth)


class _LateSeekingContainer:
    """Wraps a PyAV container so that its first ``late_seeks`` seeks land 2 GOPs after the requested time."""

    def __init__(self, container, stream, late_seeks: int):
        self._container, self._late_seeks = container, late_seeks
        self._two_gops = int(48 / (stream.time_base * stream.average_rate))

    def seek(self, offset, **kwargs):
        if self._late_seeks > 0:
            self._late_seeks -= 1
            offset += self._two_gops
        return self._container.seek(offset, **kwargs)

    def __getattr__(self, name):
        return getattr(self._container, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._container.__exit__(*exc)


@pytest.mark.parametrize(("late_seeks", "mode"), [(1, "seek"), (100, "sequential")])
def test_seek_landing_after_target_is_retried_then_abandoned(videos, monkeypatch, late_seeks, mode):
    path, truth = videos["mp4"]
    open_container = video_module._open_container

    def open_late(*args):
        container, stream = open_container(*args)
        return _LateSeekingContainer(container, stream, late_seeks), stream

    monkeypatch.setattr(video_module, "_open_container", open_late)
    indices = np.array([3, 60, 110])
    frames, stats = video_module._read_video_frames(path, indices)
    assert stats.mode == mode
    assert stats.seeks >= 2 or mode == "sequential"  # "seek": the late landing was retried further back
    for i in indices:
        np.testing.assert_array_equal(frames[i], truth[i])


def _decoded_frames_alive() -> int:
    import gc

    import av
    return sum(type(o) is av.VideoFrame for o in gc.get_objects())  # type(): no attribute lookups


@pytest.mark.parametrize("name", ["mp4", "mp4_long_gop", "mkv_offset", "ts", "mp4_vfr"])
def test_no_decoded_frame_outlives_a_read_without_the_garbage_collector(videos, name, tmp_path, faststart_bytes):
    """Decoded frames are freed when a read returns or fails, not left in reference cycles for the collector:
    a frame collected in a forked DataLoader worker joins FFmpeg threads that exist only in the parent (crash)."""
    import gc

    path, _ = videos[name]
    data, data_start = faststart_bytes
    corrupt = tmp_path / "zeroed.mp4"
    corrupt.write_bytes(data[:data_start] + bytes(len(data) - data_start))
    gc.collect()
    gc.disable()
    try:
        read_frames(path, [0, 5, 60, 100, 119])  # sparse: seeks where the container allows
        read_frames(path, list(range(30, 40)))
        with pytest.raises(VideoError):
            read_frames(path, [3, 130])       # past the end
        with pytest.raises(VideoError):
            read_frames(corrupt, [10])         # decoding fails
        assert _decoded_frames_alive() == 0
    finally:
        gc.enable()


def test_frame_union_takes_each_list_and_refuses_a_transform_that_changes_the_frames():
    import torch

    from fineact.data.video import FrameUnion
    from fineact.errors import ConfigError

    union = FrameUnion(np.zeros((3, 4, 4, 3), np.uint8), {"a": np.array([0, 2, 2]), "b": np.array([1])})
    clip = torch.arange(3 * 3 * 4 * 4, dtype=torch.int32).reshape(3, 4, 4, 3).movedim(-1, 0)  # (C, T, H, W)
    taken = union.take(clip)
    assert torch.equal(taken["a"], clip[:, [0, 2, 2]]) and torch.equal(taken["b"], clip[:, [1]])
    with pytest.raises(ConfigError, match=r"must map the 3 frames .* same T .* found Tensor \(3, 2, 4, 4\)"):
        union.take(clip[:, :2])
    with pytest.raises(ConfigError, match=r"found Tensor \(1, 3, 3, 4, 4\)"):
        union.take(clip[None])
