"""Groups of similar classes: where they come from (files, label hierarchies, Diving48 attributes).

A group is a (name, [class indices]) pair; `fineact.analysis.confusion` compares models group by group on
their confusion matrices (ARC paper, appendix A.1, Fig. 4). Sources:
- `read_groups`: the Something-Something contrastive groups (blank-line separated class names, official
  TwentyBN file) and the 50 action groups TSV (class, group, ... columns); names are matched to the class list
  of the model, so the same file serves the SSv1 (CSV order) and the sorted (TSM / SSv2) class orders.
- `hierarchy_groups` / `finegym_set_groups`: FineGym elements grouped by their set (or sets by event).
- `diving48_attribute_groups`: Diving48 classes sharing an attribute value (e.g. takeoff = Back), and
  `diving48_contrast_groups`: classes that differ in one attribute only (the hardest confusions).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from fineact.errors import AnnotationError
from fineact.data.textfiles import closest_hint, read_numbered_lines
from fineact.labels import LabelLevels

PathLike = str | os.PathLike
Group = tuple[str, list[int]]


# -- group files ----------------------------------------------------------------------------------------

def _name_key(name: str) -> str:
    """Matching key for class names: case, brackets ('[something]' in SSv2 templates) and spacing ignored."""
    return " ".join(name.replace("[", "").replace("]", "").lower().split())


class _NameIndex:
    def __init__(self, class_names: Sequence[str]):
        self.names = [str(n) for n in class_names]
        if not self.names:
            raise AnnotationError("read_groups: the class-name list is empty")
        self.exact = {n: i for i, n in enumerate(self.names)}
        self.loose: dict[str, int] = {}
        for i, n in enumerate(self.names):
            self.loose.setdefault(_name_key(n), i)

    def lookup(self, name: str, path: PathLike, line: int) -> int:
        if name in self.exact:
            return self.exact[name]
        key = _name_key(name)
        if key in self.loose:
            return self.loose[key]
        raise AnnotationError(f"{path}:{line}: unknown class name {name!r}{closest_hint(name, self.names)}; "
                              f"expected one of the {len(self.names)} class names of the model's label list")


def read_groups(path: PathLike, class_names: Sequence[str], kind: str = "auto") -> list[Group]:
    """Groups of similar classes from a file, as (group name, [class indices into `class_names`]).

    kind:
      "contrastive": one class name per line, groups separated by blank lines, '#' lines ignored (the official
          Something-Something contrastive_groups_list.txt). The file has no group names: a group is named
          "<its first class> (+k)".
      "tsv": tab-separated with a header that has the columns `class` and `group` (others, e.g. group_id,
          sthv1_csv_idx, sorted_idx, are ignored: classes are matched by name); '#' lines ignored; groups in
          order of first appearance.
      "auto": "tsv" for a .tsv file or when the first non-comment line holds a tab, else "contrastive".
    Names match exactly, else ignoring case, brackets and spacing. An unknown name raises AnnotationError
    naming the file, the line and the closest class names. A class listed twice in one group counts once.
    """
    if kind not in ("auto", "contrastive", "tsv"):
        raise ValueError(f"read_groups: kind must be 'auto', 'contrastive' or 'tsv', got {kind!r}")
    index = _NameIndex(class_names)
    if kind == "auto":
        lines = read_numbered_lines(path, "group file")
        first = lines[0][1] if lines else ""
        kind = "tsv" if Path(path).suffix.lower() == ".tsv" or "\t" in first else "contrastive"
    groups = _read_tsv_groups(path, index) if kind == "tsv" else _read_contrastive_groups(path, index)
    if not groups:
        raise AnnotationError(f"{path}: expected groups of class names, found none")
    return groups


def _read_contrastive_groups(path: PathLike, index: _NameIndex) -> list[Group]:
    # read_numbered_lines drops blank lines but keeps the line numbers, so a gap in the numbers is a separator.
    groups: list[Group] = []
    current: list[int] = []
    current_names: list[str] = []
    previous = None
    for number, text in read_numbered_lines(path, "contrastive group file", skip_comments=False):
        stripped = text.strip()
        separated = previous is not None and number > previous + 1
        previous = number
        if stripped.startswith("#"):
            # A comment line also ends a group: the official file puts "# 0 0 1" tags between groups.
            separated = True
        if separated and current:
            groups.append(_contrastive_group(current_names, current))
            current, current_names = [], []
        if stripped.startswith("#"):
            continue
        i = index.lookup(stripped, path, number)
        if i not in current:
            current.append(i)
            current_names.append(index.names[i])
    if current:
        groups.append(_contrastive_group(current_names, current))
    return groups


def _contrastive_group(names: list[str], indices: list[int]) -> Group:
    extra = f" (+{len(names) - 1})" if len(names) > 1 else ""
    return f"{names[0]}{extra}", list(indices)


def _read_tsv_groups(path: PathLike, index: _NameIndex) -> list[Group]:
    rows = read_numbered_lines(path, "group TSV file")
    if not rows:
        raise AnnotationError(f"{path}: expected a header line with columns 'class' and 'group', found no lines")
    header_line, header = rows[0]
    columns = [c.strip().lower() for c in header.split("\t")]
    missing = [c for c in ("class", "group") if c not in columns]
    if missing:
        raise AnnotationError(f"{path}:{header_line}: expected a tab-separated header with columns 'class' and "
                              f"'group', found {header.strip()[:80]!r} (missing {missing})")
    c_class, c_group = columns.index("class"), columns.index("group")
    groups: dict[str, list[int]] = {}
    for number, text in rows[1:]:
        fields = text.split("\t")
        if len(fields) != len(columns):
            raise AnnotationError(f"{path}:{number}: expected {len(columns)} tab-separated fields "
                                  f"({', '.join(columns)}), found {len(fields)}")
        name, group = fields[c_class].strip(), fields[c_group].strip()
        if not name or not group:
            raise AnnotationError(f"{path}:{number}: expected a class name and a group name, found an empty field")
        i = index.lookup(name, path, number)
        members = groups.setdefault(group, [])
        if i not in members:
            members.append(i)
    return list(groups.items())


# -- groups from label levels ---------------------------------------------------------------------------

def hierarchy_groups(levels: LabelLevels, child: str, parent: str) -> list[Group]:
    """The classes of level `child` grouped by their class at the coarser level `parent` (a tree).

    FineGym: `hierarchy_groups(levels, "element", "set")` gives the elements of each set, named by the set;
    `("set", "event")` the sets of each event. Groups follow the parent's index order.
    """
    table = levels.parent_map(child, parent)
    return [(levels.class_names[parent][p], np.flatnonzero(table == p).tolist())
            for p in range(levels.num_classes[parent])]


def finegym_set_groups(levels: LabelLevels) -> list[Group]:
    """FineGym elements grouped by set (the levels must be event/set/element, e.g. `finegym_levels(...)`)."""
    return hierarchy_groups(levels, "element", "set")


def diving48_attribute_groups(levels: LabelLevels, attribute: str) -> list[Group]:
    """Diving48 classes (the finest level) grouped by their value of `attribute` (takeoff, somersault, twist,
    flight), named "<attribute> = <value>", in the attribute's index order."""
    table = levels.finest_to[levels._level(attribute)]
    return [(f"{attribute} = {value}", np.flatnonzero(table == v).tolist())
            for v, value in enumerate(levels.class_names[attribute]) if (table == v).any()]


def diving48_contrast_groups(levels: LabelLevels, attribute: str, min_size: int = 2) -> list[Group]:
    """Diving48 classes that share every attribute but `attribute`: each group differs in that one attribute
    (e.g. the twist count), the finest distinction the dataset asks for. Groups smaller than `min_size` are
    dropped; names list the shared values ("Back+15som+*+FREE" for attribute "twist")."""
    levels._level(attribute)
    others = [a for a in levels.level_names[:-1] if a != attribute]
    keys: dict[tuple, list[int]] = {}
    for c in range(levels.num_classes[levels.finest]):
        keys.setdefault(tuple(int(levels.finest_to[a][c]) for a in others), []).append(c)
    position = {a: i for i, a in enumerate(levels.level_names[:-1])}
    groups = []
    for key, members in keys.items():
        if len(members) < min_size:
            continue
        parts = [""] * len(position)
        for a, v in zip(others, key):
            parts[position[a]] = levels.class_names[a][v]
        parts[position[attribute]] = "*"
        groups.append(("+".join(parts), members))
    return groups


__all__ = ["Group", "diving48_attribute_groups", "diving48_contrast_groups", "finegym_set_groups",
           "hierarchy_groups", "read_groups"]
