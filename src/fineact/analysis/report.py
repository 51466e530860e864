"""An evaluation report folder: metrics, best/worst classes, confusion pictures, Grad-CAM and ARC pictures.

    report = build_report("runs/demo")                     # a run folder: finds checkpoints/results_<split>.json
    report = build_report("runs/arc", compare={"TSM-R18": "runs/tsm"}, groups="contrastive_groups_list.txt",
                          model=model, sample_clips=clips)
    print(report.index_html)

Input is a run's evaluation results as `fineact.analysis.run_results.load_results` reads them (metrics,
confusion matrices and class names per level).

The report folder holds index.md and index.html (the same content; plain HTML, images inline, every link
relative, so the folder can be moved or zipped) and images/. What goes in:
- metrics per level (top-1, top-5, mean class accuracy, consistency for hierarchies) and those of compared runs;
- per level: the best and worst classes by per-class accuracy (with their number of videos), the full confusion
  matrix (classes ordered group by group when groups are known), a per-group table, and the sub-matrices of the
  most confused groups side by side with the compared runs (ARC paper Fig. 4);
- with a model and sample clips: Grad-CAM grids and GIFs of each backbone pathway's res3 (paper Fig. 5), and,
  for ARC models, the attention activation vectors (Fig. 3) and the evolving input state (Fig. 6).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from torch import nn

from fineact.analysis.document import Document
from fineact.analysis.groups import Group, hierarchy_groups, read_groups
from fineact.analysis.report_sections import ImageFolder, level_section, metrics_section, model_sections
from fineact.analysis.run_results import RunResults, load_results
from fineact.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from fineact.errors import ConfigError, FineactError
from fineact.labels import LabelLevels

PathLike = str | os.PathLike


# -- groups -------------------------------------------------------------------------------------------------

def _resolve_groups(groups, run: RunResults) -> dict[str, list[Group]]:
    """{level: groups}: automatic (tree levels: each level grouped by its parent), a group file or list for the
    finest level, or an explicit {level: file | list}."""
    finest = run.level_names[-1] if run.level_names else None
    if groups is False or finest is None:
        return {}
    if groups is None:
        levels = run.levels
        if levels is None or len(levels.level_names) < 2 or not levels.is_tree:
            return {}
        return {finer: hierarchy_groups(levels, finer, coarser)
                for coarser, finer in zip(levels.level_names, levels.level_names[1:])
                if finer in run.confusions and levels.num_classes[coarser] < levels.num_classes[finer]}
    if not isinstance(groups, Mapping):
        groups = {finest: groups}
    out = {}
    for level, spec in groups.items():
        if level not in run.class_names:
            raise ConfigError(f"report: groups given for level {level!r}, but the results have levels "
                              f"{run.level_names}")
        if isinstance(spec, (str, os.PathLike)):
            out[level] = read_groups(spec, run.class_names[level])
        else:
            out[level] = [(str(n), [int(i) for i in idx]) for n, idx in spec]
    return out


# -- the report ---------------------------------------------------------------------------------------------

@dataclass
class Report:
    out_dir: Path
    index_md: Path
    index_html: Path
    images: list[Path]
    notes: list[str] = field(default_factory=list)


def build_report(source: PathLike | RunResults, out_dir: PathLike | None = None, *, split: str | None = None,
                 levels: LabelLevels | None = None, groups=None, name: str | None = None,
                 compare: Mapping[str, PathLike | RunResults] | None = None, model: nn.Module | None = None,
                 sample_clips=None, sample_frames=None, sample_labels: Sequence[int] | None = None,
                 cam_layers: Sequence[str] | None = None, cam_level: str | None = None, max_samples: int = 4,
                 top_k: int = 10, max_group_plots: int = 6, mean: Sequence[float] | None = IMAGENET_MEAN,
                 std: Sequence[float] | None = IMAGENET_STD, title: str | None = None) -> Report:
    """Write a report folder (index.md, index.html, images/) for one evaluated run; returns its paths.

    source:        a run folder, a results_<split>.json, or `load_results(...)`; `split` picks among several.
    out_dir:       default: report_<split>/ beside the results file.
    levels:        the run's LabelLevels (default: from an exported model.json, else names from the CSVs).
    groups:        None = automatic (hierarchies: each level's classes grouped by their parent, e.g. FineGym
                   elements by set); a group file (SSv1 contrastive list or the 50-group TSV) or a list of
                   (name, indices) for the finest level; {level: file | list}; False = no groups.
    name, compare: this run's label and {label: run folder | RunResults} of runs to compare in the group
                   sub-matrices and the metrics table (e.g. the baseline of an ARC model).
    model, sample_clips: a model (with its weights) and clips (N, C, T, H, W) or {pathway: clip}, normalised as
                   for the model, for Grad-CAM (and ARC pictures when the model has ARC layers).
    sample_frames: the clips' frames for display, (N, T, H, W, 3) uint8 or {pathway: ...}; default: the clips
                   de-normalised with `mean`/`std`. sample_labels: true finest labels, shown in the captions.
    cam_layers:    Grad-CAM layers (default: res3 of every backbone pathway, as the paper); cam_level: the
                   level whose prediction is explained (default: the finest).
    """
    run = source if isinstance(source, RunResults) else load_results(source, split, levels)
    out = Path(out_dir) if out_dir is not None else run.path.parent / f"report_{run.split}"
    images = ImageFolder(out)
    label = name or _run_label(run)
    others = {k: (v if isinstance(v, RunResults) else load_results(v, run.split)) for k, v in (compare or {}).items()}
    doc = Document()
    notes: list[str] = []
    heading = title or f"Evaluation report: {label} ({run.split})"
    doc.heading(1, heading)
    facts = [f"results: `{os.path.relpath(run.path, out)}`"]
    for key in ("checkpoint", "views", "aggregate"):
        if key in run.extra:
            facts.append(f"{key}: `{run.extra[key]}`")
    doc.para("; ".join(facts))
    metrics_section(doc, run, label, others)
    group_map = _resolve_groups(groups, run)
    for level in run.level_names:
        level_section(doc, level, run, label, others, group_map.get(level, []), images, top_k, max_group_plots)

    if model is not None and sample_clips is not None:
        try:
            model_sections(doc, model, run, sample_clips, sample_frames, sample_labels, cam_layers, cam_level,
                           max_samples, mean, std, images)
        except FineactError as err:
            notes.append(f"model pictures skipped: {err}")
            doc.para(f"Model pictures could not be made: {err}")
    elif model is not None or sample_clips is not None:
        doc.para("Grad-CAM and ARC pictures need both a model and sample clips.")

    index_md = out / "index.md"
    index_md.write_text(doc.markdown())
    index_html = out / "index.html"
    index_html.write_text(doc.html(heading))
    return Report(out, index_md, index_html, images.written, notes)


def _run_label(run: RunResults) -> str:
    folder = run.path.parent
    return folder.parent.name if folder.name == "checkpoints" else folder.name


__all__ = ["Report", "build_report"]
