"""The sections of an evaluation report: metrics, per-level class tables and confusion pictures, groups of
similar classes, Grad-CAM and ARC pictures. Each section appends blocks to a `Document` and writes its
pictures through an `ImageFolder`; `fineact.analysis.report.build_report` puts them in order.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from fineact.analysis.arc_maps import (attention_layers, capture_arc, paper_state_layer, plot_attention_vectors,
                                       plot_state_maps)
from fineact.analysis.confusion import group_summary, plot_confusion, plot_group_comparison, select_groups
from fineact.analysis.document import Document
from fineact.analysis.gradcam import (default_cam_layers, grad_cam, preserved_state, save_cam_animation,
                                      save_cam_grid)
from fineact.analysis.groups import Group
from fineact.analysis.plotting import clip_to_frames, truncate
from fineact.analysis.run_results import RunResults
from fineact.models.arc import arc_layers


# -- tables ---------------------------------------------------------------------------------------------------

@dataclass
class ClassAccuracy:
    index: int
    name: str
    support: int
    accuracy: float
    top_confusion: str = ""


def class_accuracies(confusion: np.ndarray, names: Sequence[str]) -> list[ClassAccuracy]:
    """Per class (with at least one video): recall, support and the class it is most often mistaken for."""
    rows = []
    for i in range(confusion.shape[0]):
        support = confusion[i].sum()
        if support <= 0:
            continue
        off = confusion[i].copy()
        off[i] = 0
        j = int(off.argmax())
        note = f"{names[j]} ({100 * off[j] / support:.0f}%)" if off[j] > 0 else ""
        rows.append(ClassAccuracy(i, names[i], int(round(support)), float(confusion[i, i] / support), note))
    return rows


def best_and_worst(confusion: np.ndarray, names: Sequence[str], k: int = 10) -> tuple[list, list]:
    """The k most and k least accurate classes (ties: more videos first)."""
    rows = class_accuracies(confusion, names)
    best = sorted(rows, key=lambda r: (-r.accuracy, -r.support, r.index))[:k]
    worst = sorted(rows, key=lambda r: (r.accuracy, -r.support, r.index))[:k]
    return best, worst


def _pct(v) -> str:
    return "–" if v is None or (isinstance(v, float) and v != v) else f"{100 * float(v):.2f}%"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()[:60] or "x"


# -- where the pictures go ------------------------------------------------------------------------------------

@dataclass
class ImageFolder:
    """The report folder's images/: the path for each new picture, the pictures written so far, and their
    links relative to the report folder (so the folder can be moved or zipped)."""

    root: Path
    written: list[Path] = field(default_factory=list)

    def __post_init__(self):
        self.dir.mkdir(parents=True, exist_ok=True)

    @property
    def dir(self) -> Path:
        return self.root / "images"

    def add(self, path: Path) -> str:
        """Record a written picture; returns its link from the report folder."""
        self.written.append(path)
        return _relative_link(path, self.root)


def _relative_link(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


# -- metrics and levels ---------------------------------------------------------------------------------------

def metrics_section(doc: Document, run: RunResults, label: str, others: Mapping[str, RunResults]) -> None:
    doc.heading(2, "Metrics")
    rows = []
    for who, r in [(label, run), *others.items()]:
        for level in r.level_names:
            m = r.metrics.levels[level]
            rows.append([who, level, m.num_videos, _pct(m.top1), _pct(m.top5), _pct(m.mean_class_accuracy),
                         _pct(m.consistent_top1)])
    has_consistent = any(r[-1] != "–" for r in rows)
    header = ["run", "level", "videos", "top-1", "top-5", "mean class acc."]
    if has_consistent:
        header.append("consistent top-1")
    else:
        rows = [r[:-1] for r in rows]
    doc.table(header, rows, "llrrrr" + ("r" if has_consistent else ""))
    if run.metrics.consistency_rate is not None:
        doc.para(f"Consistency of the independent per-level predictions (a valid path through the hierarchy): "
                 f"{_pct(run.metrics.consistency_rate)}.")
    doc.para("Mean class accuracy = per-class recall averaged over the classes present in the evaluated labels.")


def level_section(doc: Document, level: str, run: RunResults, label: str, others: Mapping[str, RunResults],
                  level_groups: list[Group], images: ImageFolder, top_k: int, max_group_plots: int) -> None:
    """One level: best and worst classes, the full confusion matrix, and its groups when known."""
    doc.heading(2, f"Level: {level}")
    names = run.class_names.get(level)
    confusion = run.confusions.get(level)
    if confusion is None or names is None:
        doc.para(f"No confusion matrix for this level (expected {run.path.with_suffix('').name}_{level}_"
                 f"confusion.csv beside the results).")
        return
    rows = class_accuracies(confusion, names)
    if len(rows) <= 2 * top_k:  # few classes: one table with all of them
        tables = [(f"All {len(rows)} classes by accuracy", best_and_worst(confusion, names, len(rows))[0])]
    else:
        best, worst = best_and_worst(confusion, names, top_k)
        tables = [(f"Best {len(best)} classes", best), (f"Worst {len(worst)} classes", worst)]
    for caption, rows in tables:
        doc.heading(3, caption)
        doc.table(["class", "name", "videos", "accuracy", "most often predicted instead"],
                  [[r.index, truncate(r.name, 120), r.support, _pct(r.accuracy), truncate(r.top_confusion, 90)]
                   for r in rows], "rlrrl")
    img = plot_confusion(confusion, names, images.dir / f"confusion_{_slug(level)}.png",
                         title=f"{label}: {level} ({run.split})", groups=level_groups or None)
    doc.heading(3, "Confusion matrix")
    doc.image(images.add(img), f"{level}: rows = true class, normalised per row"
              + ("; classes ordered group by group" if level_groups else ""))
    if level_groups:
        _groups_section(doc, level, level_groups, run, label, others, names, images, max_group_plots)


def _groups_section(doc: Document, level: str, groups: list[Group], run: RunResults, label: str,
                    others: Mapping[str, RunResults], names: list[str], images: ImageFolder,
                    max_group_plots: int) -> None:
    confusion = run.confusions[level]
    stats = sorted(group_summary(confusion, groups), key=lambda s: (-s.within_group_errors, s.name))
    doc.heading(3, f"Groups of similar classes ({len(groups)})")
    doc.para("Accuracy of each group's videos, the share confused with another class of the same group, and "
             "how much of the group's errors stay inside it. Sorted by the number of within-group confusions.")
    doc.table(["group", "classes", "videos", "accuracy", "confused within group", "share of errors within group"],
              [[truncate(s.name, 70), len(s.classes), s.support, _pct(s.accuracy), _pct(s.within_group_rate),
                _pct(s.within_group_share)] for s in stats], "lrrrrr")
    chosen = select_groups(confusion, groups, k=max_group_plots)
    if not chosen:
        return
    matrices: dict[str, np.ndarray] = {}
    for who, r in others.items():
        if level in r.confusions and r.confusions[level].shape == confusion.shape:
            matrices[who] = r.confusions[level]
    matrices[label] = confusion
    per_image = 3
    for start in range(0, len(chosen), per_image):
        part = chosen[start:start + per_image]
        img = plot_group_comparison(matrices, part, names,
                                    images.dir / f"groups_{_slug(level)}_{start // per_image + 1}.png",
                                    title=f"{level}: most confused groups ({' vs '.join(matrices)})")
        doc.image(images.add(img), f"{level}: group sub-matrices, rows divided by all videos of the true class "
                                   f"(what a row lacks to 100% was predicted outside the group)")


# -- model pictures -----------------------------------------------------------------------------------------

def _frames_for(pathway: str | None, index: int, clips, frames, mean, std) -> np.ndarray:
    if frames is not None:
        source = frames[pathway] if isinstance(frames, Mapping) else frames
        return np.asarray(source[index].cpu() if isinstance(source, torch.Tensor) else source[index])
    clip = clips[pathway] if isinstance(clips, Mapping) else clips
    return clip_to_frames(clip[index], mean, std)


def _pathway_of(layer: str, clips) -> str | None:
    if not isinstance(clips, Mapping):
        return None
    match = re.match(r"pathways\.([^.]+)\.", layer + ".")
    if match and match.group(1) in clips:
        return match.group(1)
    return next(iter(clips))


def model_sections(doc: Document, model: nn.Module, run: RunResults, clips, frames, labels, cam_layers, cam_level,
                   max_samples: int, mean, std, images: ImageFolder) -> None:
    """Grad-CAM of the sample clips, and for ARC models the pictures of the recursion."""
    first = next(iter(clips.values())) if isinstance(clips, Mapping) else clips
    count = min(int(first.shape[0]), max_samples)
    clips = {k: v[:count] for k, v in clips.items()} if isinstance(clips, Mapping) else clips[:count]
    with preserved_state(model), torch.no_grad():
        model.eval()
        output = model(clips)
    level = cam_level
    if isinstance(output, Mapping):
        level = level or list(output)[-1]
        logits = output[level]
    else:
        logits = output
        level = run.level_names[-1] if run.level_names else None
    names = run.class_names.get(level or "", None)
    probs = torch.softmax(logits.float(), 1)
    predicted = probs.argmax(1)

    def cname(i: int) -> str:
        return names[i] if names is not None and i < len(names) else f"class {i}"

    true = None
    if labels is not None:
        true = [int(v) for v in labels][:count]
        if run.levels is not None and level in run.levels.level_names and level != run.levels.finest:
            true = [int(run.levels.finest_to[level][v]) for v in true]
    layers = list(cam_layers) if cam_layers else default_cam_layers(model)
    doc.heading(2, "Grad-CAM")
    doc.para(f"Class activation maps (Grad-CAM) of {', '.join(f'`{l}`' for l in layers)} for the predicted "
             f"{level or 'class'}; each clip's map is scaled to its own maximum (1 = red). First row: the frames.")
    head_level = level if isinstance(output, Mapping) else None
    for layer in layers:
        pathway = _pathway_of(layer, clips)
        cams = grad_cam(model, clips, layer, level=head_level)
        for i in range(count):
            p = int(predicted[i])
            caption = f"clip {i}: predicted {truncate(cname(p), 60)} ({100 * float(probs[i, p]):.0f}%)"
            if true is not None:
                caption += f"; true {truncate(cname(true[i]), 60)}"
            shown = _frames_for(pathway, i, clips, frames, mean, std)
            stem = images.dir / f"gradcam_{_slug(layer)}_clip{i}"
            grid = save_cam_grid(shown, cams[i].numpy(), stem.with_suffix(".png"),
                                 title=f"{layer} | {caption}")
            gif = save_cam_animation(shown, cams[i].numpy(), stem.with_suffix(".gif"))
            doc.image(images.add(grid), f"Grad-CAM {layer}, {caption}")
            doc.links([(f"animation (GIF) of clip {i}", images.add(gif))])
    if arc_layers(model):
        _arc_section(doc, model, clips, frames, mean, std, images)


def _arc_section(doc: Document, model: nn.Module, clips, frames, mean, std, images: ImageFolder) -> None:
    att_layers = attention_layers(model)
    state_layer = paper_state_layer(model)
    first = {k: v[:1] for k, v in clips.items()} if isinstance(clips, Mapping) else clips[:1]
    with preserved_state(model):
        model.eval()
        captures = capture_arc(model, first, sorted(set(att_layers + [state_layer])), keep_states=False)
    doc.heading(2, "ARC: inside the recursion")
    img = plot_attention_vectors({k: captures[k] for k in att_layers}, images.dir / "arc_attention.png")
    doc.para("Backward-attention activation per recursive step (paper Fig. 3): the attention term of each step "
             "2..n averaged over all positions of clip 0, one value per input channel. All zero means the "
             "attention weights are still at their zero initialisation.")
    doc.image(images.add(img), "attention activation vectors, first ARC layer of each decorated stage")
    pathway = _pathway_of(state_layer, first)
    shown = _frames_for(pathway, 0, first, frames, mean, std)
    img = plot_state_maps(shown, captures[state_layer], images.dir / "arc_states.png")
    doc.para(f"Evolving input state of `{state_layer}` (paper Fig. 6): the channel average of the state each "
             f"recursive step reads; step 1 is the layer's input. Each row has its own colour scale.")
    doc.image(images.add(img), f"input state per recursive step, {state_layer}, clip 0")


__all__ = ["ClassAccuracy", "ImageFolder", "best_and_worst", "class_accuracies", "level_section",
           "metrics_section", "model_sections"]
