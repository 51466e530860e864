"""FineGym from untrimmed videos + the official annotation JSON: spans, rounding, schema errors, missing videos."""

import json
import warnings
from fractions import Fraction

import numpy as np
import pytest

from fineact.data.annotations import read_finegym_untrimmed_split
from fineact.data.finegym_json import frame_span, load_finegym_annotations
from fineact.data.untrimmed import UntrimmedSplits
from fineact.data.video import read_frames
from fineact.data.video_pool import read_window
from fineact.demo.untrimmed import MEN_EVENT, write_untrimmed_dataset
from fineact.errors import AnnotationError


@pytest.fixture(scope="module")
def gym(tmp_path_factory):
    return write_untrimmed_dataset(tmp_path_factory.mktemp("gym_untrimmed"), num_videos=4, duration=30,
                                   fps=(25, 30), size=32, missing=1, seed=2)


def _read(gym, split):
    return read_finegym_untrimmed_split(gym.split_files[split], gym.videos_dir, gym.annotation_json, num_classes=16)


# -- spans and rounding --------------------------------------------------------------------------------------

def test_frame_span_is_ceil_of_exact_decimals():
    assert frame_span(12.28, 14.0, 25) == (307, 350)           # 12.28 * 25 = 307 exactly: frame 307 starts there
    assert frame_span(12.281, 13.999, 25) == (308, 350)        # just after a frame start: the next frame
    assert frame_span(0.1 + 0.2, 1.0, 10) == (4, 10)           # 0.30000000000000004 is not 0.3: honest ceil
    assert frame_span(Fraction(1001, 1000), 2.002, Fraction(30000, 1001)) == (30, 60)  # NTSC rate stays exact


def test_split_lines_become_the_json_spans_never_the_id_integers(gym):
    samples = _read(gym, "train")
    truth = {e.clip_id: e for e in gym.elements("train")}
    assert [s.sample_id for s in samples] == sorted(truth)
    for sample in samples:
        element = truth[sample.sample_id]
        assert (sample.start_seconds, sample.end_seconds) == (element.start, element.end)
        assert sample.label == element.label and sample.source.endswith(gym.video(sample.sample_id[:11]).path.name)
        assert sample.start_seconds != int(sample.start_seconds)  # the truncated id times would be wrong


def test_windows_use_each_videos_own_rate(gym):
    splits = UntrimmedSplits.scan({"train": _read(gym, "train"), "val": _read(gym, "val")})
    truth = {e.clip_id: e for e in gym.elements()}
    rates = set()
    for split in ("train", "val"):
        for sample in splits.samples(split):
            element = truth[sample.sample_id]
            assert (sample.start_frame, sample.end_frame) == (element.first_frame, element.end_frame)
            rates.add(splits.states[sample.source].fps)
    assert rates == {25, 30}


def test_vault_stages_make_one_element_covering_all_of_them(tmp_path):
    document = {"vid00000001": {"E_000010_000030": {"event": 1, "timestamps": [[10.5, 30.25]], "segments": {
        "A_0001_0006": {"stages": 3, "timestamps": [[1.2, 2.4], [2.4, 4.1], [4.3, 6.85]]}}}}}
    (tmp_path / "gym.json").write_text(json.dumps(document))
    (tmp_path / "split.txt").write_text("vid00000001_E_000010_000030_A_0001_0006 3\n")
    sample, = read_finegym_untrimmed_split(tmp_path / "split.txt", tmp_path, tmp_path / "gym.json")
    assert (sample.start_seconds, sample.end_seconds) == (11.7, 17.35)  # 10.5 + 1.2 .. 10.5 + 6.85, exactly


# -- bad input: named errors ---------------------------------------------------------------------------------

def _write(tmp_path, document, lines):
    (tmp_path / "gym.json").write_text(json.dumps(document))
    (tmp_path / "split.txt").write_text("".join(f"{line}\n" for line in lines))
    return tmp_path / "split.txt", tmp_path / "gym.json"


_GOOD = {"vidA": {"E_000001_000020": {"event": 2, "timestamps": [[1.5, 20.0]],
                                      "segments": {"A_0001_0003": {"stages": 1, "timestamps": [[1.0, 3.5]]}}},
                  "E_000030_000040": {"event": MEN_EVENT, "timestamps": [[30.0, 40.0]], "segments": None}}}


def test_null_segments_are_skipped_where_no_line_refers_to_them(tmp_path):
    split, document = _write(tmp_path, _GOOD, ["vidA_E_000001_000020_A_0001_0003 0"])
    assert len(read_finegym_untrimmed_split(split, tmp_path, document)) == 1
    split, document = _write(tmp_path, _GOOD, ["vidA_E_000001_000020_A_0001_0003 0",
                                                "vidA_E_000030_000040_A_0001_0003 0"])
    with pytest.raises(AnnotationError, match=r"split\.txt:2: .*'segments': null"):
        read_finegym_untrimmed_split(split, tmp_path, document)


@pytest.mark.parametrize("clip_id, message", [
    ("vidB_E_000001_000020_A_0001_0003", "has no video 'vidB'"),
    ("vidA_E_000002_000020_A_0001_0003", "has no event 'E_000002_000020'"),
    ("vidA_E_000001_000020_A_0002_0003", "has no segment 'A_0002_0003'"),
])
def test_an_id_absent_from_the_json_names_the_split_file_line(tmp_path, clip_id, message):
    split, document = _write(tmp_path, _GOOD, ["vidA_E_000001_000020_A_0001_0003 0", clip_id + " 1"])
    with pytest.raises(AnnotationError, match=rf"split\.txt:2: clip id '{clip_id}'.*{message}"):
        read_finegym_untrimmed_split(split, tmp_path, document)


@pytest.mark.parametrize("mutate, key", [
    (lambda d: d["vidA"]["E_000001_000020"].pop("timestamps"), r"\['vidA'\]\['E_000001_000020'\]: expected the key "
                                                               r"'timestamps'"),
    (lambda d: d["vidA"]["E_000001_000020"].update(timestamps=[[5.0, 1.0]]), r"\['timestamps'\]\['0'\]: expected "
                                                                             r"end >= start"),
    (lambda d: d["vidA"]["E_000001_000020"]["segments"]["A_0001_0003"].update(stages=3),
     r"\['segments'\]\['A_0001_0003'\]\['timestamps'\]: expected 3 \[start, end\] pairs"),
    (lambda d: d["vidA"]["E_000001_000020"].update(event="FX"), r"\['event'\]: expected an integer"),
    (lambda d: d.update(vidA=[1, 2]), r"\['vidA'\]: expected an object"),
])
def test_a_json_not_in_the_schema_names_the_path_and_key(tmp_path, mutate, key):
    document = json.loads(json.dumps(_GOOD))
    mutate(document)
    _, path = _write(tmp_path, document, [])
    with pytest.raises(AnnotationError, match=rf"gym\.json: at .*{key}"):
        load_finegym_annotations(path)


def test_invalid_json_names_the_line(tmp_path):
    (tmp_path / "gym.json").write_text('{"vidA":\n {"E_1": [1,}\n}')
    with pytest.raises(AnnotationError, match=r"gym\.json:2: expected the FineGym annotation JSON"):
        load_finegym_annotations(tmp_path / "gym.json")


def test_a_timestamp_past_the_end_of_its_video_names_sample_video_and_length(gym, tmp_path):
    video = gym.videos[0]
    document = {video.youtube_id: {"E_000001_000099": {"event": 2, "timestamps": [[1.0, 99.0]], "segments": {
        "A_0000_0090": {"stages": 1, "timestamps": [[0.5, 90.0]]}}}}}
    split, path = _write(tmp_path, document, [f"{video.youtube_id}_E_000001_000099_A_0000_0090 0"])
    samples = read_finegym_untrimmed_split(split, gym.videos_dir, path)
    with pytest.raises(AnnotationError, match=rf"split\.txt:1: sample '{video.youtube_id}_E_000001_000099_A_0000_0090'"
                                              rf".* past the end of its video .*{video.path.name}, which is "
                                              rf"{video.duration:.3f} s long \({video.num_frames} frames at 25 fps\)"):
        UntrimmedSplits.scan({"train": samples})


# -- missing and unreadable videos ---------------------------------------------------------------------------

def test_missing_videos_are_counted_named_and_left_out(gym, tmp_path):
    splits = UntrimmedSplits.scan({"train": _read(gym, "train"), "val": _read(gym, "val")})
    missing = gym.videos[-1]
    row, = splits.table.rows
    assert row["youtube_id"] == missing.youtube_id and row["status"] == "missing"
    for split in ("train", "val"):
        expected = sum(e.split == split for e in missing.elements)
        assert row["samples"][split] == expected
        total = splits.table.totals[split]
        assert total == {"samples": len(gym.elements(split)), "present": len(gym.elements(split, present_only=True)),
                         "left_out": expected}
        assert [s.sample_id for s in splits.samples(split)] == [e.clip_id for e in gym.elements(split, True)]
    coverage = splits.coverage(missing.elements[0].split)
    assert coverage["missing_videos"] == [missing.youtube_id] and coverage["left_out"] == len(missing.elements)
    assert missing.youtube_id in splits.table.format()
    written = json.loads(splits.table.write(tmp_path / "missing_videos.json").read_text())
    assert written["videos"][0]["youtube_id"] == missing.youtube_id
    with pytest.raises(Exception, match=r"data.max_bad_fraction=0.01\. To train on what is present"):
        splits.raise_if_too_many_missing(missing.elements[0].split, 0.01)
    splits.raise_if_too_many_missing(missing.elements[0].split, 0.99)


def test_a_corrupt_untrimmed_video_is_unreadable_up_front(gym, tmp_path):
    video = gym.videos[0]
    corrupt = tmp_path / "videos"
    corrupt.mkdir()
    data = video.path.read_bytes()
    (corrupt / video.path.name).write_bytes(data[: len(data) // 2])  # moov at the end (PyAV's mp4): header lost
    samples = read_finegym_untrimmed_split(gym.split_files[video.elements[0].split], corrupt, gym.annotation_json,
                                           num_classes=16)
    splits = UntrimmedSplits.scan({"train": samples})
    states = {s.youtube_id: s.status for s in splits.states.values()}
    assert states[video.youtube_id] == "unreadable"
    assert any(r["youtube_id"] == video.youtube_id and r["status"] == "unreadable" for r in splits.table.rows)


# -- reading windows -----------------------------------------------------------------------------------------

def test_pooled_window_reads_equal_the_reference_reader(gym):
    video = gym.videos[1]
    rng = np.random.default_rng(0)
    for _ in range(6):
        start = int(rng.integers(0, video.num_frames - 64))
        indices = np.arange(start, start + 64, int(rng.choice([2, 16])))
        assert np.array_equal(read_window(video.path, indices), read_frames(video.path, indices))


def test_a_container_without_a_provable_rate_warns_once_with_the_remux_command(tmp_path):
    truth = write_untrimmed_dataset(tmp_path, num_videos=1, duration=12, size=32, extension="mkv", men_events=False)
    path = truth.videos[0].path
    with pytest.warns(UserWarning, match=r"ffmpeg -i .*\.mkv' -c copy .*\.mp4'"):
        first = read_window(path, [10, 200])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(read_window(path, [10, 200]), first)  # no second warning
    assert np.array_equal(first, read_frames(path, [10, 200]))


def test_the_reference_example_vault_spans_all_three_stages(tmp_path):
    """The example of shared/data/finegym/annotation_format.md: 2407.32 + 3.12 .. 2407.32 + 7.48 seconds."""
    document = {"AbCdEfGhIjK": {
        "E_002407_002435": {"event": 1, "timestamps": [[2407.32, 2435.28]], "segments": {
            "A_0003_0007": {"stages": 3, "timestamps": [[3.12, 4.40], [4.40, 5.96], [5.96, 7.48]]}}}},
        "ZyXwVuTsRqP": {"E_000851_000923": {"event": 6, "timestamps": [[851.64, 923.00]], "segments": None}}}
    split, path = _write(tmp_path, document, ["AbCdEfGhIjK_E_002407_002435_A_0003_0007 0"])
    sample, = read_finegym_untrimmed_split(split, tmp_path, path)
    assert (sample.start_seconds, sample.end_seconds) == (2410.44, 2414.80)
    assert frame_span(sample.start_seconds, sample.end_seconds, Fraction(30000, 1001)) == (72241, 72372)
