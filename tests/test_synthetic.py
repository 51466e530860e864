"""The demo dataset generator: FineGym's exact file formats, decodable clips, determinism, caching, atomicity,
and a measured (not asserted) check that each level of the hierarchy rests on the evidence it claims."""

import json
import re
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from fineact.demo import ELEMENTS, SETS, default_demo_params, describe, ensure_dataset, generate_dataset, render_clip
from fineact.demo import dataset as demo_dataset
from fineact.errors import ConfigError, FineactError

CLIP_ID = re.compile(r"^[A-Za-z0-9_-]{11}_E_\d{6}_\d{6}_A_\d{4}_\d{4}$")
CATEGORY_LINE = re.compile(r"^Clabel: +\d+; set: +\d+; Glabel: +\d+; \((\w\w)\) .+$")
SET_LINE = re.compile(r"^set: +\d+; \S+$")
TINY = {"num_train": 2 * len(ELEMENTS), "num_val": len(ELEMENTS), "size": 32, "num_frames": 64, "fps": 25}


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def split_entries(path: Path) -> list[tuple[str, int]]:
    return [(clip_id, int(label)) for clip_id, label in (line.split(" ") for line in path.read_text().splitlines())]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("synthetic") / "tiny", seed=3, **TINY)


# -- formats ------------------------------------------------------------------------------------------------

def test_label_files_use_finegym_formats(tiny):
    for split_file, count in ((tiny.train_list, TINY["num_train"]), (tiny.val_list, TINY["num_val"])):
        lines = split_file.read_text().splitlines()
        assert len(lines) == count and lines == sorted(lines)
        for line in lines:
            assert re.fullmatch(r"\S+ \d+", line), line
            assert CLIP_ID.match(line.split(" ")[0]), line
    categories = tiny.categories_file.read_text().splitlines()
    assert len(categories) == len(ELEMENTS)
    for element, line in zip(ELEMENTS, categories):
        match = CATEGORY_LINE.match(line)
        assert match, line
        assert match.group(1) == element.event_abbrev
        # FineGym's padding: "Clabel:   0; set: 21; Glabel: 210; ..."
        assert line.startswith(f"Clabel: {element.clabel:3d}; set: {element.set_id:2d}; Glabel: ")
    sets = tiny.set_categories_file.read_text().splitlines()
    assert len(sets) == len(SETS) and all(SET_LINE.match(line) for line in sets)


def test_hierarchy_follows_finegym_rules():
    # the event of a set is its tens digit, and the abbreviation is FineGym's for that event
    finegym_abbrevs = {2: "FX", 3: "BB", 4: "UB"}
    for element in ELEMENTS:
        assert element.event_abbrev == finegym_abbrevs[element.set_id // 10]
        assert SETS[element.set_id].startswith(element.event_abbrev + "_")
    assert 12 <= len(ELEMENTS) <= 18
    assert len({e.glabel for e in ELEMENTS}) == len(ELEMENTS)


def test_files_read_back_through_finegym_levels(tiny):
    from fineact.labels import finegym_levels

    levels = finegym_levels(tiny.categories_file, tiny.set_categories_file)
    assert levels.num_classes == {"event": 3, "set": 6, "element": 16}


def test_splits_are_balanced_unique_and_video_disjoint(tiny):
    train, val = split_entries(tiny.train_list), split_entries(tiny.val_list)
    for entries, per_class in ((train, 2), (val, 1)):
        assert np.bincount([label for _, label in entries], minlength=len(ELEMENTS)).tolist() == \
            [per_class] * len(ELEMENTS)
    ids = [clip_id for clip_id, _ in train + val]
    assert len(set(ids)) == len(ids)
    assert not {c[:11] for c, _ in train} & {c[:11] for c, _ in val}


def test_every_clip_decodes_to_the_requested_shape(tiny):
    entries = split_entries(tiny.train_list) + split_entries(tiny.val_list)
    assert len(list(tiny.videos_dir.glob("*.mp4"))) == len(entries)
    for clip_id, _ in entries:
        frames = decode(tiny.video_path(clip_id))
        assert frames.shape == (TINY["num_frames"], TINY["size"], TINY["size"], 3)


def test_readme_manifest_and_describe(tiny):
    readme = tiny.readme.read_text()
    assert "APPEARANCE" in readme and "MOTION FAMILY" in readme and "TEMPORAL DETAIL" in readme
    manifest = json.loads(tiny.manifest.read_text())
    assert manifest["params"] == dict(TINY, seed=3)
    # the name datasets were cached under before the generator moved to fineact.demo: they stay recognised
    assert manifest["generator"] == "fineact.data.synthetic"
    assert "from fineact.demo import ensure_dataset" in readme  # its regenerate command runs
    assert "Elements" in describe()
    params = default_demo_params()
    assert params["num_train"] // len(ELEMENTS) >= 20 and params["size"] == 64 and params["num_frames"] == 64


def test_importing_the_demo_package_loads_no_training_stack():
    # the generator's spawned worker processes import fineact.demo: torch there would cost seconds per worker
    code = "import sys, fineact.demo; print(sorted({'torch', 'lightning', 'av'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bad_parameters_name_the_parameter(tmp_path):
    with pytest.raises(ConfigError, match="size"):
        generate_dataset(tmp_path / "x", size=33)
    with pytest.raises(ConfigError, match="num_train"):
        ensure_dataset(tmp_path / "x", num_train=-1)


# -- determinism, caching, atomicity --------------------------------------------------------------------------

def test_same_seed_same_bytes_any_workers_other_seed_differs(tmp_path):
    small = {"num_train": 6, "num_val": 2, "size": 32, "num_frames": 32}
    first = generate_dataset(tmp_path / "a", seed=5, **small)
    again = generate_dataset(tmp_path / "b", seed=5, workers=2, **small)  # worker processes change nothing
    other = generate_dataset(tmp_path / "c", seed=6, **small)
    for name in ("train_list", "val_list", "categories_file", "set_categories_file"):
        assert getattr(first, name).read_bytes() == getattr(again, name).read_bytes()
    for clip_id, _ in split_entries(first.train_list):
        np.testing.assert_array_equal(decode(first.video_path(clip_id)), decode(again.video_path(clip_id)))
    assert first.train_list.read_bytes() != other.train_list.read_bytes()
    first_clip, other_clip = (sorted(d.videos_dir.glob("*.mp4"))[0] for d in (first, other))
    assert not np.array_equal(decode(first_clip), decode(other_clip))


def test_ensure_dataset_reuses_and_regenerates_on_change(tmp_path):
    params = {"num_train": 4, "num_val": 0, "size": 16, "num_frames": 16, "seed": 1}
    root = tmp_path / "cache"
    ensure_dataset(root, **params)
    stamp = (root / "manifest.json").stat().st_ino, (root / "manifest.json").stat().st_mtime_ns
    ensure_dataset(root, **params)
    assert ((root / "manifest.json").stat().st_ino, (root / "manifest.json").stat().st_mtime_ns) == stamp
    changed = ensure_dataset(root, **dict(params, num_frames=20))
    assert json.loads(changed.manifest.read_text())["params"]["num_frames"] == 20
    assert decode(next(changed.videos_dir.glob("*.mp4"))).shape[0] == 20
    next(changed.videos_dir.glob("*.mp4")).unlink()  # a damaged dataset is regenerated too
    repaired = ensure_dataset(root, **dict(params, num_frames=20))
    assert len(list(repaired.videos_dir.glob("*.mp4"))) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # no scratch folders left behind


def test_interrupted_generation_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    calls = []

    def fail_on_third_clip(frames, path, fps):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        original(frames, path, fps)

    original = demo_dataset.encode_clip
    monkeypatch.setattr(demo_dataset, "encode_clip", fail_on_third_clip)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(tmp_path / "data", num_train=8, num_val=0, size=16, num_frames=16)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(FineactError, match="refusing"):
        generate_dataset(tmp_path / "mine", num_train=1, num_val=0, size=16, num_frames=16)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


# -- honesty of the hierarchy, measured ------------------------------------------------------------------------

def nearest_centroid_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out nearest-centroid accuracy: a classifier too simple to memorise anything."""
    correct = 0
    for i in range(len(labels)):
        keep = np.arange(len(labels)) != i
        classes = np.unique(labels[keep])
        centroids = np.stack([features[keep & (labels == c)].mean(0) for c in classes])
        correct += classes[np.argmin(np.linalg.norm(centroids - features[i], axis=1))] == labels[i]
    return correct / len(labels)


def test_event_is_decided_by_one_frame_of_appearance(tiny):
    rng = np.random.default_rng(0)
    features, events = [], []
    for split_file in (tiny.train_list, tiny.val_list):
        for clip_id, label in split_entries(split_file):
            frame = decode(tiny.video_path(clip_id))[rng.integers(TINY["num_frames"])]
            features.append(frame.reshape(-1, 3).mean(0))  # one random frame's mean colour: 3 numbers
            events.append(ELEMENTS[label].event_id)
    assert nearest_centroid_accuracy(np.array(features), np.array(events)) >= 0.95


def render_set(labels: list[int], clips_per_element: int) -> tuple[list[np.ndarray], np.ndarray]:
    # independent seeds per clip: siblings do not share nuisances here, as in a real dataset
    clips = [render_clip(label, (11, label, i), size=32) for label in labels for i in range(clips_per_element)]
    return clips, np.repeat(np.array(labels), clips_per_element)


def one_random_frame(clips: list[np.ndarray], seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([clip[rng.integers(len(clip))].reshape(-1).astype(np.float32) for clip in clips])


@pytest.mark.parametrize("set_id", sorted(SETS))
def test_one_frame_does_not_tell_the_elements_of_a_set_apart(set_id):
    labels = [e.clabel for e in ELEMENTS if e.set_id == set_id]
    clips, truth = render_set(labels, clips_per_element=12)
    chance = 1 / len(labels)
    assert nearest_centroid_accuracy(one_random_frame(clips), truth) <= chance + 0.25


def speed_ratio(clip: np.ndarray) -> float:
    """Change between neighbouring frames relative to change over 8 frames: how fast the body moves, with body
    size and contrast divided out. It needs consecutive frames, i.e. dense sampling."""
    clip = clip.astype(np.float32)
    return float(np.abs(clip[1:] - clip[:-1]).mean() / np.abs(clip[8:] - clip[:-8]).mean())


def test_a_temporal_statistic_tells_them_apart():
    jump, two_hops = 0, 1  # same set, same jump height, same window: only the vertical speed differs
    assert ELEMENTS[jump].set_id == ELEMENTS[two_hops].set_id
    clips, truth = render_set([jump, two_hops], clips_per_element=16)
    assert nearest_centroid_accuracy(one_random_frame(clips), truth) <= 0.72  # chance is 0.5
    assert nearest_centroid_accuracy(np.array([[speed_ratio(c)] for c in clips]), truth) >= 0.85
