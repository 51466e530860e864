"""Writing evaluation results: a JSON summary, a per-class accuracy CSV and the confusion matrix per level."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from fineact.labels import LabelLevels


def summarise(results: dict) -> dict:
    """The headline numbers (no matrices): {level: {top1, top5, mean_class_accuracy, ...}, consistency_rate}."""
    summary = {}
    for key, value in results.items():
        if isinstance(value, dict):
            summary[key] = {k: v for k, v in value.items()
                            if k not in ("per_class_accuracy", "support", "confusion")}
        else:
            summary[key] = value
    return summary


def write_results(results: dict, levels: LabelLevels, out_dir: str | Path, stem: str = "results",
                  extra: dict | None = None) -> Path:
    """Write <stem>.json, <stem>_<level>_per_class.csv and <stem>_<level>_confusion.csv into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for level, entry in results.items():
        if not isinstance(entry, dict):
            continue
        names = levels.class_names[level]
        with open(out_dir / f"{stem}_{level}_per_class.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["class_index", "class_name", "support", "accuracy"])
            for i, (acc, support) in enumerate(zip(entry["per_class_accuracy"], entry["support"])):
                writer.writerow([i, names[i], support, "" if support == 0 else f"{acc:.6f}"])
        confusion = np.asarray(entry["confusion"], dtype=np.int64)
        np.savetxt(out_dir / f"{stem}_{level}_confusion.csv", confusion, fmt="%d", delimiter=",")
    payload = {"metrics": summarise(results), **(extra or {})}
    path = out_dir / f"{stem}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def format_results_table(results: dict) -> str:
    rows = [f"{'level':<12} {'videos':>7} {'top1':>7} {'top5':>7} {'mean cls':>9} {'consistent':>10}"]
    for level, entry in results.items():
        if not isinstance(entry, dict):
            continue
        top5 = f"{100 * entry['top5']:>6.2f}%" if "top5" in entry else f"{'-':>7}"  # fewer than 5 classes
        cons = entry.get("consistent_top1")
        rows.append(f"{level:<12} {entry['num_videos']:>7} {100 * entry['top1']:>6.2f}% {top5} "
                    f"{100 * entry['mean_class_accuracy']:>8.2f}% "
                    f"{'' if cons is None else f'{100 * cons:.2f}%':>10}")
    if "consistency_rate" in results:
        rows.append(f"consistency rate of the independent predictions: {100 * results['consistency_rate']:.2f}%")
    return "\n".join(rows)
