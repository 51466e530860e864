"""Label levels: every coarser label is derived from the finest one.

A sample carries only its finest label (a FineGym element, a Diving48 class, a Kinetics class). Coarser
levels -- FineGym's set and event, Diving48's takeoff / somersault / twist / flight attributes -- are looked up
through a `LabelLevels` object, so the two can never disagree and no annotation file has to repeat them.

Sources read here:
- FineGym `gym99_categories.txt` / `gym288_categories.txt`, one element per line:
  `Clabel: <id>; set: <set id>; Glabel: <global id>; (<EV>) <description>`, and `set_categories.txt`:
  `set: <set id>; <NAME>`. The event of a set is the first digit of its id (1 vault, 2x floor, 3x beam,
  4x bars); the official files have no event table, so it lives here (`FINEGYM_EVENTS`).
- Diving48 `Diving48_vocab.json`: a JSON list, class id = index, each class `[takeoff, somersault, twist, flight]`.
- Plain class-name lists (Kinetics `label_map.txt`, Something-Something label maps): one name per line, line
  index = class id.

Level indices are always 0..K-1. For FineGym they follow the ascending source id (set 1, 21, 22, ...), which
keeps them stable when a file is re-read; `original_ids` keeps the source ids for display.

Beyond the paper: `consistent_predict` decodes a prediction that is a valid path through the levels (the
paper predicts each level independently, so its event, set and element can contradict each other), and
`consistency_rate` measures how often independent predictions contradict each other.

Every malformed file raises `AnnotationError` with `file:line`, what was expected and what was found.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch

from fineact.data.textfiles import PathLike, closest_hint, read_json_list, read_numbered_lines, read_text
from fineact.errors import AnnotationError, ConfigError

__all__ = [
    "FINEGYM_EVENTS",
    "FINEGYM_LEVELS",
    "DIVING48_LEVELS",
    "LabelLevels",
    "FineGymElement",
    "read_finegym_elements",
    "read_finegym_sets",
    "finegym_event_of_set",
    "finegym_levels",
    "read_diving48_vocab",
    "diving48_levels",
    "flat_levels",
    "read_class_names",
    "consistent_predict",
    "consistency_rate",
    "consistent_samples",
]

# Event id (first digit of a set id) -> (abbreviation used in the category files, full name).
FINEGYM_EVENTS: dict[int, tuple[str, str]] = {
    1: ("VT", "vault"),
    2: ("FX", "floor exercise"),
    3: ("BB", "balance beam"),
    4: ("UB", "uneven bars"),
}
FINEGYM_LEVELS = ("event", "set", "element")
DIVING48_LEVELS = ("takeoff", "somersault", "twist", "flight", "class")


# ----------------------------------------------------------------------------------------------------------
# LabelLevels
# ----------------------------------------------------------------------------------------------------------

class LabelLevels:
    """Named label levels, coarse to fine; every level is a function of the finest one.

    Attributes:
        level_names: coarse -> fine; the last is the finest (the label samples carry).
        class_names: per level, index -> readable name (names need not be unique: FineGym has
            "(BB) salto backward tucked" both as a flight element and as a dismount).
        num_classes: per level, number of classes.
        finest_to: per level, int64 array (num_finest,): finest label -> that level's index.
        original_ids: per level, index -> id in the source files (set 21, Clabel 16, event 2).
        is_tree: every level is a function of the next finer one (FineGym); False for parallel attributes
            (Diving48, where a somersault count does not determine the takeoff).

    Negative labels (an unlabeled test split uses -1, cross-entropy's ignore index is -100) are passed through
    unchanged by `derive` and `derive_batch`, so "no label" stays "no label" at every level.
    """

    def __init__(self, level_names: Sequence[str], class_names: Mapping[str, Sequence[str]],
                 finest_to: Mapping[str, Sequence[int] | np.ndarray] | None = None,
                 original_ids: Mapping[str, Sequence[int]] | None = None):
        self.level_names = tuple(level_names)
        _check_level_names(self.level_names)
        missing = [level for level in self.level_names if level not in class_names]
        if missing:
            raise AnnotationError(f"label levels: class names missing for levels {missing}")
        self.class_names = {level: [str(n) for n in class_names[level]] for level in self.level_names}
        self.num_classes = {level: len(self.class_names[level]) for level in self.level_names}
        num_finest = self.num_classes[self.finest]
        finest_to = dict(finest_to or {})
        finest_to.setdefault(self.finest, np.arange(num_finest))
        missing = [level for level in self.level_names if level not in finest_to]
        if missing:
            raise AnnotationError(f"label levels: finest_to missing for levels {missing}")
        self.finest_to = {level: np.asarray(finest_to[level], dtype=np.int64).copy() for level in self.level_names}
        ids = dict(original_ids or {})
        self.original_ids = {level: [int(i) for i in ids.get(level, range(self.num_classes[level]))]
                             for level in self.level_names}
        self._validate()
        self.is_tree = all(_is_function(self.finest_to[finer], self.finest_to[coarser])
                           for coarser, finer in zip(self.level_names, self.level_names[1:]))

    @property
    def finest(self) -> str:
        return self.level_names[-1]

    def _validate(self) -> None:
        num_finest = self.num_classes[self.finest]
        if num_finest == 0:
            raise AnnotationError(f"label levels: the finest level {self.finest!r} has no classes")
        if not np.array_equal(self.finest_to[self.finest], np.arange(num_finest)):
            raise AnnotationError(f"label levels: finest_to[{self.finest!r}] must be the identity 0..{num_finest - 1}")
        for level in self.level_names:
            table, count = self.finest_to[level], self.num_classes[level]
            if table.shape != (num_finest,):
                raise AnnotationError(f"label levels: finest_to[{level!r}] must have shape ({num_finest},), "
                                      f"found {table.shape}")
            if table.min() < 0 or table.max() >= count:
                raise AnnotationError(f"label levels: finest_to[{level!r}] must hold indices 0..{count - 1}, "
                                      f"found {table.min()}..{table.max()}")
            unused = sorted(set(range(count)) - set(table.tolist()))
            if unused:
                # A class no finest label maps to can never be a target: a head would carry a dead output.
                raise AnnotationError(f"label levels: level {level!r} classes {unused[:5]} are reached by no "
                                      f"{self.finest!r} class; a level must contain only classes that occur")
            if len(self.original_ids[level]) != count:
                raise AnnotationError(f"label levels: original_ids[{level!r}] must have {count} entries, "
                                      f"found {len(self.original_ids[level])}")

    def _level(self, name: str) -> str:
        if name not in self.level_names:
            raise ConfigError(f"unknown label level {name!r}: expected one of {list(self.level_names)}"
                              f"{closest_hint(name, self.level_names)}")
        return name

    def derive(self, finest_label: int) -> dict[str, int]:
        """The label at every level for one finest label (a negative 'no label' stays as it is)."""
        label = int(finest_label)
        if label < 0:
            return {level: label for level in self.level_names}
        if label >= self.num_classes[self.finest]:
            raise ValueError(f"{self.finest} label {label} out of range 0..{self.num_classes[self.finest] - 1}")
        return {level: int(self.finest_to[level][label]) for level in self.level_names}

    def derive_batch(self, finest_labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Labels at every level for a tensor of finest labels (any shape, same device; negatives pass through).

        The range is checked only for CPU tensors: on a GPU the check would synchronise every step, and labels
        were already checked when the annotation file was read.
        """
        labels = torch.as_tensor(finest_labels).long()
        num_finest = self.num_classes[self.finest]
        if labels.device.type == "cpu" and labels.numel() and int(labels.max()) >= num_finest:
            raise ValueError(f"{self.finest} label {int(labels.max())} out of range 0..{num_finest - 1}")
        known = labels >= 0
        safe = labels.clamp(min=0)
        out = {}
        for level in self.level_names:
            if level == self.finest:
                out[level] = labels
                continue
            table = torch.from_numpy(self.finest_to[level]).to(labels.device)
            out[level] = torch.where(known, table[safe], labels)
        return out

    def parent_map(self, child: str, parent: str) -> np.ndarray:
        """int64 array (num_child,): child index -> parent index.

        Defined only where the parent is a function of the child: any coarser level of a tree, or any level
        of the finest one (that is `finest_to`). Diving48's attributes are parallel, so there is no parent
        map from a somersault count to a takeoff.
        """
        self._level(child), self._level(parent)
        child_to, parent_to = self.finest_to[child], self.finest_to[parent]
        if not _is_function(child_to, parent_to):
            hint = "" if self.is_tree else " (these levels are parallel attributes, not a tree)"
            raise ConfigError(f"label level {parent!r} is not a function of {child!r}: no parent map{hint}")
        table = np.zeros(self.num_classes[child], dtype=np.int64)
        table[child_to] = parent_to
        return table

    def select(self, names: Iterable[str]) -> LabelLevels:
        """A subset of the levels (order kept, the finest always kept: coarser labels derive from it)."""
        wanted = [self._level(n) for n in names]
        if len(set(wanted)) != len(wanted):
            raise ConfigError(f"label levels listed twice in {wanted}")
        keep = [level for level in self.level_names if level in wanted or level == self.finest]
        return LabelLevels(keep, {k: self.class_names[k] for k in keep}, {k: self.finest_to[k] for k in keep},
                           {k: self.original_ids[k] for k in keep})

    def to_dict(self) -> dict:
        """A JSON-serialisable description (stored in checkpoints next to the weights)."""
        return {
            "level_names": list(self.level_names),
            "class_names": {k: list(v) for k, v in self.class_names.items()},
            "finest_to": {k: v.tolist() for k, v in self.finest_to.items()},
            "original_ids": {k: list(v) for k, v in self.original_ids.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> LabelLevels:
        try:
            return cls(d["level_names"], d["class_names"], d["finest_to"], d.get("original_ids"))
        except (KeyError, TypeError, ValueError) as err:
            raise AnnotationError(f"label levels: malformed description ({type(err).__name__}: {err})") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelLevels) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.num_classes.items())
        return f"LabelLevels({sizes}, is_tree={self.is_tree})"


def _check_level_names(names: tuple[str, ...]) -> None:
    if not names:
        raise AnnotationError("label levels: at least one level is needed")
    if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
        raise AnnotationError(f"label levels: level names must be distinct non-empty strings, found {list(names)}")


def _is_function(source: np.ndarray, target: np.ndarray) -> bool:
    """Whether target is determined by source over the same finest classes (source[c] == source[d] => same target)."""
    table = np.full(int(source.max()) + 1 if source.size else 0, -1, dtype=np.int64)
    table[source] = target  # with repeated sources the last write wins; the check below catches any conflict
    return bool(np.array_equal(table[source], target))


# ----------------------------------------------------------------------------------------------------------
# FineGym
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FineGymElement:
    """One line of gym99_categories.txt / gym288_categories.txt."""

    clabel: int          # class id in the split files (0..K-1)
    set_id: int          # id in set_categories.txt
    glabel: int          # id among all 530 FineGym elements
    event_abbrev: str | None  # "VT", "FX", ... as written in the line; None if the line has no "(XX)"
    name: str            # the line's text after "Glabel: n;", event tag included, trailing spaces removed
    line: int


_ELEMENT_LINE = re.compile(r"Clabel:\s*(\d{1,9})\s*;\s*set:\s*(\d{1,9})\s*;\s*Glabel:\s*(\d{1,9})\s*;\s*(.*)", re.ASCII)
_EVENT_TAG = re.compile(r"\(([A-Za-z]{2})\)")
_SET_LINE = re.compile(r"set:\s*(\d{1,9})\s*;\s*(.*)", re.ASCII)


def read_finegym_elements(path: PathLike) -> list[FineGymElement]:
    """The elements of a FineGym category file, checked for duplicates and contiguous Clabels (0..K-1)."""
    elements: list[FineGymElement] = []
    seen_clabel: dict[int, int] = {}
    seen_glabel: dict[int, int] = {}
    for number, text in read_numbered_lines(path, "FineGym category file"):
        element = _parse_element_line(path, number, text)
        for key, seen, what in ((element.clabel, seen_clabel, "Clabel"), (element.glabel, seen_glabel, "Glabel")):
            if key in seen:
                raise AnnotationError(f"{path}:{number}: element listed twice: {what} {key} already appears at "
                                      f"line {seen[key]}; expected each element once, under one set")
            seen[key] = number
        elements.append(element)
    if not elements:
        raise AnnotationError(f"{path}: expected FineGym category lines 'Clabel: n; set: n; Glabel: n; (EV) name', "
                              f"found no lines")
    _check_contiguous_clabels(path, elements)
    return elements


def _parse_element_line(path: PathLike, number: int, text: str) -> FineGymElement:
    match = _ELEMENT_LINE.fullmatch(text.strip())
    if match is None:
        raise AnnotationError(f"{path}:{number}: expected 'Clabel: <int>; set: <int>; Glabel: <int>; (EV) <name>', "
                              f"found {text.strip()[:80]!r}")
    name = match.group(4).strip()
    if not name:
        raise AnnotationError(f"{path}:{number}: expected an element name after 'Glabel: {match.group(3)};', "
                              f"found nothing")
    tag = _EVENT_TAG.match(name)
    return FineGymElement(int(match.group(1)), int(match.group(2)), int(match.group(3)),
                          tag.group(1).upper() if tag else None, name, number)


def _check_contiguous_clabels(path: PathLike, elements: list[FineGymElement]) -> None:
    # Clabels are the labels in the split files and the rows of a classifier: a gap would leave a dead output
    # and shift every later class if someone re-indexed. Report the first missing id at the line after the gap.
    by_clabel = sorted(elements, key=lambda e: e.clabel)
    for expected, element in enumerate(by_clabel):
        if element.clabel != expected:
            raise AnnotationError(f"{path}:{element.line}: expected Clabels 0..{len(elements) - 1} without gaps, "
                                  f"found Clabel {element.clabel} where {expected} is missing")


def read_finegym_sets(path: PathLike) -> dict[int, tuple[str, int]]:
    """set_categories.txt as {set id: (name, line number)}, in file order."""
    sets: dict[int, tuple[str, int]] = {}
    for number, text in read_numbered_lines(path, "FineGym set file"):
        match = _SET_LINE.fullmatch(text.strip())
        if match is None or not match.group(2).strip():
            raise AnnotationError(f"{path}:{number}: expected 'set: <int>; <name>', found {text.strip()[:80]!r}")
        set_id, name = int(match.group(1)), match.group(2).strip()
        if set_id in sets:
            raise AnnotationError(f"{path}:{number}: expected each set id once, found set {set_id} again "
                                  f"(first at line {sets[set_id][1]})")
        if finegym_event_of_set(set_id) not in FINEGYM_EVENTS:
            raise AnnotationError(f"{path}:{number}: expected a set id whose first digit is an event "
                                  f"({', '.join(f'{k}={v[0]}' for k, v in FINEGYM_EVENTS.items())}), found {set_id}")
        sets[set_id] = (name, number)
    if not sets:
        raise AnnotationError(f"{path}: expected set lines 'set: <int>; <name>', found no lines")
    return sets


def finegym_event_of_set(set_id: int) -> int:
    """Event id of a set: its first digit (set 1 -> 1 vault, 21..25 -> 2 floor, 31..35 -> 3 beam, 41..44 -> 4)."""
    return set_id if set_id < 10 else set_id // 10


def finegym_levels(categories_file: PathLike, set_categories_file: PathLike) -> LabelLevels:
    """event -> set -> element levels from a FineGym category file and set_categories.txt.

    Only sets and events that have at least one element are levels' classes (Gym99: 4 events, 14 sets -- set 23
    has no Gym99 element -- and 99 elements), each level indexed in ascending order of its source id.
    """
    sets = read_finegym_sets(set_categories_file)
    elements = sorted(read_finegym_elements(categories_file), key=lambda e: e.clabel)
    for element in elements:
        _check_element_set(categories_file, element, sets)
    set_ids = sorted({e.set_id for e in elements})
    event_ids = sorted({finegym_event_of_set(s) for s in set_ids})
    set_index = {s: i for i, s in enumerate(set_ids)}
    event_index = {v: i for i, v in enumerate(event_ids)}
    return LabelLevels(
        FINEGYM_LEVELS,
        class_names={
            "event": [f"{FINEGYM_EVENTS[v][0]} ({FINEGYM_EVENTS[v][1]})" for v in event_ids],
            "set": [sets[s][0] for s in set_ids],
            "element": [e.name for e in elements],
        },
        finest_to={
            "event": [event_index[finegym_event_of_set(e.set_id)] for e in elements],
            "set": [set_index[e.set_id] for e in elements],
        },
        original_ids={"event": event_ids, "set": set_ids, "element": [e.clabel for e in elements]},
    )


def _check_element_set(path: PathLike, element: FineGymElement, sets: Mapping[int, tuple[str, int]]) -> None:
    if element.set_id not in sets:
        raise AnnotationError(f"{path}:{element.line}: expected a set id from the set file "
                              f"({', '.join(map(str, sets))}), found unknown set {element.set_id}")
    abbrev = FINEGYM_EVENTS[finegym_event_of_set(element.set_id)][0]
    if element.event_abbrev is not None and element.event_abbrev != abbrev:
        raise AnnotationError(f"{path}:{element.line}: set {element.set_id} belongs to event {abbrev}, but the line "
                              f"says ({element.event_abbrev}); expected ({abbrev})")


# ----------------------------------------------------------------------------------------------------------
# Diving48
# ----------------------------------------------------------------------------------------------------------

def read_diving48_vocab(path: PathLike) -> list[tuple[str, str, str, str]]:
    """Diving48_vocab.json: class id -> (takeoff, somersault, twist, flight)."""
    items = read_json_list(path, "Diving48 vocabulary")
    vocab = []
    for index, (line, item) in enumerate(items):
        if (not isinstance(item, list) or len(item) != 4
                or not all(isinstance(a, str) and a.strip() for a in item)):
            raise AnnotationError(f"{path}:{line}: expected class {index} as a list of 4 non-empty strings "
                                  f"[takeoff, somersault, twist, flight], found {json.dumps(item)[:80]}")
        vocab.append(tuple(a.strip() for a in item))
    if not vocab:
        raise AnnotationError(f"{path}: expected a list of classes [takeoff, somersault, twist, flight], found []")
    seen: dict[tuple, int] = {}
    for index, attributes in enumerate(vocab):
        if attributes in seen:
            raise AnnotationError(f"{path}:{items[index][0]}: expected distinct classes, found class {index} "
                                  f"{list(attributes)} equal to class {seen[attributes]}")
        seen[attributes] = index
    return vocab


def _dive_amount(value: str) -> float:
    """Somersault/twist count in Diving48's notation: '15som' = 1.5, '05Twis' = 0.5, '2som' = 2; none -> 0."""
    digits = re.match(r"[0-9]+", value)
    if digits is None:
        return 0.0  # 'Dive', 'NoTwis', and the takeoffs / flight positions (ordered by name instead)
    text = digits.group(0)
    return int(text) if len(text) == 1 else int(text[:-1]) + int(text[-1]) / 10


def diving48_levels(vocab_json: PathLike) -> LabelLevels:
    """Levels ("takeoff", "somersault", "twist", "flight", "class") from Diving48_vocab.json.

    The four attributes are parallel (is_tree False). Attribute values are indexed in increasing amount
    (Dive, 1som, 15som, 2som, ...; NoTwis, 05Twis, 1Twis, ...) and by name where there is no amount (Back,
    Forward, Inward, Reverse; FREE, PIKE, STR, TUCK). Class names join the attributes with '+'
    ("Back+15som+05Twis+FREE"), as in the widely used label map. original_ids are the level indices
    themselves: the vocabulary has no ids of its own besides the class index.
    """
    vocab = read_diving48_vocab(vocab_json)
    class_names = {"class": ["+".join(attributes) for attributes in vocab]}
    finest_to = {}
    for position, level in enumerate(DIVING48_LEVELS[:-1]):
        values = sorted({attributes[position] for attributes in vocab}, key=lambda v: (_dive_amount(v), v))
        index = {v: i for i, v in enumerate(values)}
        class_names[level] = values
        finest_to[level] = [index[attributes[position]] for attributes in vocab]
    return LabelLevels(DIVING48_LEVELS, class_names, finest_to)


# ----------------------------------------------------------------------------------------------------------
# Flat label lists
# ----------------------------------------------------------------------------------------------------------

def read_class_names(path: PathLike) -> list[str]:
    """One class name per line, line index = class id (Kinetics label_map.txt, SSv1/SSv2 label maps).

    A blank line inside the list is an error, since skipping it would shift every later class id by one;
    blank lines after the last name are ignored (they shift nothing). Names must be distinct because
    readers look classes up by name.
    """
    lines = read_text(path, "class-name file").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    names: list[str] = []
    first_line: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        name = raw.strip()
        if not name:
            raise AnnotationError(f"{path}:{number}: expected a class name (line {number} = class {number - 1}), "
                                  f"found a blank line")
        if name in first_line:
            raise AnnotationError(f"{path}:{number}: expected distinct class names, found {name!r} again "
                                  f"(first at line {first_line[name]})")
        first_line[name] = number
        names.append(name)
    if not names:
        raise AnnotationError(f"{path}: expected one class name per line, found no names")
    return names


def flat_levels(class_names: Sequence[str], level_name: str = "label") -> LabelLevels:
    """A single level (Kinetics, Something-Something)."""
    return LabelLevels((level_name,), {level_name: list(class_names)})


# ----------------------------------------------------------------------------------------------------------
# Hierarchy-consistent prediction (beyond the paper)
# ----------------------------------------------------------------------------------------------------------

def consistent_predict(levels: LabelLevels, log_probs: Mapping[str, torch.Tensor],
                       weights: Mapping[str, float] | None = None) -> dict[str, torch.Tensor]:
    """The best *consistent* prediction: one finest class and the labels derived from it at every level.

    Chooses c = argmax_c sum_level w_level * log_probs[level][:, finest_to[level][c]], i.e. the finest class
    whose whole path (event, set, element; or takeoff, somersault, ..., class) scores highest, so the returned
    labels always form a valid path. This works for trees and for parallel attributes alike.

    log_probs: {level: (N, K_level)} for any subset of the levels. Raw logits are fine too: log_softmax is
        applied first, and it leaves log-probabilities unchanged.
    weights: per level (default 1 each). The paper's loss weights 1 : 2 : 4 (event : set : element) are a
        natural choice when trusting the finer heads more.
    Returns {level: (N,) int64} for every level of `levels`.
    """
    if not log_probs:
        raise ValueError("consistent_predict needs the scores of at least one level")
    weights = dict(weights or {})
    for name in weights:
        if name not in log_probs:
            raise ValueError(f"weight given for level {name!r}, which has no scores (scored: {list(log_probs)})")
    count = _sample_count(levels, log_probs)
    total = None
    for level, scores in log_probs.items():
        table = torch.from_numpy(levels.finest_to[level]).to(scores.device)
        term = float(weights.get(level, 1.0)) * torch.log_softmax(scores.float(), dim=1)[:, table]
        total = term if total is None else total + term
    assert total is not None and total.shape[0] == count
    return levels.derive_batch(total.argmax(dim=1))


def _sample_count(levels: LabelLevels, log_probs: Mapping[str, torch.Tensor]) -> int:
    """N, after checking every level's scores are (N, K_level) with the same N."""
    counts = set()
    for level, scores in log_probs.items():
        expected = levels.num_classes[levels._level(level)]
        if scores.dim() != 2 or scores.shape[1] != expected:
            raise ValueError(f"scores of level {level!r} must have shape (N, {expected}), found {tuple(scores.shape)}")
        counts.add(scores.shape[0])
    if len(counts) != 1:
        raise ValueError(f"scores of all levels must have the same number of samples, found {sorted(counts)}")
    return counts.pop()


def consistent_samples(levels: LabelLevels, predictions: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Per sample, whether its per-level predictions form a valid path: a (N,) bool tensor.

    predictions: {level: (N,) predicted index}, e.g. independent argmaxes of each head; it must include the
    finest level. A sample is consistent when every given level equals the label derived from its finest
    prediction. Evaluation (engine/module.py) and `consistency_rate` both count with this function.
    """
    if levels.finest not in predictions:
        raise ValueError(f"consistency needs the finest level {levels.finest!r} among {list(predictions)}")
    derived = levels.derive_batch(torch.as_tensor(predictions[levels.finest]))
    count = derived[levels.finest].numel()
    agree = torch.ones(count, dtype=torch.bool, device=derived[levels.finest].device)
    for level, predicted in predictions.items():
        predicted = torch.as_tensor(predicted).to(agree.device).reshape(-1)
        if predicted.numel() != count:
            raise ValueError(f"predictions of level {levels._level(level)!r} have {predicted.numel()} samples, "
                             f"the finest level has {count}")
        agree &= predicted == derived[levels._level(level)].reshape(-1)
    return agree


def consistency_rate(levels: LabelLevels, predictions: Mapping[str, torch.Tensor]) -> float:
    """Share of samples whose per-level predictions form a valid path (see `consistent_samples`)."""
    agree = consistent_samples(levels, predictions)
    if agree.numel() == 0:
        raise ValueError("consistency_rate needs at least one sample")
    return float(agree.float().mean())
