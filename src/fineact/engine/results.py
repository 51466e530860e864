"""Evaluation results: the `EvaluationResults` type, and writing them (JSON summary, per-class CSV, confusion CSV).

In memory, results are typed: one `LevelResult` per level plus the consistency rate of a hierarchy. On disk
(results_<split>.json "metrics", the demo's summary.json) they keep the flat form fineact has always written:
{level: {top1, top5, mean_class_accuracy, ...}, ..., "consistency_rate": x}. `as_dict` writes that form and
`from_dict` reads it; nothing else needs to tell a level's entry from the consistency rate.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from fineact.errors import FineactError
from fineact.labels import LabelLevels


@dataclass
class LevelResult:
    """One level's numbers. `topk` maps k to top-k accuracy (k capped at the class count: 3 classes, top-3)."""

    topk: dict[int, float]
    mean_class_accuracy: float
    num_videos: int
    per_class_accuracy: list[float] = field(default_factory=list)   # recall per class, NaN where no support
    support: list[int] = field(default_factory=list)                # videos per true class
    confusion: list[list[int]] = field(default_factory=list)        # rows: true class, columns: predicted
    consistent_top1: float | None = None                            # accuracy of the hierarchy-consistent choice

    @property
    def top1(self) -> float:
        return self.topk[1]

    @property
    def top5(self) -> float | None:
        return self.topk.get(5)

    @property
    def num_classes(self) -> int:
        return len(self.support)

    def headline(self) -> dict:
        """The numbers without the matrices, in the order results files have always listed them."""
        entry: dict = {f"top{k}": v for k, v in sorted(self.topk.items())}
        entry["mean_class_accuracy"] = self.mean_class_accuracy
        entry["num_videos"] = self.num_videos
        if self.consistent_top1 is not None:
            entry["consistent_top1"] = self.consistent_top1
        return entry

    def as_dict(self) -> dict:
        entry = self.headline()
        entry.update(per_class_accuracy=self.per_class_accuracy, support=self.support, confusion=self.confusion)
        return entry

    @classmethod
    def from_dict(cls, entry: Mapping, where: str = "results") -> "LevelResult":
        try:
            topk = {int(k[3:]): float(v) for k, v in entry.items() if k.startswith("top") and k[3:].isdigit()}
            if 1 not in topk:
                raise KeyError("top1")
            mean_class = entry["mean_class_accuracy"]
            return cls(topk=topk, mean_class_accuracy=float("nan") if mean_class is None else float(mean_class),
                       num_videos=int(entry.get("num_videos", sum(entry.get("support", [])))),
                       per_class_accuracy=list(entry.get("per_class_accuracy", [])),
                       support=[int(s) for s in entry.get("support", [])],
                       confusion=[list(row) for row in entry.get("confusion", [])],
                       consistent_top1=None if entry.get("consistent_top1") is None
                       else float(entry["consistent_top1"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise FineactError(f"{where}: not a level's results (expected top1 and mean_class_accuracy; "
                               f"{type(exc).__name__}: {exc})") from None


@dataclass
class EvaluationResults:
    """{level: LevelResult}, coarse -> fine, and for hierarchies the consistency rate of the independent
    per-level predictions (share of videos whose predictions form a valid path)."""

    levels: dict[str, LevelResult]
    consistency_rate: float | None = None

    def headline(self) -> dict:
        """The flat form without matrices: {level: {top1, ...}, "consistency_rate": x}."""
        out: dict = {level: result.headline() for level, result in self.levels.items()}
        if self.consistency_rate is not None:
            out["consistency_rate"] = self.consistency_rate
        return out

    def as_dict(self) -> dict:
        out: dict = {level: result.as_dict() for level, result in self.levels.items()}
        if self.consistency_rate is not None:
            out["consistency_rate"] = self.consistency_rate
        return out

    @classmethod
    def from_dict(cls, flat: Mapping, where: str = "results") -> "EvaluationResults":
        """Read the flat form (a results JSON's "metrics", the demo's summary) back into the type."""
        if not isinstance(flat, Mapping):
            raise FineactError(f"{where}: expected a mapping {{level: results}}, found {type(flat).__name__}")
        rate = flat.get("consistency_rate")
        levels = {str(level): LevelResult.from_dict(entry, f"{where}, level {level!r}")
                  for level, entry in flat.items() if level != "consistency_rate"}
        return cls(levels, None if rate is None else float(rate))


def write_results(results: EvaluationResults, levels: LabelLevels, out_dir: str | Path, stem: str = "results",
                  extra: dict | None = None) -> Path:
    """Write <stem>.json, <stem>_<level>_per_class.csv and <stem>_<level>_confusion.csv into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for level, result in results.levels.items():
        names = levels.class_names[level]
        with open(out_dir / f"{stem}_{level}_per_class.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["class_index", "class_name", "support", "accuracy"])
            for i, (acc, support) in enumerate(zip(result.per_class_accuracy, result.support)):
                writer.writerow([i, names[i], support, "" if support == 0 else f"{acc:.6f}"])
        confusion = np.asarray(result.confusion, dtype=np.int64)
        np.savetxt(out_dir / f"{stem}_{level}_confusion.csv", confusion, fmt="%d", delimiter=",")
    payload = {"metrics": results.headline(), **(extra or {})}
    path = out_dir / f"{stem}.json"
    path.write_text(json.dumps(finite_json(payload), indent=2, allow_nan=False) + "\n")
    return path


def finite_json(value):
    """`value` with every NaN or infinite float replaced by None (JSON null): strict JSON readers refuse NaN, and
    an undefined number (e.g. the mean class accuracy of a level without videos) is not a number."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def format_results_table(results: EvaluationResults) -> str:
    rows = [f"{'level':<12} {'videos':>7} {'top1':>7} {'top5':>7} {'mean cls':>9} {'consistent':>10}"]
    for level, result in results.levels.items():
        top5 = f"{100 * result.top5:>6.2f}%" if result.top5 is not None else f"{'-':>7}"  # fewer than 5 classes
        cons = result.consistent_top1
        rows.append(f"{level:<12} {result.num_videos:>7} {100 * result.top1:>6.2f}% {top5} "
                    f"{100 * result.mean_class_accuracy:>8.2f}% "
                    f"{'' if cons is None else f'{100 * cons:.2f}%':>10}")
    if results.consistency_rate is not None:
        rows.append(f"consistency rate of the independent predictions: {100 * results.consistency_rate:.2f}%")
    return "\n".join(rows)
