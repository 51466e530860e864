"""`fineact demo`: the two-stage hierarchical multi-task recipe end to end on the embedded synthetic dataset.

1. Generate (once, cached) a small FineGym-like dataset: real H.264 clips + FineGym-format split and category
   files, read back by the real FineGym readers.
2. Stage 1: train one small SlowOnly base model per level (event 4 x 16, set 8 x 8, element 16 x 4 frames;
   3 / 15 / 15 epochs).
3. Stage 2: assemble the hierarchical multi-task network from the three checkpoints, freeze the pathways,
   extract their features once and train the encoders, fusion and heads on the cache (loss 1 : 2 : 4).
4. Evaluate every model on the val split, run `predict` on a few clips, write a report folder.
5. Slide the multi-task network over a generated untrimmed routine with known element times
   (`fineact.windows`, `fineact.demo.routine`): the timeline PNG, the segments and their accuracy go to the report.
Everything runs on the CPU in a few minutes; sizes are chosen for that, not for accuracy records.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from fineact.demo.dataset import default_demo_params, ensure_dataset

# Small pathways at low resolution: ResNet-18-style 3D nets with 8 base channels on 48 x 48 crops.
PATHWAYS = {"event": (4, 16), "set": (8, 8), "element": (16, 4)}
# Epochs per base model: appearance (event) is learnt in one or two epochs; motion (set) and temporal detail
# (element) take longer for these tiny networks.
BASE_EPOCHS = {"event": 3, "set": 15, "element": 15}
BACKBONE = {"depth": 18, "base_channels": 8}


def _data_section(ds, workers: int) -> dict:
    return {"format": "finegym", "labels": "finegym",
            "train": {"annotations": str(ds.train_list), "data_root": str(ds.videos_dir)},
            "val": {"annotations": str(ds.val_list), "data_root": str(ds.videos_dir)},
            "categories": str(ds.categories_file), "set_categories": str(ds.set_categories_file),
            # MultiScaleCrop is mild enough to keep the small gymnast in view; no flip: some elements differ only
            # by turning direction (as SSv1's left/right classes), which a flip would swap.
            "resize": [56], "crop_size": 48, "train_crop": "multiscale", "flip": False,
            "batch_size": 16, "num_workers": workers, "persistent_workers": True}


def base_config(level: str, ds, out: Path, epochs: int, workers: int) -> dict:
    frames, interval = PATHWAYS[level]
    return {"name": f"demo_{level}", "output_dir": str(out / f"base_{level}"), "level": level, "seed": 0,
            "model": {"name": "slowonly_r50", "args": {**BACKBONE, "num_frames": frames, "frame_interval": interval,
                                                       "dropout": 0.3}},
            "data": _data_section(ds, workers),
            "optim": {"lr": 0.05, "weight_decay": 1e-4, "grad_clip": 40.0},
            "schedule": {"kind": "cosine", "warmup_epochs": 1},
            "trainer": {"max_epochs": epochs, "log_every_n_steps": 5}}


def multitask_config(ds, out: Path, checkpoints: dict[str, str], epochs: int, workers: int) -> dict:
    return {"name": "demo_multitask", "output_dir": str(out / "multitask"), "seed": 0,
            "model": {"name": "hierarchical_multitask",
                      "args": {"pathway_depth": BACKBONE["depth"], "base_channels": BACKBONE["base_channels"],
                               # dropout 0.2: the pathways' features are 64-D here (2048-D in the paper)
                               "pathway_clips": {k: list(v) for k, v in PATHWAYS.items()}, "dropout": 0.2}},
            "multitask": {"pathway_checkpoints": checkpoints, "freeze_pathways": True, "cache_features": True},
            "data": _data_section(ds, workers),
            "optim": {"lr": 0.01, "weight_decay": 1e-4, "grad_clip": 40.0},  # the paper's lr for this stage
            "schedule": {"kind": "cosine"},
            "trainer": {"max_epochs": epochs, "log_every_n_steps": 5}}


def run_demo(out_dir: str | Path = "runs/demo", data_dir: str | Path = ".fineact_cache/demo_data",
             base_epochs: int | None = None, fusion_epochs: int = 60, workers: int = 1, quick: bool = False) -> dict:
    """Run the whole demo; returns the summary written to <out_dir>/summary.json."""
    # Imported here, not at the top: importing fineact.demo must stay cheap (numpy only), since the clip-rendering
    # worker processes of the dataset generator import it.
    from fineact.config import load_config
    from fineact.engine.run import train

    start = time.time()
    out = Path(out_dir).absolute()
    params = default_demo_params()
    if quick:  # a tiny variant for tests
        params.update(num_train=32, num_val=16)
    print(f"[demo] dataset: {data_dir} ({params['num_train']} train / {params['num_val']} val clips, "
          f"{params['size']} px, {params['num_frames']} frames)")
    ds = ensure_dataset(data_dir, **params, workers=max(1, workers))
    summary: dict = {"dataset": {**params, "root": str(ds.root), "val_list": str(ds.val_list),
                                 "videos_dir": str(ds.videos_dir)}, "models": {}}
    checkpoints = {}
    for level in PATHWAYS:
        print(f"[demo] stage 1: {level} base model, SlowOnly {PATHWAYS[level][0]} x {PATHWAYS[level][1]} frames")
        epochs = base_epochs or BASE_EPOCHS[level]
        cfg = load_config(base=base_config(level, ds, out, epochs, workers))
        run = train(cfg, overwrite=True)  # the demo rebuilds its own runs
        checkpoints[level] = str(run.best_checkpoint or run.last_checkpoint)
        summary["models"][f"base_{level}"] = {"checkpoint": checkpoints[level], "results": run.results.headline()}
    print("[demo] stage 2: hierarchical multi-task network from the three base checkpoints (frozen pathways, "
          "cached features)")
    cfg = load_config(base=multitask_config(ds, out, checkpoints, fusion_epochs, workers))
    run = train(cfg, overwrite=True)
    summary["models"]["multitask"] = {"checkpoint": str(run.best_checkpoint), "exported": str(run.exported),
                                      "results": run.results.headline()}
    summary["multitask_results"] = run.results
    summary["seconds"] = round(time.time() - start, 1)
    summary["chance"] = {level: 1.0 / result.num_classes for level, result in run.results.levels.items()}
    (out / "summary.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "multitask_results"},
                                                 indent=2) + "\n")
    return summary


def format_summary(summary: dict) -> str:
    from fineact.engine.results import EvaluationResults

    rows = [f"{'model':<16} {'level':<8} {'top1':>8} {'top5':>8} {'mean cls':>9} {'chance':>7}"]
    chance = summary.get("chance", {})
    for model, info in summary["models"].items():
        for level, result in EvaluationResults.from_dict(info["results"], f"demo model {model}").levels.items():
            top5 = f"{100 * result.top5:>7.2f}%" if result.top5 is not None else f"{'-':>8}"  # < 5 classes
            rows.append(f"{model:<16} {level:<8} {100 * result.top1:>7.2f}% {top5} "
                        f"{100 * result.mean_class_accuracy:>8.2f}% {100 * chance.get(level, 0):>6.2f}%")
    mt = EvaluationResults.from_dict(summary["models"]["multitask"]["results"], "demo multi-task model")
    if mt.consistency_rate is not None:
        consistent = mt.levels["element"].consistent_top1
        rows.append(f"multi-task consistency rate: {100 * mt.consistency_rate:.2f}%; hierarchy-consistent "
                    f"element top1: {100 * (float('nan') if consistent is None else consistent):.2f}%")
    rows.append(f"total time: {summary['seconds']:.0f} s")
    return "\n".join(rows)


def finish_demo(summary: dict, out_dir: str | Path, num_predict: int = 3) -> None:
    """Predict on a few val clips with the multi-task export, write the report, print the final table."""
    from fineact.data.annotations import read_finegym_split
    from fineact.predict import Predictor, format_predictions, load_model

    out = Path(out_dir).absolute()
    predictor = load_model(summary["models"]["multitask"]["exported"])
    samples = read_finegym_split(summary["dataset"]["val_list"], summary["dataset"]["videos_dir"])
    predictions = {}
    for sample in samples[:num_predict]:
        result = predictor.predict(sample.source, topk=5)
        predictions[sample.source] = Predictor.as_json(result)
        print(format_predictions(sample.source, result))
    (out / "predictions.json").write_text(json.dumps(predictions, indent=2) + "\n")
    report_dir = write_demo_report(summary, out, predictor, samples[:2])
    routine_report(predictor, out, report_dir)
    print(format_summary(summary))
    print(f"[demo] report: {report_dir / 'index.html'} (summary: {report_dir / 'summary.md'})")


def routine_report(predictor, out: Path, report_dir: Path, duration: float = 60.0) -> dict:
    """Sliding windows over a generated routine (a few events, several elements each, known times): its timeline
    PNG and segments go to <report>/routine/, its accuracy to summary.md and <out>/routine_scores.json."""
    from fineact.demo.routine import evaluate_routine, format_routine_scores, generate_routine, truth_spans
    from fineact.windows.outputs import plot_timeline

    print(f"[demo] sliding windows over a generated {duration:.0f} s routine")
    video = generate_routine(out / "routine", duration=duration, seed=1)
    result, scores = evaluate_routine(predictor, video)
    files = result.write(report_dir / "routine")
    levels = predictor.module.levels
    plot_timeline(result.timeline, files["plot"], title=f"generated routine {video.path.name}",  # with the truth
                  truth=truth_spans(video, levels, result.timeline.levels))
    table = format_routine_scores(scores)
    print(table)
    (out / "routine_scores.json").write_text(json.dumps({"video": str(video.path), "window": result.window_info(),
                                                         "scores": scores}, indent=2) + "\n")
    shown = sum(not s.is_background for s in result.timeline.segments)
    lines = ["", "## Sliding windows over a whole routine", "",
             f"A generated {video.duration:.0f} s untrimmed routine ({len(video.events)} events, "
             f"{len(video.elements)} elements at known times) through `fineact predict --windows` (stride "
             f"{result.window_info()['stride_frames']} frames, {result.window_info()['count']} windows): "
             f"{shown} segments. The model was trained on trimmed clips and has no background class, so "
             "\"no element\" comes only from the probability threshold.", "",
             f"![timeline (thin strips: the truth)](routine/{files['plot'].name})", "",
             f"- segments: [routine/{files['segments'].name}](routine/{files['segments'].name}), "
             f"timeline: routine/{files['timeline'].name}", "", "```", table, "```"]
    with open(report_dir / "summary.md", "a") as handle:
        handle.write("\n".join(lines) + "\n")
    return scores


def write_demo_report(summary: dict, out: Path, predictor, samples) -> Path:
    """<out>/report: the multi-task run's report (metrics, confusion matrices, Grad-CAM of a few clips),
    training curves of every stage and a markdown summary with the final table."""
    from fineact.analysis.commands import video_clips
    from fineact.analysis.report import build_report

    report_dir = out / "report"
    clips = video_clips(predictor, [s.source for s in samples]) if samples else None
    build_report(out / "multitask", report_dir, levels=predictor.module.levels, model=predictor.module.model,
                 sample_clips=clips, sample_labels=[s.label for s in samples] or None,
                 title="fineact demo: hierarchical multi-task network on the synthetic FineGym-like dataset")
    curves = plot_training_curves({name: out / name for name in ("base_event", "base_set", "base_element",
                                                                 "multitask")}, report_dir / "training_curves.png")
    lines = ["# fineact demo", "", "Two-stage hierarchical multi-task recipe on the embedded synthetic dataset "
             f"({summary['dataset']['num_train']} train / {summary['dataset']['num_val']} val clips).", "",
             "```", format_summary(summary), "```", "",
             "- [full report with confusion matrices and Grad-CAM](index.html)",
             f"- ![training curves]({curves.name})", "- predictions on a few clips: `../predictions.json`",
             "- numbers: `../summary.json`"]
    (report_dir / "summary.md").write_text("\n".join(lines) + "\n")
    return report_dir


def plot_training_curves(runs: dict[str, Path], path: Path) -> Path:
    """Training loss and validation top-1 per epoch of each stage, from Lightning's CSV logs."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(runs), figsize=(3.6 * len(runs), 5.2), squeeze=False)
    for column, (name, run) in enumerate(runs.items()):
        rows = []
        for log in sorted(run.glob("logs/version_*/metrics.csv")):
            with open(log) as handle:
                rows += list(csv.DictReader(handle))
        loss = [(int(r["epoch"]), float(r["train/loss_epoch"])) for r in rows if r.get("train/loss_epoch")]
        top1 = {key: [(int(r["epoch"]), float(r[key])) for r in rows if r.get(key)]
                for key in sorted({k for r in rows for k in r if k.startswith("val/") and k.endswith("_top1")})}
        ax = axes[0][column]
        if loss:
            ax.plot(*zip(*loss), marker="o", ms=3, lw=1)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss" if column == 0 else "")
        ax = axes[1][column]
        for key, points in top1.items():
            if key != "val/top1" and points:
                ax.plot(*zip(*points), marker="o", ms=3, lw=1, label=key[4:-5])
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation top-1" if column == 0 else "")
        if top1:
            ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
