"""An evaluation report folder: metrics, best/worst classes, confusion pictures, Grad-CAM and ARC pictures.

    report = build_report("runs/demo")                     # a run folder: finds checkpoints/results_<split>.json
    report = build_report("runs/arc", compare={"TSM-R18": "runs/tsm"}, groups="contrastive_groups_list.txt",
                          model=model, sample_clips=clips)
    print(report.index_html)

Input is what `fineact.engine.results.write_results` leaves next to a checkpoint: results_<split>.json
(headline metrics), results_<split>_<level>_confusion.csv and results_<split>_<level>_per_class.csv per level.
Class names come from `levels` when given, else from an exported model description (model.json: config and
label levels) found beside or above the results, else from the per-class CSVs.

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

import csv
import html
import json
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
from fineact.analysis.confusion import (Group, group_summary, hierarchy_groups,
                                        plot_confusion, plot_group_comparison, read_confusion_csv, read_groups,
                                        select_groups)
from fineact.analysis.gradcam import (default_cam_layers, grad_cam, preserved_state, save_cam_animation,
                                      save_cam_grid)
from fineact.analysis.plotting import clip_to_frames, truncate
from fineact.errors import AnnotationError, ConfigError, FineactError
from fineact.labels import LabelLevels
from fineact.models.arc import arc_layers

PathLike = str | os.PathLike
_RESULTS_NAME = re.compile(r"^results_(.+)\.json$")


# -- reading a run's results --------------------------------------------------------------------------------

@dataclass
class RunResults:
    """One evaluation as written by `fineact.engine.results.write_results`.

    metrics: {level: {top1, top5, mean_class_accuracy, num_videos, ...}} (+ "consistency_rate").
    confusions: {level: (K, K) counts}; class_names: {level: names} (from levels, model.json or the CSVs).
    """

    path: Path
    split: str
    metrics: dict
    extra: dict
    confusions: dict[str, np.ndarray] = field(default_factory=dict)
    class_names: dict[str, list[str]] = field(default_factory=dict)
    levels: LabelLevels | None = None

    @property
    def level_names(self) -> list[str]:
        return [k for k, v in self.metrics.items() if isinstance(v, dict)]


def find_results(source: PathLike, split: str | None = None) -> Path:
    """The results_<split>.json of a run: `source` is that file, or a folder searched (itself, then
    checkpoints/, then below) for results_*.json. Several splits: `split` picks one, else test, else val."""
    source = Path(source)
    if source.is_file():
        return source
    if not source.is_dir():
        raise ConfigError(f"report: {source} is neither a results_<split>.json file nor a run folder")
    found: list[Path] = []
    for folder in (source, source / "checkpoints"):
        found = sorted(p for p in folder.glob("results_*.json") if _RESULTS_NAME.match(p.name))
        if found:
            break
    if not found:
        found = sorted(p for p in source.rglob("results_*.json") if _RESULTS_NAME.match(p.name))
    if not found:
        raise ConfigError(f"report: no results_<split>.json in {source} (run `fineact test` first; evaluation "
                          f"writes its results next to the checkpoint)")
    by_split = {_RESULTS_NAME.match(p.name).group(1): p for p in found}  # type: ignore[union-attr]
    if split is not None:
        if split not in by_split:
            raise ConfigError(f"report: no results for split {split!r} in {source}; found {sorted(by_split)}")
        return by_split[split]
    for preferred in ("test", "val"):
        if preferred in by_split:
            return by_split[preferred]
    if len(by_split) == 1:
        return next(iter(by_split.values()))
    raise ConfigError(f"report: {source} has results of several splits {sorted(by_split)}; pass split=")


def _levels_from_export(folder: Path) -> LabelLevels | None:
    """Label levels stored in an exported model description (model.json) beside or above the results."""
    for candidate in (folder, folder.parent):
        for meta in sorted(candidate.glob("*.json")):
            if _RESULTS_NAME.match(meta.name):
                continue
            try:
                data = json.loads(meta.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and isinstance(data.get("levels"), dict) and "level_names" in data["levels"]:
                try:
                    return LabelLevels.from_dict(data["levels"])
                except FineactError:
                    continue
    return None


def _names_from_csv(path: Path) -> list[str] | None:
    if not path.is_file():
        return None
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "class_name" not in rows[0]:
        return None
    return [r["class_name"] for r in sorted(rows, key=lambda r: int(r["class_index"]))]


def load_results(source: PathLike, split: str | None = None, levels: LabelLevels | None = None) -> RunResults:
    """Read a run's results (see `find_results`) with its confusion matrices and class names."""
    path = find_results(source, split)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise AnnotationError(f"{path}: cannot read the results JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise AnnotationError(f"{path}: expected a results file with a 'metrics' object, as `fineact test` writes")
    run_split = _RESULTS_NAME.match(path.name).group(1) if _RESULTS_NAME.match(path.name) else (split or "eval")
    stem = path.with_suffix("").name
    result = RunResults(path, str(data.get("split", run_split)), data["metrics"],
                        {k: v for k, v in data.items() if k != "metrics"})
    result.levels = levels or _levels_from_export(path.parent)
    for level in result.level_names:
        matrix_path = path.parent / f"{stem}_{level}_confusion.csv"
        if matrix_path.is_file():
            result.confusions[level] = read_confusion_csv(matrix_path)
        names = None
        if result.levels is not None and level in result.levels.class_names:
            names = result.levels.class_names[level]
        names = names or _names_from_csv(path.parent / f"{stem}_{level}_per_class.csv")
        if names is None and level in result.confusions:
            names = [f"class {i}" for i in range(result.confusions[level].shape[0])]
        if names is not None:
            if level in result.confusions and len(names) != result.confusions[level].shape[0]:
                raise AnnotationError(f"{matrix_path}: {result.confusions[level].shape[0]} classes, but the label "
                                      f"levels give {len(names)} names for level {level!r}")
            result.class_names[level] = list(names)
    return result


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


# -- the document: blocks rendered to markdown and to HTML ------------------------------------------------

class _Doc:
    def __init__(self):
        self.blocks: list[tuple] = []

    def heading(self, level: int, text: str):
        self.blocks.append(("h", level, text))

    def para(self, text: str):
        self.blocks.append(("p", text))

    def table(self, header: Sequence[str], rows: Sequence[Sequence], align: str | None = None):
        self.blocks.append(("table", list(header), [list(map(str, r)) for r in rows], align or "l" * len(header)))

    def image(self, rel: str, caption: str):
        self.blocks.append(("img", rel, caption))

    def links(self, items: Sequence[tuple[str, str]]):
        self.blocks.append(("links", list(items)))

    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "table":
                _, header, rows, align = b
                cell = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
                out.append("| " + " | ".join(cell(h) for h in header) + " |\n"
                           + "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|\n"
                           + "\n".join("| " + " | ".join(cell(c) for c in r) + " |" for r in rows))
            elif b[0] == "img":
                out.append(f"![{b[2]}]({b[1]})\n\n*{b[2]}*")
            elif b[0] == "links":
                out.append("\n".join(f"- [{text}]({href})" for text, href in b[1]))
        return "\n\n".join(out) + "\n"

    def html(self, title: str) -> str:
        e = html.escape
        out = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">", f"<title>{e(title)}</title>",
               "<style>body{font-family:sans-serif;max-width:1200px;margin:1em auto;padding:0 1em}"
               "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px}"
               "td.r{text-align:right}figure{margin:1em 0}img{max-width:100%}figcaption{color:#555}</style>",
               "</head><body>"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1]}>{e(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p>{_inline_code(e(b[1]))}</p>")
            elif b[0] == "table":
                _, header, rows, align = b
                out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
                for r in rows:
                    out.append("<tr>" + "".join(f"<td class=\"{a}\">{e(c)}</td>" for c, a in zip(r, align)) + "</tr>")
                out.append("</table>")
            elif b[0] == "img":
                out.append(f"<figure><a href=\"{e(b[1])}\"><img src=\"{e(b[1])}\" alt=\"{e(b[2])}\"></a>"
                           f"<figcaption>{e(b[2])}</figcaption></figure>")
            elif b[0] == "links":
                out.append("<ul>" + "".join(f"<li><a href=\"{e(h)}\">{e(t)}</a></li>" for t, h in b[1]) + "</ul>")
        out.append("</body></html>")
        return "\n".join(out) + "\n"


def _inline_code(escaped: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()[:60] or "x"


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
                 top_k: int = 10, max_group_plots: int = 6, mean: Sequence[float] | None = (0.485, 0.456, 0.406),
                 std: Sequence[float] | None = (0.229, 0.224, 0.225), title: str | None = None) -> Report:
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
    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    label = name or _run_label(run)
    others = {k: (v if isinstance(v, RunResults) else load_results(v, run.split)) for k, v in (compare or {}).items()}
    doc = _Doc()
    images: list[Path] = []
    notes: list[str] = []
    heading = title or f"Evaluation report: {label} ({run.split})"
    doc.heading(1, heading)
    facts = [f"results: `{os.path.relpath(run.path, out)}`"]
    for key in ("checkpoint", "views", "aggregate"):
        if key in run.extra:
            facts.append(f"{key}: `{run.extra[key]}`")
    doc.para("; ".join(facts))
    _metrics_section(doc, run, label, others)
    group_map = _resolve_groups(groups, run)

    for level in run.level_names:
        doc.heading(2, f"Level: {level}")
        names = run.class_names.get(level)
        confusion = run.confusions.get(level)
        if confusion is None or names is None:
            doc.para(f"No confusion matrix for this level (expected {run.path.with_suffix('').name}_{level}_"
                     f"confusion.csv beside the results).")
            continue
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
        level_groups = group_map.get(level, [])
        img = plot_confusion(confusion, names, images_dir / f"confusion_{_slug(level)}.png",
                             title=f"{label}: {level} ({run.split})", groups=level_groups or None)
        images.append(img)
        doc.heading(3, "Confusion matrix")
        doc.image(_rel(img, out), f"{level}: rows = true class, normalised per row"
                  + ("; classes ordered group by group" if level_groups else ""))
        if level_groups:
            _groups_section(doc, level, level_groups, run, label, others, names, images_dir, out, images,
                            max_group_plots)

    if model is not None and sample_clips is not None:
        try:
            _model_sections(doc, model, run, sample_clips, sample_frames, sample_labels, cam_layers, cam_level,
                            max_samples, mean, std, images_dir, out, images)
        except FineactError as err:
            notes.append(f"model pictures skipped: {err}")
            doc.para(f"Model pictures could not be made: {err}")
    elif model is not None or sample_clips is not None:
        doc.para("Grad-CAM and ARC pictures need both a model and sample clips.")

    index_md = out / "index.md"
    index_md.write_text(doc.markdown())
    index_html = out / "index.html"
    index_html.write_text(doc.html(heading))
    return Report(out, index_md, index_html, images, notes)


def _run_label(run: RunResults) -> str:
    folder = run.path.parent
    return folder.parent.name if folder.name == "checkpoints" else folder.name


def _rel(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def _metrics_section(doc: _Doc, run: RunResults, label: str, others: Mapping[str, RunResults]) -> None:
    doc.heading(2, "Metrics")
    rows = []
    for who, r in [(label, run), *others.items()]:
        for level in r.level_names:
            m = r.metrics[level]
            rows.append([who, level, m.get("num_videos", ""), _pct(m.get("top1")), _pct(m.get("top5")),
                         _pct(m.get("mean_class_accuracy")), _pct(m.get("consistent_top1"))])
    has_consistent = any(r[-1] != "–" for r in rows)
    header = ["run", "level", "videos", "top-1", "top-5", "mean class acc."]
    if has_consistent:
        header.append("consistent top-1")
    else:
        rows = [r[:-1] for r in rows]
    doc.table(header, rows, "llrrrr" + ("r" if has_consistent else ""))
    if "consistency_rate" in run.metrics:
        doc.para(f"Consistency of the independent per-level predictions (a valid path through the hierarchy): "
                 f"{_pct(run.metrics['consistency_rate'])}.")
    doc.para("Mean class accuracy = per-class recall averaged over the classes present in the evaluated labels.")


def _groups_section(doc: _Doc, level: str, groups: list[Group], run: RunResults, label: str,
                    others: Mapping[str, RunResults], names: list[str], images_dir: Path, out: Path,
                    images: list[Path], max_group_plots: int) -> None:
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
                                    images_dir / f"groups_{_slug(level)}_{start // per_image + 1}.png",
                                    title=f"{level}: most confused groups ({' vs '.join(matrices)})")
        images.append(img)
        doc.image(_rel(img, out), f"{level}: group sub-matrices, rows divided by all videos of the true class "
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


def _model_sections(doc: _Doc, model: nn.Module, run: RunResults, clips, frames, labels, cam_layers, cam_level,
                    max_samples: int, mean, std, images_dir: Path, out: Path, images: list[Path]) -> None:
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
            stem = images_dir / f"gradcam_{_slug(layer)}_clip{i}"
            grid = save_cam_grid(shown, cams[i].numpy(), stem.with_suffix(".png"),
                                 title=f"{layer} | {caption}")
            gif = save_cam_animation(shown, cams[i].numpy(), stem.with_suffix(".gif"))
            images += [grid, gif]
            doc.image(_rel(grid, out), f"Grad-CAM {layer}, {caption}")
            doc.links([(f"animation (GIF) of clip {i}", _rel(gif, out))])
    if arc_layers(model):
        _arc_section(doc, model, clips, frames, mean, std, images_dir, out, images)


def _arc_section(doc: _Doc, model: nn.Module, clips, frames, mean, std, images_dir: Path, out: Path,
                 images: list[Path]) -> None:
    att_layers = attention_layers(model)
    state_layer = paper_state_layer(model)
    first = {k: v[:1] for k, v in clips.items()} if isinstance(clips, Mapping) else clips[:1]
    with preserved_state(model):
        model.eval()
        captures = capture_arc(model, first, sorted(set(att_layers + [state_layer])), keep_states=False)
    doc.heading(2, "ARC: inside the recursion")
    img = plot_attention_vectors({k: captures[k] for k in att_layers}, images_dir / "arc_attention.png")
    images.append(img)
    doc.para("Backward-attention activation per recursive step (paper Fig. 3): the attention term of each step "
             "2..n averaged over all positions of clip 0, one value per input channel. All zero means the "
             "attention weights are still at their zero initialisation.")
    doc.image(_rel(img, out), "attention activation vectors, first ARC layer of each decorated stage")
    pathway = _pathway_of(state_layer, first)
    shown = _frames_for(pathway, 0, first, frames, mean, std)
    img = plot_state_maps(shown, captures[state_layer], images_dir / "arc_states.png")
    images.append(img)
    doc.para(f"Evolving input state of `{state_layer}` (paper Fig. 6): the channel average of the state each "
             f"recursive step reads; step 1 is the layer's input. Each row has its own colour scale.")
    doc.image(_rel(img, out), f"input state per recursive step, {state_layer}, clip 0")


__all__ = ["ClassAccuracy", "Report", "RunResults", "best_and_worst", "build_report", "class_accuracies",
           "find_results", "load_results"]
