"""Confusion matrices, per-group statistics, and group sub-matrices (ARC paper, appendix A.1, Fig. 4).

A confusion matrix here is a (K, K) array of counts: row = true class, column = predicted class (what
`fineact.engine.results` writes as results_<split>_<level>_confusion.csv). The paper takes the rows and
columns of one action group (classes that differ only in a detail) out of the full matrix and compares a
baseline with the ARC model group by group: good fine-grained modelling moves mass onto the diagonal.

Groups are (name, [class indices]) pairs; `fineact.analysis.groups` reads and builds them.

Normalising a sub-matrix (`sub_matrix`):
- "row" (default, the paper's "probability of classifying the category of the row into the category of the
  column"): each row is divided by ALL samples of its true class, over the full matrix. A row then sums to
  less than 1 when some samples were predicted outside the group, and that missing mass is visible; the
  diagonal equals the class's accuracy. Comparing two models stays fair: a model cannot look better inside the
  group by sending its mistakes elsewhere.
- "group": each row is divided by the samples of that class predicted INSIDE the group (rows sum to 1): the
  confusion among the group's classes only, given the prediction stayed in the group.
- None / "none": raw counts.
Rows of classes without samples are NaN (drawn grey), not zero: "no data" is not "never right".
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from fineact.analysis.groups import Group
from fineact.analysis.plotting import colormap, new_figure, save_figure, short_labels, truncate
from fineact.errors import AnnotationError

PathLike = str | os.PathLike

NORMALISATIONS = ("row", "group", "none")
MAX_LABELLED = 60  # above this many classes the full matrix is drawn without names


# -- matrices ---------------------------------------------------------------------------------------------

def read_confusion_csv(path: PathLike) -> np.ndarray:
    """A confusion matrix written by `fineact.engine.results` (comma-separated integer counts, K x K)."""
    try:
        with open(path, newline="") as handle:
            rows = [row for row in csv.reader(handle) if row]
    except OSError as err:
        raise AnnotationError(f"{path}: cannot read the confusion matrix: {err.strerror or err}") from None
    try:
        matrix = np.asarray([[float(v) for v in row] for row in rows])
    except ValueError as err:
        raise AnnotationError(f"{path}: expected comma-separated numbers, found {err}") from None
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise AnnotationError(f"{path}: expected a square K x K matrix, found {len(rows)} rows of lengths "
                              f"{sorted({len(r) for r in rows})}")
    return matrix


def _check_matrix(confusion) -> np.ndarray:
    matrix = np.asarray(confusion, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"expected a square confusion matrix (K, K), got shape {matrix.shape}")
    return matrix


def _check_indices(indices: Iterable[int], k: int, what: str = "group") -> list[int]:
    out = [int(i) for i in indices]
    bad = [i for i in out if not 0 <= i < k]
    if bad:
        raise ValueError(f"{what}: class indices {bad} out of range 0..{k - 1}")
    return out


def normalise_rows(confusion) -> np.ndarray:
    """Each row divided by its sum (the true class's sample count); rows without samples become NaN."""
    matrix = _check_matrix(confusion)
    totals = matrix.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, matrix / np.where(totals > 0, totals, 1), np.nan)


def sub_matrix(confusion, indices: Sequence[int], normalise: str | None = "row") -> np.ndarray:
    """Rows = true classes of the group, columns = predicted classes of the group, in the order of `indices`.

    normalise: "row" divides by the FULL row count of each true class (off-group predictions show as
    missing mass; the diagonal is the class's accuracy), "group" divides by the row's count inside the
    sub-matrix (rows sum to 1), None / "none" keeps the counts. See the module documentation.
    """
    matrix = _check_matrix(confusion)
    idx = _check_indices(indices, matrix.shape[0])
    sub = matrix[np.ix_(idx, idx)]
    if normalise in (None, "none"):
        return sub
    if normalise == "row":
        totals = matrix[idx].sum(1, keepdims=True)
    elif normalise == "group":
        totals = sub.sum(1, keepdims=True)
    else:
        raise ValueError(f"normalise must be one of {NORMALISATIONS} or None, got {normalise!r}")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, sub / np.where(totals > 0, totals, 1), np.nan)


@dataclass
class GroupStats:
    """How one group of similar classes fares in a confusion matrix.

    support: samples whose true class is in the group. accuracy: correct / support.
    within_group_errors: samples predicted as ANOTHER class of the same group; outside_errors: predicted
    outside the group. within_group_share: within_group_errors / all errors (NaN without errors): how much of
    the group's trouble is confusion among its own look-alikes.
    """

    name: str
    classes: list[int] = field(repr=False)
    support: int
    correct: int
    within_group_errors: int
    outside_errors: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.support if self.support else float("nan")

    @property
    def within_group_rate(self) -> float:
        """Share of the group's samples confused with another class of the group."""
        return self.within_group_errors / self.support if self.support else float("nan")

    @property
    def within_group_share(self) -> float:
        errors = self.within_group_errors + self.outside_errors
        return self.within_group_errors / errors if errors else float("nan")

    def as_dict(self) -> dict:
        return {"group": self.name, "classes": len(self.classes), "support": self.support,
                "accuracy": self.accuracy, "within_group_rate": self.within_group_rate,
                "within_group_share": self.within_group_share}


def group_summary(confusion, groups: Sequence[Group]) -> list[GroupStats]:
    """Per group: support, accuracy, and how many of its mistakes stay inside the group (see GroupStats)."""
    matrix = _check_matrix(confusion)
    stats = []
    for name, indices in groups:
        idx = _check_indices(indices, matrix.shape[0], f"group {name!r}")
        sub = matrix[np.ix_(idx, idx)]
        support = matrix[idx].sum()
        correct = np.trace(sub)
        inside = sub.sum() - correct
        stats.append(GroupStats(name, idx, int(round(support)), int(round(correct)), int(round(inside)),
                                int(round(support - sub.sum()))))
    return stats


def format_group_summary(stats: Sequence[GroupStats], max_name: int = 60) -> str:
    """A markdown table of `group_summary` rows."""
    lines = ["| group | classes | videos | accuracy | confused within group | share of errors within group |",
             "|---|---:|---:|---:|---:|---:|"]
    for s in stats:
        lines.append(f"| {_md(truncate(s.name, max_name))} | {len(s.classes)} | {s.support} | {_pct(s.accuracy)} | "
                     f"{_pct(s.within_group_rate)} | {_pct(s.within_group_share)} |")
    return "\n".join(lines)


def select_groups(confusion, groups: Sequence[Group], k: int = 6, by: str = "within_group_errors",
                  min_support: int = 1) -> list[Group]:
    """The `k` groups with the most confusion among their own classes (`by`: "within_group_errors" counts,
    "within_group_rate" shares, or "accuracy" lowest first); groups with fewer than `min_support` videos or a
    single class are skipped. Keeps the input order among ties."""
    stats = [s for s in group_summary(confusion, groups) if s.support >= min_support and len(s.classes) > 1]
    keys = {"within_group_errors": lambda s: -s.within_group_errors,
            "within_group_rate": lambda s: -s.within_group_rate,
            "accuracy": lambda s: s.accuracy}
    if by not in keys:
        raise ValueError(f"select_groups: by must be one of {list(keys)}, got {by!r}")
    chosen = sorted(stats, key=keys[by])[:k]
    return [(s.name, list(s.classes)) for s in chosen]


def _pct(v: float) -> str:
    return "–" if v != v else f"{100 * v:.1f}%"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


# -- plots ------------------------------------------------------------------------------------------------

def plot_confusion(confusion, class_names: Sequence[str], path: PathLike, title: str | None = None,
                   order: Sequence[int] | None = None, groups: Sequence[Group] | None = None,
                   max_labelled: int = MAX_LABELLED, max_label_chars: int = 40) -> Path:
    """The full confusion matrix, row-normalised (each row = where the true class's videos went), colour scale
    fixed to 0..1, rows without videos grey.

    Up to `max_labelled` classes the axes carry the class names (font size shrinks with the count, names cut
    to `max_label_chars` with an ellipsis, x labels rotated); above it the names are omitted, every 10th
    index is marked, and the title says so (the per-class CSV has the names). `order` reorders the classes
    (e.g. group by group). `groups` orders the classes group by group (classes in no group last) and draws
    a thin line between groups. Returns the written path.
    """
    matrix = normalise_rows(confusion)
    k = matrix.shape[0]
    if len(class_names) != k:
        raise ValueError(f"plot_confusion: {len(class_names)} class names for a {k} x {k} matrix")
    if order is not None and groups is not None:
        raise ValueError("plot_confusion: give either order or groups, not both")
    boundaries: list[int] = []
    if groups is not None:
        order, seen = [], set()
        for _, idx in groups:
            new = [i for i in _check_indices(idx, k) if i not in seen]
            seen.update(new)
            order += new
            if new and len(order) < k:
                boundaries.append(len(order))
        order += [i for i in range(k) if i not in seen]
    order = _check_indices(order, k, "order") if order is not None else list(range(k))
    matrix = matrix[np.ix_(order, order)]
    names = short_labels([class_names[i] for i in order], max_label_chars)
    labelled = k <= max_labelled
    # Readable type first (9 pt up to 20 classes, 8 up to 40, then 7), and a figure that grows to fit it.
    fs = 9.0 if k <= 20 else 8.0 if k <= 40 else 7.0
    if labelled:
        label_in = min(max(len(n) for n in names), max_label_chars) * fs * 0.5 / 72 + 0.3
        side = max(4.5, k * fs * 1.6 / 72)
        fig = new_figure(side + label_in + 1.5, side + label_in * 0.85 + 0.8)
    else:
        fig = new_figure(11, 10)
    ax = fig.add_subplot()
    cmap = _cmap_with_bad("Blues")
    image = ax.imshow(matrix, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest", origin="upper")
    for b in boundaries:
        ax.axhline(b - 0.5, color="#c8c8c8", lw=0.4)
        ax.axvline(b - 0.5, color="#c8c8c8", lw=0.4)
    if labelled:
        ax.set_xticks(range(k), names, rotation=60, ha="right", rotation_mode="anchor", fontsize=fs)
        ax.set_yticks(range(k), names, fontsize=fs)
    else:
        ticks = list(range(0, k, 10))
        ax.set_xticks(ticks, [str(order[t]) for t in ticks], fontsize=8)
        ax.set_yticks(ticks, [str(order[t]) for t in ticks], fontsize=8)
    ax.set_xlabel("predicted class" + ("" if labelled else " (index)"))
    ax.set_ylabel("true class" + ("" if labelled else " (index)"))
    heading = title or "Confusion matrix"
    note = "rows normalised per true class" if labelled else \
        f"{k} classes: names omitted (see the per-class table); rows normalised per true class"
    if boundaries:
        note += f"; ordered by {len(groups or [])} groups (grey lines)"
    ax.set_title(f"{heading}\n{note}", fontsize=11)
    bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label("share of the true class's videos")
    path = save_figure(fig, path)
    return path


def plot_group_comparison(confusions: Mapping[str, np.ndarray] | np.ndarray, groups: Sequence[Group],
                          class_names: Sequence[str], path: PathLike, normalise: str | None = "row",
                          annotate_max: int = 12, max_label_chars: int = 52, title: str | None = None) -> Path:
    """Group sub-matrices side by side for each model (paper Fig. 4: baseline vs ARC), one row per group.

    confusions: {model name: (K, K) counts} (or one matrix). Every panel uses the same colour scale 0..1 and the
    same cell size, so groups and models compare at a glance. The first panel of a row names the classes,
    numbered ("1  Pulling something from left to right"); the other axes use those numbers. Groups of at most
    `annotate_max` classes get their values written in the cells as percentages (blank = 0). `normalise` as
    in `sub_matrix`: "row" (default) divides by ALL videos of the true class, so what a row lacks to 100% was
    predicted outside the group; "group" divides by the videos predicted inside the group; None writes
    counts (colours then show each row's shares). Panel titles give the diagonal's mean (the group's mean
    class accuracy under "row").
    """
    if not isinstance(confusions, Mapping):
        confusions = {"model": confusions}
    if not confusions:
        raise ValueError("plot_group_comparison: no confusion matrices given")
    if not groups:
        raise ValueError("plot_group_comparison: no groups given")
    if normalise not in (None, *NORMALISATIONS):
        raise ValueError(f"normalise must be one of {NORMALISATIONS} or None, got {normalise!r}")
    counts = normalise in (None, "none")
    models = list(confusions)
    matrices = {m: _check_matrix(confusions[m]) for m in models}
    k = len(class_names)
    for m, mat in matrices.items():
        if mat.shape[0] != k:
            raise ValueError(f"plot_group_comparison: matrix of {m!r} is {mat.shape[0]} x {mat.shape[0]}, "
                             f"but {k} class names were given")
    sizes = [len(idx) for _, idx in groups]
    fs = 8.5 if max(sizes) <= 10 else 7.5
    cell = 0.36 if max(sizes) <= 10 else 0.3  # inches per cell, the same in every panel

    # Everything is placed in inches, measured from the top-left, so long class names are never clipped.
    fig = new_figure(1, 1, layout=None)
    renderer = fig.canvas.get_renderer()
    row_labels = []
    widest = 0.0
    for _, idx in groups:
        labels = [f"{i + 1}  {s}" for i, s in enumerate(short_labels([class_names[c] for c in idx], max_label_chars))]
        row_labels.append(labels)
        for label in labels:
            t = fig.text(0, 0, label, fontsize=fs)
            widest = max(widest, t.get_window_extent(renderer).width / fig.dpi)
            t.remove()
    left = widest + 0.25
    title_w = []
    for model in models:  # a panel's slot is at least as wide as its title
        t = fig.text(0, 0, f"{model}  diag 0.00", fontsize=fs + 0.5)
        title_w.append(t.get_window_extent(renderer).width / fig.dpi)
        t.remove()
    gap = 0.6                                   # room for the next panel's y-axis numbers
    slots = [[max(s * cell, tw) for tw in title_w] for s in sizes]
    right = max(left + sum(row) + gap * (len(models) - 1) for row in slots)
    bar_w = 1.1
    width = right + 0.3 + bar_w
    top = 0.75 if title else 0.35
    heights = [0.62 + s * cell + 0.5 for s in sizes]  # titles, panel, x label
    height = top + sum(heights)
    fig.set_size_inches(width, height)
    fw, fh = fig.get_size_inches()

    def box(x, y_top, w, h):  # inches from the top-left -> figure fraction
        return [x / fw, 1 - (y_top + h) / fh, w / fw, h / fh]

    cmap = _cmap_with_bad("Blues")
    image = None
    y = top
    for row_i, ((gname, idx), size, labels, row_h) in enumerate(zip(groups, sizes, row_labels, heights)):
        fig.text(0.12 / fw, 1 - (y + 0.2) / fh, truncate(gname, 110), fontsize=fs + 1.5, weight="bold",
                 va="center")
        side = size * cell
        for col, model in enumerate(models):
            x0 = left + sum(slots[row_i][:col]) + gap * col
            ax = fig.add_axes(box(x0, y + 0.62, side, side))
            sub = sub_matrix(matrices[model], idx, normalise)
            shown = normalise_rows(sub) if counts else sub
            image = ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest", origin="upper")
            numbers = [str(i + 1) for i in range(size)]
            ax.set_xticks(range(size), numbers, fontsize=fs)
            ax.set_yticks(range(size), labels if col == 0 else numbers, fontsize=fs)
            ax.tick_params(length=2, pad=2)
            if size <= annotate_max:
                for r in range(size):
                    for c in range(size):
                        v = sub[r, c]
                        if v != v or (not counts and round(100 * v) == 0) or (counts and v == 0):
                            continue
                        text = f"{int(v)}" if counts else f"{100 * v:.0f}"
                        colour = "white" if shown[r, c] > 0.55 else "black"
                        ax.text(c, r, text, ha="center", va="center", fontsize=fs - 1, color=colour)
            diag = np.diag(sub)
            note = f"  diag {np.nanmean(diag):.2f}" if not counts and np.isfinite(diag).any() else ""
            ax.set_title(f"{model}{note}", fontsize=fs + 0.5, loc="left", pad=4)
            ax.set_xlabel("predicted", fontsize=fs - 0.5, labelpad=2)
            if col == 0:
                ax.set_ylabel("true", fontsize=fs - 0.5, labelpad=2)
        y += row_h
    assert image is not None
    bar_h = min(3.0, height - top - 0.8)
    cax = fig.add_axes(box(right + 0.3, top + 0.62, 0.14, max(bar_h, 0.8)))
    bar = fig.colorbar(image, cax=cax)
    bar.ax.tick_params(labelsize=7)
    bar.set_label({"row": "share of the true class's videos\n(all predictions)",
                   "group": "share of the true class's videos\npredicted inside the group"}.get(
                       normalise or "none", "share of the row\n(cells: counts)"), fontsize=7)
    if title:
        fig.text(0.12 / fw, 1 - 0.22 / fh, title, fontsize=fs + 3, va="center")
    if not counts:
        fig.text(0.12 / fw, 1 - (top - 0.12) / fh,
                 "cells: % of the true class's videos" + (" (all its predictions; what a row lacks to 100% went "
                                                          "outside the group)" if normalise == "row"
                                                          else " predicted inside the group"),
                 fontsize=7.5, ha="left", va="bottom", color="#444444")
    return save_figure(fig, path)


def _cmap_with_bad(name: str):
    """The colour map with NaN (rows without videos) drawn light grey."""
    return colormap(name).with_extremes(bad="#d9d9d9")


__all__ = [
    "GroupStats", "format_group_summary", "group_summary", "normalise_rows", "plot_confusion",
    "plot_group_comparison", "read_confusion_csv", "select_groups", "sub_matrix",
]
