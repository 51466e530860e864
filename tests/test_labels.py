"""Label levels from the real FineGym / Diving48 / Kinetics / SSv1 label files, and their error messages."""

import json
import re
import string

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fineact.errors import AnnotationError, ConfigError
from fineact.labels import (
    FINEGYM_EVENTS,
    LabelLevels,
    consistency_rate,
    consistent_predict,
    diving48_levels,
    finegym_levels,
    flat_levels,
    read_class_names,
    read_diving48_vocab,
    read_finegym_elements,
    read_finegym_sets,
)


@pytest.fixture(scope="module")
def finegym_dir(shared_data):
    return shared_data / "finegym"


@pytest.fixture(scope="module")
def gym99(finegym_dir):
    return finegym_levels(finegym_dir / "gym99_categories.txt", finegym_dir / "set_categories.txt")


@pytest.fixture(scope="module")
def gym288(finegym_dir):
    return finegym_levels(finegym_dir / "gym288_categories.txt", finegym_dir / "set_categories.txt")


@pytest.fixture(scope="module")
def diving(shared_data):
    return diving48_levels(shared_data / "diving48" / "Diving48_vocab.json")


def parse_categories_simply(path):
    """An independent, naive reading of a category file: {Clabel: (set id, event tag, text)}."""
    rows = {}
    for line in path.read_text().splitlines():
        clabel, set_part, _, rest = line.split(";", 3)
        rows[int(clabel.split(":")[1])] = (int(set_part.split(":")[1]), rest.strip()[1:3], rest.strip())
    return rows


# ---------------------------------------------------------------------------------------------------------
# FineGym from the official files
# ---------------------------------------------------------------------------------------------------------

def test_gym99_has_4_events_14_sets_99_elements(gym99):
    assert gym99.level_names == ("event", "set", "element")
    assert gym99.finest == "element"
    assert gym99.num_classes == {"event": 4, "set": 14, "element": 99}
    assert gym99.is_tree
    assert gym99.original_ids["event"] == [1, 2, 3, 4]
    assert 23 not in gym99.original_ids["set"]  # FX side salto has no Gym99 element
    assert gym99.original_ids["set"] == sorted(gym99.original_ids["set"])
    assert [name[:2] for name in gym99.class_names["event"]] == ["VT", "FX", "BB", "UB"]
    assert "vault" in gym99.class_names["event"][0]


@pytest.mark.parametrize("clabel, set_id, event, name_start", [
    (0, 1, "VT", "(VT) round-off, flic-flac with 0.5 turn on"),
    (16, 21, "FX", "(FX) stag jump"),
    (43, 31, "BB", "(BB) split jump"),
    (73, 35, "BB", "(BB) salto backward stretched with 2.5 twist"),
    (79, 41, "UB", "(UB) giant circle backward"),
])
def test_gym99_spot_checks_against_the_file(gym99, clabel, set_id, event, name_start):
    derived = gym99.derive(clabel)
    assert gym99.original_ids["set"][derived["set"]] == set_id
    assert gym99.class_names["event"][derived["event"]].startswith(event)
    assert gym99.class_names["element"][clabel].startswith(name_start)
    assert gym99.original_ids["element"][clabel] == clabel


def test_trailing_spaces_are_stripped_from_element_names(gym99):
    assert gym99.class_names["element"][16] == "(FX) stag jump"
    assert gym99.class_names["element"][43] == "(BB) split jump"


@pytest.mark.parametrize("levels_name, file_name", [("gym99", "gym99_categories.txt"),
                                                    ("gym288", "gym288_categories.txt")])
def test_every_element_matches_an_independent_reading(request, finegym_dir, levels_name, file_name):
    levels = request.getfixturevalue(levels_name)
    rows = parse_categories_simply(finegym_dir / file_name)
    set_names = {int(line.split(";")[0].split(":")[1]): line.split(";")[1].strip()
                 for line in (finegym_dir / "set_categories.txt").read_text().splitlines()}
    assert levels.num_classes["element"] == len(rows)
    assert levels.num_classes["set"] == len({s for s, _, _ in rows.values()})
    assert levels.num_classes["event"] == len({tag for _, tag, _ in rows.values()})
    for clabel, (set_id, tag, text) in rows.items():
        derived = levels.derive(clabel)
        assert levels.original_ids["set"][derived["set"]] == set_id
        assert levels.class_names["set"][derived["set"]] == set_names[set_id]
        assert levels.class_names["event"][derived["event"]].startswith(tag)
        assert levels.class_names["element"][clabel] == text


def test_gym288_loads_with_set_23(gym288, finegym_dir):
    assert 23 in gym288.original_ids["set"]
    assert gym288.class_names["set"][gym288.original_ids["set"].index(23)] == "FX_side_salto"
    assert gym288.num_classes["set"] == len(read_finegym_sets(finegym_dir / "set_categories.txt"))
    assert gym288.is_tree


def test_event_of_each_set_is_its_first_digit(gym288):
    parents = gym288.parent_map("set", "event")
    for set_index, set_id in enumerate(gym288.original_ids["set"]):
        event_id = gym288.original_ids["event"][parents[set_index]]
        assert event_id == int(str(set_id)[0])
        assert gym288.class_names["set"][set_index].lower().startswith(
            "vault" if event_id == 1 else FINEGYM_EVENTS[event_id][0].lower())


def test_parent_map_agrees_with_finest_to(gym99):
    element_to_set = gym99.parent_map("element", "set")
    set_to_event = gym99.parent_map("set", "event")
    np.testing.assert_array_equal(element_to_set, gym99.finest_to["set"])
    np.testing.assert_array_equal(set_to_event[element_to_set], gym99.finest_to["event"])
    np.testing.assert_array_equal(gym99.parent_map("set", "set"), np.arange(14))
    with pytest.raises(ConfigError, match="not a function"):
        gym99.parent_map("event", "set")
    with pytest.raises(ConfigError, match="'sets'.*closest: 'set'"):
        gym99.parent_map("element", "sets")


# ---------------------------------------------------------------------------------------------------------
# Diving48, flat lists
# ---------------------------------------------------------------------------------------------------------

def test_diving48_vocab_gives_48_classes_and_4_attributes(diving, shared_data):
    vocab = json.loads((shared_data / "diving48" / "Diving48_vocab.json").read_text())
    assert diving.level_names == ("takeoff", "somersault", "twist", "flight", "class")
    assert diving.num_classes == {"takeoff": 4, "somersault": 8, "twist": 8, "flight": 4, "class": 48}
    assert not diving.is_tree
    assert diving.class_names["takeoff"] == ["Back", "Forward", "Inward", "Reverse"]
    assert diving.class_names["somersault"][:3] == ["Dive", "1som", "15som"]
    assert diving.class_names["twist"][:3] == ["NoTwis", "05Twis", "1Twis"]
    mmaction_names = (shared_data / "diving48" / "mmaction2_diving48_label_map.txt").read_text().split()
    assert diving.class_names["class"] == mmaction_names
    for c, attributes in enumerate(vocab):
        derived = diving.derive(c)
        assert [diving.class_names[level][derived[level]] for level in diving.level_names[:4]] == attributes
    takeoffs = np.bincount(diving.finest_to["takeoff"]).tolist()
    assert takeoffs == [sum(a[0] == name for a in vocab) for name in diving.class_names["takeoff"]]


def test_diving48_attributes_have_no_parent_map(diving):
    with pytest.raises(ConfigError, match="parallel attributes"):
        diving.parent_map("somersault", "takeoff")
    np.testing.assert_array_equal(diving.parent_map("class", "flight"), diving.finest_to["flight"])


def test_flat_levels_from_real_label_maps(shared_data):
    kinetics = read_class_names(shared_data / "kinetics400" / "label_map.txt")
    sthv1 = read_class_names(shared_data / "something_something" / "sthv1_label_map_mmaction2.txt")
    assert len(kinetics) == 400 and kinetics[:2] == ["abseiling", "air drumming"]
    assert len(sthv1) == 174 and sthv1[0] == "Holding something"
    levels = flat_levels(kinetics)
    assert levels.level_names == ("label",) and levels.num_classes["label"] == 400 and levels.is_tree
    assert levels.derive(7) == {"label": 7}
    assert flat_levels(sthv1, "action").finest == "action"


def test_class_names_errors_name_file_and_line(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("a\nb\n\nc\n")
    with pytest.raises(AnnotationError, match=re.escape(f"{path}:3") + ".*blank line"):
        read_class_names(path)
    path.write_text("a\nb\na\n")
    with pytest.raises(AnnotationError, match=re.escape(f"{path}:3") + ".*'a' again.*line 1"):
        read_class_names(path)
    path.write_text("")
    with pytest.raises(AnnotationError, match=re.escape(str(path)) + ".*no names"):
        read_class_names(path)
    path.write_text("a\nb\n\n\n")  # blank lines after the last name shift no id
    assert read_class_names(path) == ["a", "b"]
    with pytest.raises(AnnotationError, match="not found"):
        read_class_names(tmp_path / "missing.txt")


# ---------------------------------------------------------------------------------------------------------
# Malformed FineGym / Diving48 files
# ---------------------------------------------------------------------------------------------------------

SETS = "set: 1; vault\nset: 21; FX_leap_jump_hop\nset: 31; BB_leap_jump_hop\n"
ELEMENTS = ("Clabel:   0; set:  1; Glabel:   1; (VT) vault one\n"
            "Clabel:   1; set: 21; Glabel:  67; (FX) switch leap   \n"
            "Clabel:   2; set: 31; Glabel: 207; (BB) sissone\n")


def write_gym_files(tmp_path, elements=ELEMENTS, sets=SETS):
    categories, set_file = tmp_path / "categories.txt", tmp_path / "sets.txt"
    categories.write_text(elements)
    set_file.write_text(sets)
    return categories, set_file


def test_small_valid_category_files(tmp_path):
    levels = finegym_levels(*write_gym_files(tmp_path))
    assert levels.num_classes == {"event": 3, "set": 3, "element": 3}
    assert levels.class_names["element"][1] == "(FX) switch leap"


@pytest.mark.parametrize("elements, sets, bad_file, line, message", [
    (ELEMENTS.replace("Glabel:  67;", "Glabel: x;"), SETS, "categories", 2, "expected 'Clabel: <int>"),
    (ELEMENTS + "Clabel 3 set 21\n", SETS, "categories", 4, "expected 'Clabel: <int>"),
    (ELEMENTS.replace("(BB) sissone", ""), SETS, "categories", 3, "expected an element name"),
    (ELEMENTS + "Clabel:   1; set: 21; Glabel:  68; (FX) again\n", SETS, "categories", 4,
     "listed twice: Clabel 1 already appears at line 2"),
    (ELEMENTS + "Clabel:   1; set: 31; Glabel:  67; (BB) other set\n", SETS, "categories", 4,
     "listed twice: Clabel 1"),
    (ELEMENTS + "Clabel:   3; set: 21; Glabel:  67; (FX) same glabel\n", SETS, "categories", 4,
     "listed twice: Glabel 67 already appears at line 2"),
    (ELEMENTS.replace("set: 31;", "set: 33;"), SETS, "categories", 3, "found unknown set 33"),
    (ELEMENTS.replace("(FX) switch", "(VT) switch"), SETS, "categories", 2,
     r"set 21 belongs to event FX, but the line says \(VT\); expected \(FX\)"),
    (ELEMENTS + "Clabel:   4; set: 21; Glabel:  99; (FX) gap\n", SETS, "categories", 4,
     "expected Clabels 0..3 without gaps, found Clabel 4 where 3 is missing"),
    (ELEMENTS.replace("Clabel:   0", "Clabel:   7"), SETS, "categories", 2,
     "found Clabel 1 where 0 is missing"),
    (ELEMENTS, SETS + "set: 21; FX_turns\n", "sets", 4, "found set 21 again \\(first at line 2\\)"),
    (ELEMENTS, SETS + "set 22 FX_turns\n", "sets", 4, "expected 'set: <int>; <name>'"),
    (ELEMENTS, SETS + "set: 22;\n", "sets", 4, "expected 'set: <int>; <name>'"),
    (ELEMENTS, SETS + "set: 51; men_pommel\n", "sets", 4, "first digit is an event.*found 51"),
    (ELEMENTS, SETS + "set: 0; nothing\n", "sets", 4, "first digit is an event.*found 0"),
])
def test_category_file_errors_name_file_and_line(tmp_path, elements, sets, bad_file, line, message):
    categories, set_file = write_gym_files(tmp_path, elements, sets)
    bad = categories if bad_file == "categories" else set_file
    with pytest.raises(AnnotationError, match=re.escape(f"{bad}:{line}: ") + ".*" + message):
        finegym_levels(categories, set_file)


@pytest.mark.parametrize("bad_file", ["categories", "sets"])
def test_empty_category_files_are_errors(tmp_path, bad_file):
    categories, set_file = write_gym_files(tmp_path)
    bad = categories if bad_file == "categories" else set_file
    bad.write_text("\n\n")
    with pytest.raises(AnnotationError, match=re.escape(str(bad)) + ": expected .*found no lines"):
        finegym_levels(categories, set_file)


def test_category_file_that_is_not_utf8_names_the_line(tmp_path):
    categories, set_file = write_gym_files(tmp_path)
    categories.write_bytes(ELEMENTS.encode() + b"Clabel: 3; set: 1; Glabel: 5; (VT) caf\xe9\n")
    with pytest.raises(AnnotationError, match=re.escape(f"{categories}:4: expected UTF-8")):
        finegym_levels(categories, set_file)


@pytest.mark.parametrize("text, line, message", [
    ('[\n ["Back", "15som", "05Twis", "FREE"],\n ["Back", "15som", "05Twis"]\n]', 3,
     "expected class 1 as a list of 4 non-empty strings"),
    ('[\n ["Back", "15som", "05Twis", "FREE"],\n ["Back", 1, "05Twis", "FREE"]\n]', 3, "class 1"),
    ('[\n ["Back", "15som", "05Twis", "FREE"],\n "Back+15som"\n]', 3, "class 1"),
    ('[\n ["Back", "15som", "05Twis", "FREE"],\n ["Back", "15som", "05Twis", "FREE"]\n]', 3,
     "expected distinct classes, found class 1 .* equal to class 0"),
    ('[\n ["Back", "15som", "05Twis", "FREE"],\n ["Back", "15som" "05Twis", "FREE"]\n]', 3, "invalid JSON"),
    ('[\n ["Back", "15som", "05Twis", "FREE"]\n ["Back", "15som", "05Twis", "FREE"]\n]', 3, "expected ',' or ']'"),
    ('{"classes": []}', 1, "expected a JSON list"),
    ('[["Back", "15som", "05Twis", "FREE"]] trailing', 1, "expected the end of the file"),
])
def test_diving48_vocab_errors_name_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "vocab.json"
    path.write_text(text)
    with pytest.raises(AnnotationError, match=re.escape(f"{path}:{line}: ") + ".*" + message):
        diving48_levels(path)


def test_empty_diving48_vocab_is_an_error(tmp_path):
    path = tmp_path / "vocab.json"
    path.write_text("[]")
    with pytest.raises(AnnotationError, match="found \\[\\]"):
        read_diving48_vocab(path)


# ---------------------------------------------------------------------------------------------------------
# LabelLevels behaviour
# ---------------------------------------------------------------------------------------------------------

@pytest.fixture
def small_tree():
    """2 events, 3 sets, 4 elements: elements 0,1 -> set 0 -> event 0; 2 -> set 1 -> event 1; 3 -> set 2 -> event 1."""
    return LabelLevels(("event", "set", "element"),
                       {"event": ["E0", "E1"], "set": ["S0", "S1", "S2"], "element": ["a", "b", "c", "d"]},
                       {"event": [0, 0, 1, 1], "set": [0, 0, 1, 2]})


def test_derive_batch_matches_derive_and_passes_negatives_through(gym99):
    labels = torch.tensor([0, 16, 43, 79, 98, -1, -100])
    batch = gym99.derive_batch(labels)
    for i, label in enumerate(labels.tolist()):
        assert {level: int(v[i]) for level, v in batch.items()} == gym99.derive(label)
    assert batch["event"][-2:].tolist() == [-1, -100]
    assert gym99.derive_batch(labels.reshape(7, 1))["set"].shape == (7, 1)
    with pytest.raises(ValueError, match="out of range 0..98"):
        gym99.derive_batch(torch.tensor([99]))
    with pytest.raises(ValueError, match="out of range"):
        gym99.derive(99)


@pytest.mark.parametrize("levels_name", ["gym99", "diving"])
def test_to_dict_from_dict_round_trip(request, levels_name):
    levels = request.getfixturevalue(levels_name)
    restored = LabelLevels.from_dict(json.loads(json.dumps(levels.to_dict())))
    assert restored == levels
    assert restored.is_tree == levels.is_tree and restored.num_classes == levels.num_classes
    for level in levels.level_names:
        np.testing.assert_array_equal(restored.finest_to[level], levels.finest_to[level])
        assert restored.finest_to[level].dtype == np.int64
    with pytest.raises(AnnotationError, match="malformed"):
        LabelLevels.from_dict({"level_names": ["a"]})


def test_select_keeps_the_finest_level(gym99):
    assert gym99.select(["set"]).level_names == ("set", "element")
    assert gym99.select(["element", "event"]).level_names == ("event", "element")
    single = gym99.select(["element"])
    assert single.level_names == ("element",) and single.num_classes["element"] == 99
    with pytest.raises(ConfigError, match="closest: 'event'"):
        gym99.select(["evnt"])


@pytest.mark.parametrize("finest_to, message", [
    ({"event": [0, 0, 1, 1], "set": [0, 0, 1, 1]}, "reached by no"),
    ({"event": [0, 0, 1], "set": [0, 0, 1, 2]}, "shape"),
    ({"event": [0, 0, 1, 2], "set": [0, 0, 1, 2]}, "indices 0..1"),
    ({"event": [0, 0, 1, 1], "set": [0, 0, 1, 2], "element": [1, 0, 2, 3]}, "identity"),
])
def test_inconsistent_levels_are_rejected(finest_to, message):
    with pytest.raises(AnnotationError, match=message):
        LabelLevels(("event", "set", "element"),
                    {"event": ["E0", "E1"], "set": ["S0", "S1", "S2"], "element": ["a", "b", "c", "d"]}, finest_to)


def test_is_tree_detects_parallel_levels():
    # 'colour' is not a function of 'shape' (shape 0 has two colours): parallel attributes, not a tree.
    levels = LabelLevels(("colour", "shape", "item"), {"colour": ["r", "g"], "shape": ["o", "x"], "item": list("abc")},
                         {"colour": [0, 1, 1], "shape": [0, 0, 1]})
    assert not levels.is_tree


# ---------------------------------------------------------------------------------------------------------
# Consistent prediction
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("levels_name, weights", [("gym99", None), ("gym99", {"event": 1, "set": 2, "element": 4}),
                                                  ("diving", None)])
def test_consistent_predict_always_returns_a_valid_path(request, levels_name, weights):
    levels = request.getfixturevalue(levels_name)
    generator = torch.Generator().manual_seed(0)
    logits = {level: 3 * torch.randn(2000, k, generator=generator) for level, k in levels.num_classes.items()}
    predicted = consistent_predict(levels, logits, weights)
    assert set(predicted) == set(levels.level_names)
    for level in levels.level_names:
        expected = torch.from_numpy(levels.finest_to[level])[predicted[levels.finest]]
        assert torch.equal(predicted[level], expected)
    assert consistency_rate(levels, predicted) == 1.0
    independent = {level: v.argmax(1) for level, v in logits.items()}
    assert consistency_rate(levels, independent) < 0.5  # random heads rarely agree


def test_consistent_predict_maximises_the_weighted_path_score(gym99):
    generator = torch.Generator().manual_seed(1)
    logits = {level: torch.randn(50, k, generator=generator) for level, k in gym99.num_classes.items()}
    weights = {"event": 1.0, "set": 2.0, "element": 4.0}
    predicted = consistent_predict(gym99, logits, weights)["element"]
    log_probs = {level: torch.log_softmax(v, 1).numpy() for level, v in logits.items()}
    for n in range(50):
        scores = [sum(weights[level] * log_probs[level][n, gym99.finest_to[level][c]] for level in weights)
                  for c in range(99)]
        assert int(np.argmax(scores)) == int(predicted[n])


def test_consistent_predict_fixes_an_inconsistent_argmax(small_tree):
    # Independent argmaxes: event E0, set S2, element d; but d belongs to S2 -> E1, so the path is inconsistent.
    log_probs = {"event": torch.tensor([[0.6, 0.4]]).log(),
                 "set": torch.tensor([[0.3, 0.3, 0.4]]).log(),
                 "element": torch.tensor([[0.3, 0.05, 0.25, 0.4]]).log()}
    independent = {level: v.argmax(1) for level, v in log_probs.items()}
    assert {level: int(v) for level, v in independent.items()} == {"event": 0, "set": 2, "element": 3}
    assert consistency_rate(small_tree, independent) == 0.0
    predicted = consistent_predict(small_tree, log_probs)
    # Path scores: a=.6*.3*.3=.054, b=.6*.3*.05=.009, c=.4*.3*.25=.03, d=.4*.4*.4=.064 -> d, with its own set and event.
    assert {level: int(v) for level, v in predicted.items()} == {"event": 1, "set": 2, "element": 3}
    # Trusting the event head more flips the decision to the best element under E0.
    predicted = consistent_predict(small_tree, log_probs, {"event": 4.0})
    assert {level: int(v) for level, v in predicted.items()} == {"event": 0, "set": 0, "element": 0}


def test_consistent_predict_on_a_subset_of_levels(small_tree):
    log_probs = {"event": torch.tensor([[0.1, 0.9]]).log(), "element": torch.tensor([[0.5, 0.2, 0.2, 0.1]]).log()}
    predicted = consistent_predict(small_tree, log_probs)
    assert int(predicted["element"]) == 2 and int(predicted["set"]) == 1 and int(predicted["event"]) == 1
    with pytest.raises(ValueError, match="shape \\(N, 3\\)"):
        consistent_predict(small_tree, {"set": torch.zeros(1, 4)})
    with pytest.raises(ValueError, match="same number of samples"):
        consistent_predict(small_tree, {"set": torch.zeros(1, 3), "element": torch.zeros(2, 4)})
    with pytest.raises(ValueError, match="weight given for level 'set'"):
        consistent_predict(small_tree, {"element": torch.zeros(1, 4)}, {"set": 2.0})


def test_consistency_rate_on_a_constructed_case(small_tree):
    predictions = {"event": torch.tensor([0, 1, 1, 0]), "set": torch.tensor([0, 1, 2, 1]),
                   "element": torch.tensor([1, 2, 3, 2])}
    # sample 3: element c -> set S1 -> event E1, but the event head said E0.
    assert consistency_rate(small_tree, predictions) == 0.75
    assert consistency_rate(small_tree, {"element": predictions["element"]}) == 1.0
    with pytest.raises(ValueError, match="finest level 'element'"):
        consistency_rate(small_tree, {"event": predictions["event"]})


# ---------------------------------------------------------------------------------------------------------
# Property: arbitrary text never escapes as anything but AnnotationError
# ---------------------------------------------------------------------------------------------------------

TOKENS = ["Clabel:", "set:", "Glabel:", ";", " ", "  ", "\t", "\n", "\r\n", "#", "0", "1", "7", "21", "23", "51",
          "-1", "(VT)", "(FX)", "(XX)", "(", ")", "vault", "name", "[", "]", ",", '"', '"Back"', "{", "}", "\ufeff"]
annotation_text = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(st.sampled_from(TOKENS), st.text(string.printable, max_size=4)), max_size=60).map("".join),
)
property_settings = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("label_properties")


def only_annotation_errors(call, path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    try:
        call(path)
    except AnnotationError:
        pass


@pytest.mark.parametrize("parser", [read_finegym_elements, read_finegym_sets, read_class_names, read_diving48_vocab],
                         ids=lambda f: f.__name__)
@property_settings
@given(content=st.one_of(annotation_text, st.binary(max_size=50)))
def test_label_parsers_raise_only_annotation_errors(scratch, parser, content):
    only_annotation_errors(parser, scratch / f"{parser.__name__}.txt", content)


@property_settings
@given(content=annotation_text)
def test_finegym_levels_raise_only_annotation_errors(scratch, content):
    set_file = scratch / "sets.txt"
    set_file.write_text(SETS)
    only_annotation_errors(lambda p: finegym_levels(p, set_file), scratch / "categories.txt", ELEMENTS + content)
