"""The untrimmed FineGym look-alike (fineact.demo.untrimmed): official JSON schema, ids, ground truth, frames."""

import json

import numpy as np
import pytest

from fineact.data.annotations import parse_finegym_clip_id
from fineact.data.finegym_json import frame_span
from fineact.data.video import probe_video, read_frames
from fineact.demo.classes import ELEMENTS
from fineact.demo.scenes import render_clip
from fineact.demo.untrimmed import MEN_EVENT, write_untrimmed_dataset


@pytest.fixture(scope="module")
def untrimmed(tmp_path_factory):
    return write_untrimmed_dataset(tmp_path_factory.mktemp("untrimmed"), num_videos=3, duration=30, fps=(25, 30),
                                   missing=1, extension=("mp4", "mkv", "mp4"), seed=5)


def test_json_is_the_official_schema_and_matches_the_truth(untrimmed):
    document = json.loads(untrimmed.annotation_json.read_text())
    assert set(document) == {v.youtube_id for v in untrimmed.videos}
    for video in untrimmed.videos:
        for event in video.events:
            entry = document[video.youtube_id][event.event_key]
            assert set(entry) == {"event", "timestamps", "segments"}
            (start, end), = entry["timestamps"]
            assert (start, end) == (event.start, event.end)
            if event.event == MEN_EVENT:
                assert entry["segments"] is None
                continue
            for element in event.elements:
                segment = entry["segments"][element.segment_key]
                assert segment["stages"] == len(segment["timestamps"])
                # the documented element span: event start + first stage start .. event start + last stage end
                assert element.start == pytest.approx(start + segment["timestamps"][0][0], abs=1e-9)
                assert element.end == pytest.approx(start + segment["timestamps"][-1][1], abs=1e-9)
                assert (element.first_frame, element.end_frame) == frame_span(element.start, element.end, video.fps)


def test_split_ids_are_gym99_style_and_truncate_the_times(untrimmed):
    for split, path in untrimmed.split_files.items():
        lines = path.read_text().splitlines()
        assert [line.split()[0] for line in lines] == [e.clip_id for e in untrimmed.elements(split)]
        for line, element in zip(lines, untrimmed.elements(split)):
            parts = parse_finegym_clip_id(line.split()[0])
            assert parts is not None and int(line.split()[1]) == element.label
            event = next(ev for v in untrimmed.videos for ev in v.events if element in ev.elements)
            assert parts["event_start"] == int(event.start) and parts["action_start"] == int(element.stages[0][0])


def test_missing_videos_are_annotated_but_not_written(untrimmed):
    assert untrimmed.missing == [untrimmed.videos[-1].youtube_id]
    assert not untrimmed.videos[-1].path.exists() and untrimmed.videos[-1].elements
    assert all(v.path.exists() for v in untrimmed.videos[:-1])


def test_each_video_has_its_own_rate_and_container(untrimmed):
    for video in untrimmed.videos[:-1]:
        info = probe_video(video.path)
        assert round(info.fps) == video.fps and (info.width, info.height) == (video.size, video.size)
    assert untrimmed.videos[1].path.suffix == ".mkv"


def test_element_frames_are_the_demo_clip_drawn_over_exactly_its_span(untrimmed):
    video = untrimmed.videos[0]
    for a_index, element in enumerate(video.events[0].elements):
        clip = render_clip(element.label, [5, 0, 0, a_index], size=video.size, num_frames=element.num_frames)
        errors = {}
        for shift in (-1, 0, 1):
            frames = read_frames(video.path, np.arange(element.first_frame + shift, element.end_frame + shift))
            errors[shift] = np.abs(frames.astype(np.int16) - clip.astype(np.int16)).mean()
        assert errors[0] < 4.0  # H.264 at CRF 14 on the arena's grain: a few grey levels
        assert errors[0] < min(errors[-1], errors[1])  # drawn over exactly its frames, not one off


def test_vault_like_elements_have_three_stages_and_others_one(tmp_path):
    truth = write_untrimmed_dataset(tmp_path, num_videos=6, duration=60, write_videos=False, seed=1)
    elements = truth.elements()
    assert any(len(e.stages) == 3 for e in elements)
    for element in elements:
        assert len(element.stages) == (3 if ELEMENTS[element.label].set_id == 42 else 1)
        assert element.stages[0][0] < element.stages[-1][1]
    assert any(ev.event == MEN_EVENT and not ev.elements for v in truth.videos for ev in v.events)
