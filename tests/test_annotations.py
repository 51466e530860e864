"""Annotation readers on the real excerpt files in shared/data, round trips, and every malformed-input message."""

import json
import os
import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fineact.data.annotations import (
    FORMATS,
    Sample,
    parse_finegym_clip_id,
    read_annotations,
    read_diving48_json,
    read_finegym_split,
    read_frame_list,
    read_kinetics_csv,
    read_sthv1_csv,
    read_sthv1_frame_list,
    read_video_list,
    write_finegym_split,
    write_frame_list,
    write_video_list,
)
from fineact.errors import AnnotationError, ConfigError
from fineact.labels import finegym_levels, read_class_names


def raises_at(path, line, message=""):
    """pytest.raises for an AnnotationError whose message starts with 'path:line' and contains `message`."""
    return pytest.raises(AnnotationError, match=re.escape(f"{path}:{line}") + r"\b.*" + message)


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def gym_levels(shared_data):
    finegym = shared_data / "finegym"
    return {name: finegym_levels(finegym / f"{name}_categories.txt", finegym / "set_categories.txt")
            for name in ("gym99", "gym288")}


@pytest.fixture(scope="module")
def sthv1_names(shared_data):
    return read_class_names(shared_data / "something_something" / "sthv1_label_map_mmaction2.txt")


@pytest.fixture(scope="module")
def kinetics_names(shared_data):
    return read_class_names(shared_data / "kinetics400" / "label_map.txt")


# ---------------------------------------------------------------------------------------------------------
# FineGym split files (real excerpts)
# ---------------------------------------------------------------------------------------------------------

def split_finegym_examples(path):
    """The excerpt file holds the first lines of several official split files under '# <file>' headers."""
    sections, current = {}, None
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            current = line.split()[1].rsplit("/", 1)[-1]
            sections[current] = []
        elif line.strip():
            sections[current].append(line)
    return sections


def test_finegym_excerpts_parse_per_split_file(shared_data, gym_levels, tmp_path):
    sections = split_finegym_examples(shared_data / "finegym" / "annotation_list_examples.txt")
    assert len(sections) == 5
    for name, lines in sections.items():
        path = write(tmp_path / name, "\n".join(lines) + "\n")
        levels = gym_levels["gym288" if name.startswith("gym288") else "gym99"]
        samples = read_finegym_split(path, tmp_path / "clips", levels=levels)
        assert len(samples) == 5
        for sample, line in zip(samples, lines):
            clip_id, label = line.split()
            assert sample.sample_id == clip_id and sample.label == int(label) and sample.labels == (int(label),)
            assert sample.source == os.path.join(tmp_path, "clips", clip_id + ".mp4")
            assert not sample.is_frame_folder and sample.annotation_file == str(path)


def test_finegym_excerpt_file_as_a_whole(shared_data, gym_levels, tmp_path):
    path = shared_data / "finegym" / "annotation_list_examples.txt"
    # Comment headers are skipped; the v1.1 section repeats the v1.0 lines, which is reported as a duplicate.
    with raises_at(path, 8, "A0xAXXysHUo_E_002184_002237_A_0035_0036.*again \\(first at line 2\\)"):
        read_finegym_split(path, tmp_path)
    first = read_finegym_split(write(tmp_path / "head.txt", "".join(path.read_text().splitlines(True)[:6])),
                               tmp_path, levels=gym_levels["gym99"])
    assert [s.line for s in first] == [2, 3, 4, 5, 6]
    assert gym_levels["gym99"].derive(first[0].label)["set"] is not None


def test_gym288_labels_exceed_gym99(shared_data, gym_levels, tmp_path):
    sections = split_finegym_examples(shared_data / "finegym" / "annotation_list_examples.txt")
    path = write(tmp_path / "val288.txt", "\n".join(sections["gym288_val_element.txt"]))
    with raises_at(path, 1, "expected a label in 0..98, found 240"):
        read_finegym_split(path, tmp_path, levels=gym_levels["gym99"])


def test_finegym_frame_folders_and_clip_ids(tmp_path):
    path = write(tmp_path / "split.txt", "-mmq0PT-u8k_E_000001_000010_A_0001_0003 4\n"
                                         "a_b-c_E_000100_000200_A_0000_0000 0\n")
    samples = read_finegym_split(path, tmp_path, frame_folders=True, filename_template="{:06d}.jpg", start_index=0)
    assert samples[0].source == os.path.join(tmp_path, "-mmq0PT-u8k_E_000001_000010_A_0001_0003")
    assert samples[0].is_frame_folder and samples[0].filename_template == "{:06d}.jpg" and samples[0].start_index == 0
    assert parse_finegym_clip_id(samples[1].sample_id) == {
        "video": "a_b-c", "event_start": 100, "event_end": 200, "action_start": 0, "action_end": 0}


def test_finegym_split_round_trip(tmp_path):
    entries = [("A0xAXXysHUo_E_002184_002237_A_0035_0036", 93), ("0LtLS9wROrk_E_002407_002435_A_0003_0005", 78)]
    path = write_finegym_split(tmp_path / "out" / "split.txt", entries)
    samples = read_finegym_split(path, tmp_path, num_classes=99)
    assert [(s.sample_id, s.label) for s in samples] == entries
    again = write_finegym_split(tmp_path / "again.txt", samples)
    assert again.read_text() == path.read_text()
    with pytest.raises(ValueError, match="not a FineGym clip id"):
        write_finegym_split(tmp_path / "bad.txt", [("clip1", 0)])


# ---------------------------------------------------------------------------------------------------------
# MMAction2 / TSM lists
# ---------------------------------------------------------------------------------------------------------

def test_video_list_with_multi_label_lines_comments_and_blank_lines(tmp_path):
    path = write(tmp_path / "videos.txt", "# train split\n\nclass_a/v1.mp4 3\n  class_b/v2.mp4 1 4 7\r\n")
    samples = read_video_list(path, tmp_path / "root", num_classes=10)
    assert [s.line for s in samples] == [3, 4]
    assert samples[0] == Sample(os.path.join(tmp_path, "root", "class_a", "v1.mp4"), 3, (3,),
                                sample_id="class_a/v1.mp4", line=3, annotation_file=str(path))
    assert samples[1].label == 1 and samples[1].labels == (1, 4, 7) and samples[1].all_labels == (1, 4, 7)
    assert samples[1].where == f"{path}:4"


def test_video_list_round_trip(tmp_path):
    root = tmp_path / "videos"
    samples = [Sample(str(root / "a" / "x.mp4"), 2), Sample(str(root / "y.avi"), 0, (0, 5))]
    path = write_video_list(tmp_path / "list.txt", samples, root)
    assert path.read_text() == "a/x.mp4 2\ny.avi 0 5\n"
    read = read_video_list(path, root)
    assert [(s.source, s.all_labels) for s in read] == [(s.source, s.all_labels) for s in samples]
    with pytest.raises(ValueError, match="not under"):
        write_video_list(tmp_path / "bad.txt", [Sample("/elsewhere/x.mp4", 0)], root)


def test_frame_list_both_shapes(tmp_path):
    path = write(tmp_path / "frames.txt", "rawframes/v1 120 5\nrawframes/v2 30 64 6\n")
    first, second = read_frame_list(path, tmp_path, num_classes=7)
    assert first.is_frame_folder and (first.num_frames, first.start_frame, first.end_frame) == (120, 0, 120)
    assert (second.num_frames, second.start_frame, second.end_frame, second.label) == (64, 30, 94, 6)
    assert first.filename_template == "img_{:05d}.jpg" and first.start_index == 1


def test_frame_list_offset_form_may_repeat_a_folder(tmp_path):
    path = write(tmp_path / "windows.txt", "v1 0 64 5\nv1 64 64 5\nv1 0 64 5\n")
    with raises_at(path, 3, "'v1' again \\(first at line 1\\)"):
        read_frame_list(path, tmp_path)
    assert [s.start_frame for s in read_frame_list(write(path, "v1 0 64 5\nv1 64 64 5\n"), tmp_path)] == [0, 64]


def test_frame_list_round_trip(tmp_path):
    samples = read_frame_list(write(tmp_path / "frames.txt", "v1 120 5\nv2 30 64 6\n"), tmp_path)
    path = write_frame_list(tmp_path / "again.txt", samples, tmp_path)
    assert path.read_text() == "v1 0 120 5\nv2 30 64 6\n"  # one shape for the whole file
    assert read_frame_list(path, tmp_path) == [
        Sample(**{**s.__dict__, "annotation_file": str(path)}) for s in samples]
    plain = write_frame_list(tmp_path / "plain.txt", samples[:1], tmp_path)
    assert plain.read_text() == "v1 120 5\n"


def test_sthv1_tsm_list_uses_five_digit_jpegs(tmp_path):
    path = write(tmp_path / "train_videofolder.txt", "1 46 23\n100002 37 173\n")
    samples = read_sthv1_frame_list(path, tmp_path / "20bn-something-something-v1")
    assert samples[1].source == os.path.join(tmp_path, "20bn-something-something-v1", "100002")
    assert samples[1].filename_template == "{:05d}.jpg" and samples[1].start_index == 1 and samples[1].num_frames == 37
    with raises_at(write(tmp_path / "bad.txt", "1 46 174\n"), 1, "0..173, found 174"):
        read_sthv1_frame_list(tmp_path / "bad.txt", tmp_path)


# ---------------------------------------------------------------------------------------------------------
# Something-Something V1 CSV (real label names)
# ---------------------------------------------------------------------------------------------------------

def test_sthv1_csv_with_real_label_names(tmp_path, sthv1_names, shared_data):
    comma_name = next(n for n in sthv1_names if "," in n)
    path = write(tmp_path / "train.csv", f"1;{sthv1_names[0]}\n2;{comma_name}\n7; {sthv1_names[173]} \n")
    samples = read_sthv1_csv(path, tmp_path, sthv1_names)
    assert [s.label for s in samples] == [0, sthv1_names.index(comma_name), 173]
    assert samples[0].is_frame_folder and samples[0].filename_template == "{:05d}.jpg"
    assert samples[2].source == os.path.join(tmp_path, "7")
    label_file = shared_data / "something_something" / "sthv1_label_map_mmaction2.txt"
    assert read_sthv1_csv(path, tmp_path, label_file) == samples  # names may also come from a file


def test_sthv1_test_csv_is_unlabeled(tmp_path, sthv1_names):
    samples = read_sthv1_csv(write(tmp_path / "test.csv", "1420\n1421\n"), tmp_path, sthv1_names)
    assert [(s.label, s.labels, s.all_labels) for s in samples] == [(-1, (), ())] * 2


def test_sthv1_csv_unknown_label_suggests_the_closest(tmp_path, sthv1_names):
    path = write(tmp_path / "val.csv", "1;Holding something\n2;Holding somthing\n")
    with raises_at(path, 2, "unknown label 'Holding somthing' \\(closest: 'Holding something'"):
        read_sthv1_csv(path, tmp_path, sthv1_names)


def test_sthv1_csv_mixing_labeled_and_unlabeled_lines(tmp_path, sthv1_names):
    path = write(tmp_path / "val.csv", "1;Holding something\n2\n")
    with raises_at(path, 2, "expected <id>;<label name> like the lines before"):
        read_sthv1_csv(path, tmp_path, sthv1_names)


# ---------------------------------------------------------------------------------------------------------
# Diving48 JSON (records from the format notes)
# ---------------------------------------------------------------------------------------------------------

def diving48_example_records(shared_data):
    text = (shared_data / "diving48" / "annotation_format_examples.md").read_text()
    quoted = [line.strip().rstrip(",") for line in text.splitlines() if line.strip().startswith('{"vid_name": "')]
    return [json.loads(record) for record in quoted]


def test_diving48_example_records(shared_data, tmp_path):
    records = diving48_example_records(shared_data)
    assert [r["vid_name"] for r in records] == ["-mmq0PT-u8k_00155", "-mmq0PT-u8k_00156"]
    path = write(tmp_path / "Diving48_V2_train.json", json.dumps(records, indent=2))
    samples = read_diving48_json(path, tmp_path / "rgb")
    assert [(s.sample_id, s.label, s.start_frame, s.end_frame, s.num_frames) for s in samples] == [
        ("-mmq0PT-u8k_00155", 0, 0, 48, 48), ("-mmq0PT-u8k_00156", 0, 0, 70, 70)]
    assert samples[0].source == os.path.join(tmp_path, "rgb", "-mmq0PT-u8k_00155.mp4")
    assert [s.line for s in samples] == [2, 8]  # json.dumps(indent=2): each record spans 6 lines


def test_diving48_minified_json_frame_folders_and_missing_window(tmp_path):
    records = [{"vid_name": "_8Vy3dlHg2w_00000", "label": 47, "start_frame": 10, "end_frame": 20},
               {"vid_name": "OFxuiqI5G44_00247", "label": 3}]
    path = write(tmp_path / "test.json", json.dumps(records))
    first, second = read_diving48_json(path, tmp_path, frame_folders=True)
    assert first.is_frame_folder and first.source == os.path.join(tmp_path, "_8Vy3dlHg2w_00000")
    assert (first.start_frame, first.end_frame, first.num_frames) == (10, 20, 10)
    assert (second.start_frame, second.end_frame, second.num_frames) == (0, None, None)


@pytest.mark.parametrize("record, message", [
    ('{"vid_name": "a_00001", "label": 48, "start_frame": 0, "end_frame": 5}', "expected a label in 0..47, found 48"),
    ('{"vid_name": "a_00001", "label": "3"}', "'label' to be an integer"),
    ('{"vid_name": "a_00001", "label": true}', "'label' to be an integer"),
    ('{"vid_name": "a_00001", "label": 1.0}', "'label' to be an integer"),
    ('{"vid_name": "a_00001", "label": -1}', "'label' >= 0"),
    ('{"vid_name": "a_00001", "label": 1, "start_frame": 5, "end_frame": 5}', "'end_frame' >= 6, found 5"),
    ('{"vid_name": "a_00001", "label": 1, "start_frame": -2}', "'start_frame' >= 0"),
    ('{"vid_name": "", "label": 1}', "'vid_name' to be a non-empty string"),
    ('{"vid_name": 7, "label": 1}', "'vid_name' to be a non-empty string"),
    ('{"video": "a_00001", "label": 1}', "record 1 as an object with 'vid_name' and 'label'"),
    ('["a_00001", 1]', "record 1 as an object"),
    ('{"vid_name": "../../etc/passwd", "label": 1}', "outside the data root"),
    ('{"vid_name": "a_00000", "label": 2}', "'a_00000' again \\(first at line 2\\)"),
    ('{"vid_name": "a_00001" "label": 2}', "invalid JSON"),
])
def test_diving48_errors_name_file_and_line(tmp_path, record, message):
    path = write(tmp_path / "d48.json", '[\n {"vid_name": "a_00000", "label": 0, "start_frame": 0, "end_frame": 9},\n '
                 + record + "\n]\n")
    with raises_at(path, 3, message):
        read_diving48_json(path, tmp_path)


@pytest.mark.parametrize("text, message", [("[]", "no samples"), ("", "a JSON list"), ('{"a": 1}', "a JSON list")])
def test_diving48_empty_or_not_a_list(tmp_path, text, message):
    path = write(tmp_path / "d48.json", text)
    with pytest.raises(AnnotationError, match=re.escape(str(path)) + ".*" + message):
        read_diving48_json(path, tmp_path)


@pytest.mark.parametrize("text, message", [
    ("[" * 100_000, "nested too deeply"),
    ('[{"vid_name": "a", "label": ' + "9" * 5000 + "}]", "Python cannot read"),
])
def test_diving48_hostile_json(tmp_path, text, message):
    path = write(tmp_path / "d48.json", text)
    with raises_at(path, 1, message):
        read_diving48_json(path, tmp_path)


# ---------------------------------------------------------------------------------------------------------
# Kinetics CSV (real label names)
# ---------------------------------------------------------------------------------------------------------

KINETICS = ("label,youtube_id,time_start,time_end,split\n"
            "abseiling,-3B32lodo2M,59,69,train\n"
            "air drumming,--nQbRBEz2s,104,114,val\n"
            '"passing American football (in game)",c_7u7T07nV4,5,15,train\n')


def test_kinetics_csv_with_real_label_names(tmp_path, kinetics_names):
    samples = read_kinetics_csv(write(tmp_path / "k400.csv", KINETICS), tmp_path / "videos", kinetics_names)
    assert [s.label for s in samples] == [0, 1, kinetics_names.index("passing American football (in game)")]
    assert samples[0].source == os.path.join(tmp_path, "videos", "-3B32lodo2M_000059_000069.mp4")
    assert samples[0].sample_id == "-3B32lodo2M_000059_000069" and samples[0].line == 2
    assert not samples[0].is_frame_folder


def test_kinetics_csv_split_filter_is_cc_and_pattern(tmp_path, kinetics_names, shared_data):
    text = KINETICS.replace("split\n", "split,is_cc\n").replace("train\n", "train,0\n").replace("val\n", "val,1\n")
    path = write(tmp_path / "k400.csv", text)
    train = read_kinetics_csv(path, tmp_path, shared_data / "kinetics400" / "label_map.txt", split="train",
                              filename_pattern="{split}/{label}/{youtube_id}.mp4")
    assert [s.sample_id for s in train] == ["-3B32lodo2M_000059_000069", "c_7u7T07nV4_000005_000015"]
    assert train[0].source == os.path.join(tmp_path, "train", "abseiling", "-3B32lodo2M.mp4")
    with pytest.raises(AnnotationError, match="no samples with split 'test'; found splits \\['train', 'val'\\]"):
        read_kinetics_csv(path, tmp_path, kinetics_names, split="test")
    with pytest.raises(ConfigError, match="filename_pattern"):
        read_kinetics_csv(path, tmp_path, kinetics_names, filename_pattern="{video}.mp4")


def test_kinetics_test_csv_without_labels(tmp_path, kinetics_names):
    path = write(tmp_path / "test.csv", "youtube_id,time_start,time_end,split\n--6bJUbfpnQ,17,27,test\n")
    (sample,) = read_kinetics_csv(path, tmp_path, kinetics_names)
    assert sample.label == -1 and sample.labels == ()


@pytest.mark.parametrize("row, message", [
    ("abseling,-3B32lodo2M,59,69,train", "unknown label 'abseling' \\(closest: 'abseiling'"),
    ("abseiling,-3B32lodo2M,59,train", "expected 5 comma-separated fields"),
    ("abseiling,-3B32lodo2M,fifty,69,train", "time_start as an integer, found 'fifty'"),
    ("abseiling,-3B32lodo2M,59,59,train", "time_end >= 60, found 59"),
    ("abseiling,../../x,59,69,train", "expected a YouTube id"),
    ("abseiling,-3B32lodo2M,59,69,train", "again \\(first at line 2\\)"),
])
def test_kinetics_errors_name_file_and_line(tmp_path, kinetics_names, row, message):
    path = write(tmp_path / "k.csv", "label,youtube_id,time_start,time_end,split\n"
                                     "abseiling,-3B32lodo2M,59,69,train\n" + row + "\n")
    with raises_at(path, 3, message):
        read_kinetics_csv(path, tmp_path, kinetics_names)


def test_kinetics_header_errors(tmp_path, kinetics_names):
    path = write(tmp_path / "k.csv", "label,video,start,end\nabseiling,x,1,2\n")
    with raises_at(path, 1, "expected a header like"):
        read_kinetics_csv(path, tmp_path, kinetics_names)
    path = write(tmp_path / "k.csv", "label,youtube_id,time_start,time_end\nabseiling,x,1,2\n")
    with raises_at(path, 1, "no 'split' column"):
        read_kinetics_csv(path, tmp_path, kinetics_names, split="train")
    with pytest.raises(AnnotationError, match="no samples"):
        read_kinetics_csv(write(tmp_path / "empty.csv", ""), tmp_path, kinetics_names)
    with pytest.raises(AnnotationError, match="no samples"):
        read_kinetics_csv(write(tmp_path / "header.csv", KINETICS.splitlines()[0]), tmp_path, kinetics_names)


# ---------------------------------------------------------------------------------------------------------
# Malformed line-based files
# ---------------------------------------------------------------------------------------------------------

GOOD = {
    "video_list": "a/v0.mp4 0\n",
    "frame_list": "f/v0 10 0\n",
    "finegym": "A0xAXXysHUo_E_002184_002237_A_0035_0036 0\n",
}
READERS = {
    "video_list": lambda p, root: read_video_list(p, root, num_classes=5),
    "frame_list": lambda p, root: read_frame_list(p, root, num_classes=5),
    "finegym": lambda p, root: read_finegym_split(p, root, num_classes=5),
}


@pytest.mark.parametrize("fmt, line, message", [
    ("video_list", "a/v1.mp4", "expected '<relative/path> <label>.*found 1 field"),
    ("video_list", "a/v1.mp4 x", "a label as an integer, found 'x'"),
    ("video_list", "a/v1.mp4 1.5", "found '1.5'"),
    ("video_list", "a/v1.mp4 -1", "a label >= 0, found -1"),
    ("video_list", "a/v1.mp4 5", "a label in 0..4, found 5"),
    ("video_list", "a/v1.mp4 2 ٣", "a label as an integer"),
    ("video_list", "a/v0.mp4 1", "'a/v0.mp4' again \\(first at line 2\\)"),
    ("video_list", "/etc/passwd 1", "outside the data root"),
    ("video_list", "../secret.mp4 1", "outside the data root"),
    ("video_list", "a/../../secret.mp4 1", "outside the data root"),
    ("video_list", "a\\..\\..\\secret.mp4 1", "outside the data root"),
    ("video_list", "C:/videos/x.mp4 1", "outside the data root"),
    ("video_list", "./ 1", "expected a file or folder under the data root"),
    ("frame_list", "f/v1 10", "'<dir> <num_frames> <label>'.*found 2 field"),
    ("frame_list", "f/v1 1 2 3 4", "found 5 field"),
    ("frame_list", "f/v1 ten 1", "the number of frames as an integer, found 'ten'"),
    ("frame_list", "f/v1 0 1", "the number of frames >= 1, found 0"),
    ("frame_list", "f/v1 -3 10 1", "the frame offset >= 0, found -3"),
    ("frame_list", "f/v1 10 9", "a label in 0..4, found 9"),
    ("frame_list", "/abs/dir 10 1", "outside the data root"),
    ("finegym", "A0xAXXysHUo_E_002184_002237_A_0035_0036", "expected '<clip_id> <label>'"),
    ("finegym", "A0xAXXysHUo_E_2184_2237_A_0035_0036 1", "expected a clip id"),
    ("finegym", "A0xAXXysHUo_E_002184_002237_0035_0036 1", "expected a clip id"),
    ("finegym", "../x_E_002184_002237_A_0035_0036 1", "expected a clip id"),
    ("finegym", "A0xAXXysHUo_E_002237_002184_A_0035_0036 1", "event end >= its start"),
    ("finegym", "A0xAXXysHUo_E_002184_002237_A_0036_0035 1", "action end >= its start"),
    ("finegym", "A0xAXXysHUo_E_002184_002237_A_0035_0036 1", "again \\(first at line 2\\)"),
    ("finegym", "A0xAXXysHUo_E_002184_002237_A_0035_0037 7", "a label in 0..4, found 7"),
])
def test_malformed_lines_name_file_and_line(tmp_path, fmt, line, message):
    path = write(tmp_path / f"{fmt}.txt", "# header comment\n" + GOOD[fmt] + "\n" + line + "\n")
    with raises_at(path, 4, message):
        READERS[fmt](path, tmp_path)


@pytest.mark.parametrize("fmt", sorted(READERS))
@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_files_have_no_samples(tmp_path, fmt, text):
    path = write(tmp_path / "empty.txt", text)
    with pytest.raises(AnnotationError, match=re.escape(str(path)) + ": no samples"):
        READERS[fmt](path, tmp_path)


def test_unreadable_files(tmp_path):
    with pytest.raises(AnnotationError, match="not found"):
        read_video_list(tmp_path / "missing.txt", tmp_path)
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"a.mp4 1\nb\xe9.mp4 2\n")
    with raises_at(path, 2, "expected UTF-8"):
        read_video_list(path, tmp_path)


def test_bad_format_options(tmp_path):
    path = write(tmp_path / "f.txt", "v 10 1\n")
    with pytest.raises(ConfigError, match="filename_template"):
        read_frame_list(path, tmp_path, filename_template="img_{name}.jpg")
    with pytest.raises(ConfigError, match="the same name"):
        read_frame_list(path, tmp_path, filename_template="img.jpg")
    with pytest.raises(ConfigError, match="start_index"):
        read_frame_list(path, tmp_path, start_index=-1)


# ---------------------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------------------

def test_read_annotations_dispatches_every_format(tmp_path, sthv1_names, kinetics_names):
    files = {
        "video_list": ("v.txt", "a.mp4 1\n", {}),
        "frame_list": ("f.txt", "a 10 1\n", {"start_index": 0}),
        "finegym": ("g.txt", GOOD["finegym"], {"clip_ext": ".mkv"}),
        "sthv1_list": ("s.txt", "1 10 1\n", {}),
        "sthv1_csv": ("s.csv", "1;Holding something\n", {"label_names": sthv1_names}),
        "diving48": ("d.json", '[{"vid_name": "a_00001", "label": 1}]', {}),
        "kinetics_csv": ("k.csv", KINETICS, {"label_names": kinetics_names, "split": "val"}),
    }
    assert set(files) == set(FORMATS)
    for fmt, (name, text, options) in files.items():
        samples = read_annotations(fmt, write(tmp_path / name, text), tmp_path, **options)
        assert len(samples) == 1 and samples[0].annotation_file == str(tmp_path / name), fmt
    assert read_annotations("finegym", tmp_path / "g.txt", tmp_path, clip_ext=".mkv")[0].source.endswith(".mkv")


def test_read_annotations_rejects_unknown_formats_and_options(tmp_path):
    with pytest.raises(ConfigError, match="unknown annotation format 'video-list'.*video_list, frame_list, finegym"):
        read_annotations("video-list", tmp_path / "x.txt", tmp_path)
    with pytest.raises(ConfigError, match="accepts the options .*'num_classes'.*found \\['num_class'\\]"):
        read_annotations("video_list", tmp_path / "x.txt", tmp_path, num_class=3)


# ---------------------------------------------------------------------------------------------------------
# Property: arbitrary text never escapes as anything but AnnotationError
# ---------------------------------------------------------------------------------------------------------

TOKENS = [" ", "\t", "\n", "\r\n", "#", ";", ",", '"', "0", "1", "7", "-1", "00", "10", "..", "/", "\\", "a",
          "v.mp4", "A0xAXXysHUo", "_E_002184_002237_A_0035_0036", "_E_", "_A_", "Holding something",
          "abseiling", "label,youtube_id,time_start,time_end,split", "train", "[", "]", "{", "}", ":",
          '"vid_name"', '"label"', '"start_frame"', '"end_frame"', '"x"', "true", "null", "\x00", "\ufeff"]
annotation_text = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(st.sampled_from(TOKENS), st.text(string.printable, max_size=4)), max_size=60).map("".join),
)
PROPERTY_READERS = {
    "video_list": lambda p, root: read_video_list(p, root, num_classes=5),
    "frame_list": lambda p, root: read_frame_list(p, root),
    "finegym": lambda p, root: read_finegym_split(p, root, frame_folders=True),
    "sthv1_list": lambda p, root: read_sthv1_frame_list(p, root),
    "sthv1_csv": lambda p, root: read_sthv1_csv(p, root, ["Holding something", "a"]),
    "kinetics_csv": lambda p, root: read_kinetics_csv(p, root, ["abseiling", "a"]),
    "diving48": lambda p, root: read_diving48_json(p, root),
}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("annotation_properties")


@pytest.mark.parametrize("fmt", sorted(PROPERTY_READERS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.one_of(annotation_text, st.binary(max_size=60)))
def test_readers_raise_only_annotation_errors(scratch, fmt, content):
    path = scratch / f"{fmt}.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    try:
        samples = PROPERTY_READERS[fmt](path, scratch / "root")
    except AnnotationError:
        return
    root = os.path.join(scratch, "root") + os.sep
    assert samples and all(s.source.startswith(root) for s in samples)  # never outside the data root
