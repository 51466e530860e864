"""The report folder built from what an evaluation writes (engine/results.py), with and without a model."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from fineact.analysis.report import build_report
from fineact.analysis.report_sections import best_and_worst
from fineact.analysis.run_results import find_results, load_results
from fineact.engine.results import EvaluationResults, write_results
from fineact.errors import ConfigError, WeightsError
from fineact.interop.sidecar import write_sidecar
from fineact.labels import finegym_levels, flat_levels, read_class_names
from fineact.models import build_model


def fake_results(levels, accuracy: float, seed: int) -> dict:
    """Results as LevelMetrics.compute returns them, from a synthetic finest-level confusion matrix."""
    rng = np.random.default_rng(seed)
    k = levels.num_classes[levels.finest]
    fine = np.zeros((k, k), np.int64)
    for i in range(k):
        p = np.full(k, (1 - accuracy) / (k - 1))
        p[i] = accuracy
        fine[i] = rng.multinomial(int(rng.integers(3, 12)), p)
    fine[k - 1] = 0  # a class without videos in this split
    results = {}
    for level in levels.level_names:
        table = levels.finest_to[level]
        n = levels.num_classes[level]
        cm = np.zeros((n, n), np.int64)
        np.add.at(cm, (table[:, None].repeat(k, 1), table[None, :].repeat(k, 0)), fine)
        support = cm.sum(1)
        per_class = np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)
        results[level] = {"top1": float(np.trace(cm) / cm.sum()), "top5": 0.99,
                          "mean_class_accuracy": float(np.nanmean(per_class)), "per_class_accuracy": per_class.tolist(),
                          "support": support.tolist(), "confusion": cm.tolist(), "num_videos": int(cm.sum())}
    return results


def write_run(root, levels, accuracy=0.7, seed=0, split="val", export=True):
    checkpoints = root / "checkpoints"
    results = fake_results(levels, accuracy, seed)
    if len(levels.level_names) > 1:
        results["consistency_rate"] = 0.9
    write_results(EvaluationResults.from_dict(results), levels, checkpoints, stem=f"results_{split}",
                  extra={"checkpoint": str(checkpoints / "best.ckpt"), "split": split})
    if export:
        write_sidecar(root / "model.safetensors", "safetensors", {"config": {}, "levels": levels.to_dict()})
    return results


@pytest.fixture(scope="module")
def gym99(shared_data):
    d = shared_data / "finegym"
    return finegym_levels(d / "gym99_categories.txt", d / "set_categories.txt")


def linked_files(report) -> list[str]:
    md = report.index_md.read_text()
    html = report.index_html.read_text()
    md_links = re.findall(r"\]\(([^)]+)\)", md)
    html_links = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sorted(set(md_links)) == sorted(set(html_links))
    for link in md_links:
        assert not link.startswith("/") and (report.out_dir / link).is_file(), link
    return md_links


def test_report_from_a_finegym_run_folder(tmp_path, gym99):
    results = write_run(tmp_path / "mt", gym99, 0.75, 1)
    write_run(tmp_path / "base", gym99, 0.55, 2)
    report = build_report(tmp_path / "mt", compare={"SlowOnly": tmp_path / "base"}, name="multi-task", top_k=5)
    assert report.out_dir == tmp_path / "mt" / "checkpoints" / "report_val"
    md = report.index_md.read_text()
    assert md.startswith("# Evaluation report: multi-task (val)")
    assert f"{100 * results['element']['top1']:.2f}%" in md
    assert "| SlowOnly | element |" in md
    assert "Consistency of the independent per-level predictions" in md
    assert "### Best 5 classes" in md and "### Worst 5 classes" in md
    assert "### All 4 classes by accuracy" in md  # event: few classes, one table
    assert "Groups of similar classes (14)" in md and "UB_circles" in md   # elements grouped by set
    assert "Groups of similar classes (4)" in md                            # sets grouped by event
    links = linked_files(report)
    assert {"images/confusion_event.png", "images/confusion_set.png", "images/confusion_element.png"} <= set(links)
    assert any(link.startswith("images/groups_element_") for link in links)
    for image in report.images:
        with Image.open(image) as im:
            im.load()
    html = report.index_html.read_text()
    assert html.count("<img ") == len(links) and "<table>" in html and "&lt;" not in html[:200]
    # the class without videos is neither best nor worst
    assert "| 98 |" not in md.split("## Level: element")[1].split("### Confusion")[0]


def test_report_with_a_model_gradcam_and_arc(tmp_path):
    names = [f"action {i}" for i in range(5)]
    levels = flat_levels(names)
    write_run(tmp_path / "arc", levels, export=False)   # class names then come from the per-class CSV
    torch.manual_seed(0)
    model = build_model("arc_tsm_r18", num_classes=5, num_segments=2)
    model.train()
    clips = torch.randn(3, 3, 2, 32, 32)
    report = build_report(tmp_path / "arc", tmp_path / "out", model=model, sample_clips=clips, max_samples=2,
                          sample_labels=[1, 2, 3])
    assert report.notes == []
    md = report.index_md.read_text()
    assert "## Grad-CAM" in md and "## ARC: inside the recursion" in md and "true action 2" in md
    links = linked_files(report)
    assert "images/gradcam_backbone_layer2_clip0.png" in links and "images/gradcam_backbone_layer2_clip1.gif" in links
    assert "images/gradcam_backbone_layer2_clip2.png" not in links  # max_samples
    assert {"images/arc_attention.png", "images/arc_states.png"} <= set(links)
    assert model.training  # the model's mode is restored


def test_report_with_ssv1_contrastive_groups(tmp_path, shared_data):
    d = shared_data / "something_something"
    names = read_class_names(d / "sthv1_label_map_mmaction2.txt")
    write_run(tmp_path / "ssv1", flat_levels(names), 0.5, 4, split="test")
    report = build_report(tmp_path / "ssv1", groups=d / "contrastive_groups_list.txt", max_group_plots=3)
    md = report.index_md.read_text()
    assert "Groups of similar classes (69)" in md
    links = linked_files(report)
    assert "images/groups_label_1.png" in links and "images/groups_label_2.png" not in links


def test_find_and_load_results(tmp_path, gym99):
    with pytest.raises(ConfigError, match="no results_<split>.json"):
        find_results(tmp_path)
    write_run(tmp_path, gym99, split="val")
    write_run(tmp_path, gym99, split="train")
    assert find_results(tmp_path).name == "results_val.json"
    assert find_results(tmp_path, "train").name == "results_train.json"
    with pytest.raises(ConfigError, match=r"split 'test'.*\['train', 'val'\]"):
        find_results(tmp_path, "test")
    run = load_results(tmp_path / "checkpoints" / "results_val.json")
    assert run.level_names == ["event", "set", "element"] and run.levels == gym99
    assert run.confusions["element"].shape == (99, 99)
    assert run.class_names["set"] == gym99.class_names["set"]
    best, worst = best_and_worst(run.confusions["set"], run.class_names["set"], 3)
    assert best[0].accuracy >= best[-1].accuracy >= worst[-1].accuracy >= worst[0].accuracy


def test_label_levels_from_a_version_1_export_description_and_a_malformed_one(tmp_path, gym99):
    write_run(tmp_path, gym99, export=False)
    # model.json as fineact wrote it before the export descriptions shared one schema
    (tmp_path / "model.json").write_text(json.dumps({"format": "fineact-export-1", "config": {},
                                                     "levels": gym99.to_dict(), "trained_levels": ["element"]}))
    (tmp_path / "notes.json").write_text(json.dumps({"levels": {"level_names": ["x"]}}))  # not an export: passed over
    assert load_results(tmp_path).levels == gym99
    write_sidecar(tmp_path / "model.safetensors", "safetensors", {"config": {}, "levels": {"level_names": ["x"]}})
    with pytest.raises(WeightsError, match=r"model\.json: 'levels': label levels: malformed"):
        load_results(tmp_path)
