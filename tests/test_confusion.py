"""Groups of similar classes (SSv1, FineGym, Diving48), sub-matrices, group summaries and confusion plots."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from fineact.analysis.confusion import (format_group_summary, group_summary, normalise_rows, plot_confusion,
                                        plot_group_comparison, read_confusion_csv, select_groups, sub_matrix)
from fineact.analysis.groups import (diving48_attribute_groups, diving48_contrast_groups, finegym_set_groups,
                                     hierarchy_groups, read_groups)
from fineact.engine.results import EvaluationResults, write_results
from fineact.errors import AnnotationError
from fineact.labels import diving48_levels, finegym_levels, flat_levels, read_class_names

# rows = true, columns = predicted
KNOWN = np.array([[5, 1, 2, 2],
                  [0, 8, 0, 2],
                  [3, 0, 6, 1],
                  [0, 0, 0, 0]])


@pytest.fixture(scope="module")
def ss_dir(shared_data):
    return shared_data / "something_something"


@pytest.fixture(scope="module")
def v1_names(ss_dir):
    return read_class_names(ss_dir / "sthv1_label_map_mmaction2.txt")


@pytest.fixture(scope="module")
def sorted_names(ss_dir):
    return read_class_names(ss_dir / "sthv2_label_map_mmaction2.txt")


@pytest.fixture(scope="module")
def gym99(shared_data):
    d = shared_data / "finegym"
    return finegym_levels(d / "gym99_categories.txt", d / "set_categories.txt")


def assert_png(path):
    assert path.is_file() and path.stat().st_size > 1000
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG" and min(image.size) > 100


# -- sub-matrices ---------------------------------------------------------------------------------------------

def test_sub_matrix_row_normalised_by_the_full_row():
    sub = sub_matrix(KNOWN, [2, 0])
    # true class 2 has 10 videos (3 -> 0, 6 -> 2, 1 -> 3); true class 0 has 10 (5, 1, 2, 2)
    np.testing.assert_allclose(sub, [[0.6, 0.3], [0.2, 0.5]])
    assert sub.sum(1).tolist() == pytest.approx([0.9, 0.7])  # the rest went outside the group


def test_sub_matrix_group_normalisation_and_counts():
    np.testing.assert_allclose(sub_matrix(KNOWN, [2, 0], "group"), [[6 / 9, 3 / 9], [2 / 7, 5 / 7]])
    np.testing.assert_array_equal(sub_matrix(KNOWN, [2, 0], None), [[6, 3], [2, 5]])
    np.testing.assert_array_equal(sub_matrix(KNOWN, [2, 0], "none"), [[6, 3], [2, 5]])


def test_rows_without_videos_are_nan_not_zero():
    sub = sub_matrix(KNOWN, [3, 1])
    assert np.isnan(sub[0]).all()
    np.testing.assert_allclose(sub[1], [0.2, 0.8])
    assert np.isnan(normalise_rows(KNOWN)[3]).all()


def test_sub_matrix_rejects_bad_input():
    with pytest.raises(ValueError, match="out of range"):
        sub_matrix(KNOWN, [0, 4])
    with pytest.raises(ValueError, match="normalise"):
        sub_matrix(KNOWN, [0, 1], "column")
    with pytest.raises(ValueError, match="square"):
        sub_matrix(np.zeros((2, 3)), [0])


def test_group_summary_counts():
    (a, b) = group_summary(KNOWN, [("g", [0, 2]), ("h", [1, 3])])
    assert (a.support, a.correct, a.within_group_errors, a.outside_errors) == (20, 11, 5, 4)
    assert a.accuracy == pytest.approx(0.55)
    assert a.within_group_rate == pytest.approx(0.25)
    assert a.within_group_share == pytest.approx(5 / 9)
    assert (b.support, b.correct, b.within_group_errors, b.outside_errors) == (10, 8, 2, 0)
    assert b.within_group_share == 1.0
    table = format_group_summary([a, b])
    assert "| g | 2 | 20 | 55.0% | 25.0% | 55.6% |" in table


def test_select_groups_picks_the_most_confused():
    groups = [("small", [1, 3]), ("big", [0, 2]), ("single", [1])]
    assert [g[0] for g in select_groups(KNOWN, groups, k=1)] == ["big"]
    assert [g[0] for g in select_groups(KNOWN, groups, k=5)] == ["big", "small"]  # single-class groups skipped


def test_confusion_csv_round_trip_through_engine_results(tmp_path):
    levels = flat_levels(["a", "b", "c", "d"])
    support = KNOWN.sum(1)
    results = {"label": {"top1": 0.6, "top5": 1.0, "mean_class_accuracy": 0.6, "num_videos": int(support.sum()),
                         "per_class_accuracy": [0.5, 0.8, 0.6, float("nan")], "support": support.tolist(),
                         "confusion": KNOWN.tolist()}}
    write_results(EvaluationResults.from_dict(results), levels, tmp_path, stem="results_val")
    np.testing.assert_array_equal(read_confusion_csv(tmp_path / "results_val_label_confusion.csv"), KNOWN)


def test_read_confusion_csv_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2\n3\n")
    with pytest.raises(AnnotationError, match="bad.csv"):
        read_confusion_csv(bad)
    with pytest.raises(AnnotationError, match="cannot read"):
        read_confusion_csv(tmp_path / "missing.csv")


# -- groups from the real files -------------------------------------------------------------------------------

def test_real_contrastive_groups_map_names_to_indices(ss_dir, v1_names, sorted_names):
    path = ss_dir / "contrastive_groups_list.txt"
    groups = read_groups(path, v1_names)
    assert len(groups) == 69
    assert all(2 <= len(idx) <= 6 for _, idx in groups)
    by_first = {v1_names[idx[0]]: idx for _, idx in groups}
    assert [v1_names[i] for i in by_first["Closing something"]] == [
        "Closing something", "Pretending to close something without actually closing it"]
    # spot checks: position in the official V1 order (mmaction2 label_map line index)
    assert v1_names.index("Closing something") in by_first["Closing something"]
    assert groups[0][1] == [v1_names.index("Wiping something off of something"),
                            v1_names.index("Pretending or failing to wipe something off of something")]
    # the '# 0 0 1' tag lines are not class names and split groups
    assert all("#" not in v1_names[i] for _, idx in groups for i in idx)
    # the same file against the sorted class order gives the same names at other indices
    sorted_groups = read_groups(path, sorted_names)
    assert [[sorted_names[i] for i in idx] for _, idx in sorted_groups] == \
        [[v1_names[i] for i in idx] for _, idx in groups]
    assert sorted_groups[0][1] != groups[0][1]
    assert groups[1][0] == "Closing something (+1)"


def test_real_action_group_tsv(ss_dir, v1_names, sorted_names):
    path = ss_dir / "ssv2_action_groups_50_DERIVED.tsv"
    groups = read_groups(path, v1_names)
    assert len(groups) == 50
    members = sorted(i for _, idx in groups for i in idx)
    assert members == list(range(174))  # every class in exactly one group
    sorted_groups = dict(read_groups(path, sorted_names, kind="tsv"))
    # the file's own index columns agree with our name -> index mapping for both class orders
    with open(path) as handle:
        rows = [r for r in csv.reader((line for line in handle if not line.startswith("#")), delimiter="\t")][1:]
    assert len(rows) == 174
    v1_by_name = {v1_names[i]: i for _, idx in groups for i in idx}
    for name, group, _gid, v1_idx, sorted_idx in rows:
        assert v1_by_name[name] == int(v1_idx)
        assert int(sorted_idx) in sorted_groups[group]
    assert "Pouring something" in dict(groups)


def test_unknown_group_name_names_file_line_and_closest(tmp_path, v1_names):
    path = tmp_path / "groups.txt"
    path.write_text("Closing something\nPretending to close somthing without actually closing it\n\n\nOpening something\n")
    with pytest.raises(AnnotationError) as err:
        read_groups(path, v1_names)
    message = str(err.value)
    assert f"{path}:2" in message and "Pretending to close something without actually closing it" in message


def test_group_names_match_loosely_and_tsv_needs_columns(tmp_path, v1_names):
    path = tmp_path / "g.txt"
    path.write_text("# tag\nclosing  SOMETHING\nPretending to close [something] without actually closing [it]\n"
                    "# 0 0 1\nOpening something\nPretending to open something without actually opening it\n")
    groups = read_groups(path, v1_names)
    assert [len(idx) for _, idx in groups] == [2, 2]
    assert groups[0][1][0] == v1_names.index("Closing something")
    bad = tmp_path / "g.tsv"
    bad.write_text("name\tcluster\nClosing something\tx\n")
    with pytest.raises(AnnotationError, match="'class' and 'group'"):
        read_groups(bad, v1_names)
    short = tmp_path / "s.tsv"
    short.write_text("class\tgroup\nClosing something\n")
    with pytest.raises(AnnotationError, match=r"s\.tsv:2: expected 2 tab-separated fields"):
        read_groups(short, v1_names)


def test_finegym_set_groups_from_real_gym99(gym99):
    groups = finegym_set_groups(gym99)
    assert len(groups) == 14
    assert sorted(i for _, idx in groups for i in idx) == list(range(99))
    by_name = dict(groups)
    assert len(by_name["vault"]) == 6
    assert all(gym99.class_names["element"][i].startswith("(VT)") for i in by_name["vault"])
    assert all(gym99.class_names["element"][i].startswith("(UB)") for i in by_name["UB_circles"])
    set_of = gym99.finest_to["set"]
    for s, (name, idx) in enumerate(groups):
        assert name == gym99.class_names["set"][s] and all(set_of[i] == s for i in idx)
    events = hierarchy_groups(gym99, "set", "event")
    assert [len(idx) for _, idx in events] == [1, 4, 5, 4]


def test_diving48_groups(shared_data):
    levels = diving48_levels(shared_data / "diving48" / "Diving48_vocab.json")
    takeoff = diving48_attribute_groups(levels, "takeoff")
    assert [n for n, _ in takeoff] == ["takeoff = Back", "takeoff = Forward", "takeoff = Inward",
                                       "takeoff = Reverse"]
    assert sorted(i for _, idx in takeoff for i in idx) == list(range(48))
    contrast = diving48_contrast_groups(levels, "twist")
    assert contrast
    for name, idx in contrast:
        assert len(idx) >= 2 and "*" in name.split("+")[2]
        attrs = [levels.class_names["class"][i].split("+") for i in idx]
        assert len({(a[0], a[1], a[3]) for a in attrs}) == 1      # same takeoff, somersault, flight
        assert len({a[2] for a in attrs}) == len(attrs)            # all different twists


# -- plots ----------------------------------------------------------------------------------------------------

def synthetic_confusion(k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cm = rng.integers(0, 3, (k, k))
    cm[np.arange(k), np.arange(k)] += rng.integers(5, 20, k)
    return cm


def test_plot_confusion_many_and_few_classes(tmp_path, v1_names, ss_dir):
    big = plot_confusion(synthetic_confusion(174), v1_names, tmp_path / "full.png", title="SSv1",
                         groups=read_groups(ss_dir / "ssv2_action_groups_50_DERIVED.tsv", v1_names))
    assert_png(big)
    small = plot_confusion(synthetic_confusion(20), v1_names[:20], tmp_path / "sub" / "small.png")
    assert_png(small)
    with pytest.raises(ValueError, match="class names"):
        plot_confusion(synthetic_confusion(5), v1_names[:4], tmp_path / "x.png")


def test_plot_group_comparison(tmp_path, gym99):
    groups = finegym_set_groups(gym99)
    names = gym99.class_names["element"]
    path = plot_group_comparison({"SlowOnly": synthetic_confusion(99, 1), "multi-task": synthetic_confusion(99, 2)},
                                 [groups[0], groups[10]], names, tmp_path / "groups.png", title="Gym99")
    assert_png(path)
    assert_png(plot_group_comparison(synthetic_confusion(99), groups[:1], names, tmp_path / "one.png",
                                     normalise=None))
    with pytest.raises(ValueError, match="class names"):
        plot_group_comparison({"a": synthetic_confusion(5)}, groups[:1], names, tmp_path / "bad.png")
