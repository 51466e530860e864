"""Reading an evaluated run: results_<split>.json with its confusion matrices and class names.

    run = load_results("runs/demo")            # finds checkpoints/results_<split>.json (see find_results)
    run.metrics.levels["element"].top1, run.confusions["element"], run.class_names["element"]

Input is what `fineact.engine.results.write_results` leaves next to a checkpoint: results_<split>.json
(headline metrics), results_<split>_<level>_confusion.csv and results_<split>_<level>_per_class.csv per level.
Class names come from `levels` when given, else from an exported model description (model.json: config and
label levels) found beside or above the results, else from the per-class CSVs.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fineact.analysis.confusion import read_confusion_csv
from fineact.errors import AnnotationError, ConfigError, FineactError, WeightsError
from fineact.interop.sidecar import WEIGHTS_FORMAT, is_sidecar, read_sidecar
from fineact.engine.results import EvaluationResults
from fineact.labels import LabelLevels

PathLike = str | os.PathLike
_RESULTS_NAME = re.compile(r"^results_(.+)\.json$")


@dataclass
class RunResults:
    """One evaluation as written by `fineact.engine.results.write_results`.

    metrics: the EvaluationResults (per level: top1, top5, mean_class_accuracy, num_videos, ...; the
    consistency rate of a hierarchy).
    confusions: {level: (K, K) counts}; class_names: {level: names} (from levels, model.json or the CSVs).
    """

    path: Path
    split: str
    metrics: EvaluationResults
    extra: dict
    confusions: dict[str, np.ndarray] = field(default_factory=dict)
    class_names: dict[str, list[str]] = field(default_factory=dict)
    levels: LabelLevels | None = None

    @property
    def level_names(self) -> list[str]:
        return list(self.metrics.levels)


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
    """Label levels stored in an exported weights description (model.json) beside or above the results.

    Other JSON files are passed over; a fineact export description that is malformed is an error naming it."""
    for candidate in (folder, folder.parent):
        for meta in sorted(candidate.glob("*.json")):
            if _RESULTS_NAME.match(meta.name) or not is_sidecar(meta):
                continue
            description = read_sidecar(meta)
            if description["format"] != WEIGHTS_FORMAT:
                continue  # a graph export's description: class names per output, no label levels
            try:
                return LabelLevels.from_dict(description["levels"])
            except FineactError as err:
                raise WeightsError(f"export description {meta}: 'levels': {err}") from None
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
    metrics = EvaluationResults.from_dict(data["metrics"], f"{path}: metrics")
    result = RunResults(path, str(data.get("split", run_split)), metrics,
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


__all__ = ["RunResults", "find_results", "load_results"]
