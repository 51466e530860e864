"""The `fineact` command. Each subcommand parses its arguments here and calls the Python API.

Every subcommand runs behind one boundary (fineact/boundary.py): a user mistake prints one clear message and
exits with status 2, never a traceback; exit statuses are listed there.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

from fineact.boundary import run_command

Handler = Callable[[argparse.Namespace], int]


def _int_tuple(text: str) -> tuple[int, ...]:
    text = text.strip()
    if text in ("", "none", "()"):
        return ()
    try:
        return tuple(int(x) for x in text.replace("(", "").replace(")", "").split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 3,4,5, got {text!r}")


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= minimum (a count, a size), refused with the value otherwise."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise argparse.ArgumentTypeError(f"expected {expected}, found {text!r}")
        return value
    return parse


_positive_int = _at_least(1)


# -- profile ----------------------------------------------------------------------------------------------

def _add_profile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="parameter count and GMACs of registered models",
                       description="Count parameters and multiply-accumulates (GMACs, the papers' 'GFLOPs') of "
                                   "one or more registered models with PyTorch's flop counter, next to the "
                                   "figures the papers publish.")
    p.add_argument("models", nargs="+", metavar="MODEL", help="registered model names (see `fineact models`)")
    p.add_argument("--num-classes", type=_positive_int, default=None, help="classifier size (default: the model's)")
    p.add_argument("--frames", type=_positive_int, default=None, help="frames per clip T (default: the model's)")
    p.add_argument("--size", type=_positive_int, default=224, help="spatial size S of the S x S input (default 224)")
    p.add_argument("--arc-stages", type=_int_tuple, default=None, help="ARC stages, e.g. 3,4,5 or none")
    p.add_argument("--arc-steps", type=_positive_int, default=None, help="ARC recursive steps n")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_run_profile)


def _run_profile(args: argparse.Namespace) -> int:
    from fineact.analysis.profile import format_profile_table, profile_by_name

    kwargs = {k: v for k, v in (("num_classes", args.num_classes), ("arc_stages", args.arc_stages),
                                ("arc_steps", args.arc_steps)) if v is not None}
    profiles = [profile_by_name(name, frames=args.frames, size=args.size, **kwargs) for name in args.models]
    if args.json:
        print(json.dumps([p.as_dict() for p in profiles], indent=2))
    else:
        print(format_profile_table(profiles))
    return 0


# -- models -----------------------------------------------------------------------------------------------

def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered models",
                       description="List every registered model name with a one-line summary.")
    p.set_defaults(handler=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from fineact.models import get_entry, list_models

    names = list_models()
    width = max(len(n) for n in names)
    for name in names:
        print(f"{name:<{width}}  {get_entry(name).summary}")
    return 0


# -- train / test ---------------------------------------------------------------------------------------

def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="experiment YAML file (see configs/)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="dotted overrides, e.g. optim.lr=0.02 trainer.max_epochs=3 data.batch_size=16")


def _console_args(p: argparse.ArgumentParser) -> None:
    loudness = p.add_mutually_exclusive_group()
    loudness.add_argument("--quiet", action="store_const", dest="verbosity", const=-1, default=0,
                          help="warnings and errors only (no per-epoch lines)")
    loudness.add_argument("--verbose", action="store_const", dest="verbosity", const=1,
                          help="also Lightning's own messages and tips")


def _configure_console(args: argparse.Namespace) -> None:
    from fineact.engine.console import configure_console

    configure_console(args.verbosity)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a config",
                       description="Train the config's model with Lightning, keep last/best checkpoints under "
                                   "<output_dir>/checkpoints, evaluate the best on the val (or test) split and "
                                   "export safetensors weights to <output_dir>/model.safetensors.")
    _config_args(p)
    p.add_argument("--resume", action="store_true", help="continue from <output_dir>/checkpoints/last.ckpt")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a previous run in output_dir (without it, such a folder is refused, except an "
                        "unfinished run with the same config: it is resumed)")
    _console_args(p)
    p.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from fineact.config import load_config
    from fineact.engine.run import train

    _configure_console(args)
    summary = train(load_config(args.config, args.overrides), resume=args.resume, overwrite=args.overwrite)
    print(f"checkpoints: {summary.best_checkpoint or summary.last_checkpoint}")
    if summary.exported:
        print(f"exported weights: {summary.exported}")
    return 0


def _add_test(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("test", help="evaluate a checkpoint with the config's test protocol",
                       description="Evaluate a checkpoint on the config's test split (or --split): per-video "
                                   "aggregation over clips x crops, top-1/top-5/mean class accuracy per level, "
                                   "consistency for hierarchies. Results (JSON, per-class CSV, confusion matrix) "
                                   "are written next to the checkpoint.")
    _config_args(p)
    p.add_argument("--checkpoint", required=True, help="a .ckpt from training or an exported .safetensors")
    p.add_argument("--split", choices=["train", "val", "test"], default=None)
    p.add_argument("--overwrite", action="store_true",
                   help="replace results_<split>.* already next to the checkpoint (without it, they are kept)")
    _console_args(p)
    p.set_defaults(handler=_run_test)


def _run_test(args: argparse.Namespace) -> int:
    from fineact.config import load_config
    from fineact.engine.run import test

    _configure_console(args)
    test(load_config(args.config, args.overrides), args.checkpoint, args.split, overwrite=args.overwrite)
    return 0


# -- predict ----------------------------------------------------------------------------------------------

def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="top-k labels per level for video files",
                       description="Run a trained model on video files and print the top-k classes of every "
                                   "level it predicts, with names and probabilities.")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    p.add_argument("--checkpoint", required=True, help="a .ckpt from training or an exported .safetensors")
    p.add_argument("--topk", type=_positive_int, default=5, help="classes shown per level (>= 1)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    p.add_argument("--json", action="store_true", help="print one JSON object {video: {level: [...]}}")
    _add_window_flags(p)
    p.set_defaults(handler=_run_predict)


def _add_window_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sliding windows over long videos (--windows; method: fineact/windows/segments.py)")
    g.add_argument("--windows", action="store_true", help="slide the model's clip over each whole video and "
                   "write a timeline: timeline.json, segments.csv, timeline.png")
    g.add_argument("--stride", type=_positive_int, default=None, help="frames between window starts (default 8)")
    g.add_argument("--window", type=float, default=None, metavar="SECONDS",
                   help="window length of segment models (TSN/TSM); default: the typical training clip duration "
                        "recorded in the export's JSON")
    g.add_argument("--out", default="runs/predict_windows", help="output folder (one subfolder per video)")
    g.add_argument("--render", default=None, metavar="FILE.mp4", help="also write the video with the labels "
                   "drawn on each frame (in the video's output folder)")
    g.add_argument("--smooth", type=_positive_int, default=5, help="windows in the smoothing filter (1 = none)")
    g.add_argument("--threshold", type=float, default=0.4, help="background below this smoothed probability")
    g.add_argument("--background-class", default=None, help="a finest-level class meaning 'no element'")
    g.add_argument("--min-windows", type=_positive_int, default=2, help="shorter runs merge into their neighbour")
    g.add_argument("--batch-size", type=_positive_int, default=16, help="windows per forward pass")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def _run_predict_windows(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fineact.files import check_output_dir
    from fineact.predict import load_model
    from fineact.windows import SegmentOptions

    check_output_dir(args.out, "--out")
    predictor = load_model(args.checkpoint, args.device)
    options = SegmentOptions(smooth=args.smooth, threshold=args.threshold, background_class=args.background_class,
                             min_windows=args.min_windows)
    several = len(args.videos) > 1
    for video in args.videos:
        result = predictor.predict_video(video, stride=args.stride, window_s=args.window,
                                         batch_size=args.batch_size, options=options,
                                         progress=not args.no_progress)
        out = Path(args.out) / Path(video).stem if several else Path(args.out)
        files = result.write(out, render=args.render, progress=not args.no_progress)
        shown = [s for s in result.timeline.segments if not s.is_background]
        print(f"{video}: {result.window_info()['count']} windows, {len(shown)} segments -> {out}")
        for name, path in files.items():
            print(f"  {name}: {path}")
    return 0


def _run_predict(args: argparse.Namespace) -> int:
    from fineact.engine.lightning_values import torch_device
    from fineact.errors import FineactError
    from fineact.predict import Predictor, format_predictions, load_model

    args.device = str(torch_device(args.device))
    if args.windows:
        return _run_predict_windows(args)
    predictor = load_model(args.checkpoint, args.device)
    results, failed = {}, []
    for video in args.videos:
        try:  # one unreadable file is reported; the others are still predicted
            predictions = predictor.predict(video, topk=args.topk)
        except FineactError as exc:
            print(f"fineact predict: error: {exc}", file=sys.stderr)
            failed.append(video)
            continue
        if args.json:
            results[video] = Predictor.as_json(predictions)
        else:
            print(format_predictions(video, predictions))
    if args.json:
        print(json.dumps(results, indent=2))
    if failed:
        print(f"fineact predict: {len(failed)} of {len(args.videos)} files could not be predicted: "
              f"{', '.join(failed)}", file=sys.stderr)
        return 1 if len(failed) < len(args.videos) else 2
    return 0


# -- extract-features -------------------------------------------------------------------------------------

def _add_extract(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("extract-features", help="pooled features per pathway of a split, to safetensors",
                       description="Write the pooled feature of every video of a split (per pathway for "
                                   "multi-pathway models; all test views) with labels and sample indices to a "
                                   "safetensors file.")
    _config_args(p)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", choices=["train", "val", "test"], default="val")
    p.add_argument("--out", required=True, help="output .safetensors file")
    p.set_defaults(handler=_run_extract)


def _run_extract(args: argparse.Namespace) -> int:
    from fineact.config import load_config
    from fineact.engine.checkpoints import load_module
    from fineact.engine.datamodule import VideoDataModule
    from fineact.engine.features import extract_features
    from fineact.files import check_output_file

    check_output_file(args.out, "--out")
    cfg = load_config(args.config, args.overrides)
    module = load_module(args.checkpoint, config_overrides=cfg)
    path = extract_features(module, VideoDataModule(cfg, module.levels, module.model), args.split, args.out)
    print(f"features written to {path}")
    return 0


# -- check-data -------------------------------------------------------------------------------------------

def _add_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-data", help="list unreadable or too-short videos of a config's splits",
                       description="Read every annotation file of the config, probe every video and decode "
                                   "the first and last frame of its window (--full: every frame). Lists each "
                                   "unreadable or too-short video; exit status 1 when any is found.")
    _config_args(p)
    p.add_argument("--full", action="store_true", help="decode every frame (slow, finds mid-file damage)")
    p.add_argument("--workers", type=_positive_int, default=2)
    p.set_defaults(handler=_run_check)


def _run_check(args: argparse.Namespace) -> int:
    from fineact.config import load_config
    from fineact.data.check import check_samples, format_problems, frames_needed
    from fineact.engine.datamodule import read_split
    from fineact.engine.model_factory import build_from_config
    from fineact.engine.run import levels_from_config

    cfg = load_config(args.config, args.overrides)
    levels = levels_from_config(cfg)
    model, _, _ = build_from_config(cfg, levels)
    needed = frames_needed(model.clip_specs)
    problems, totals, untrimmed = [], {}, None
    if cfg.data.finegym_annotations:  # untrimmed FineGym: the missing-video table first, as training prints it
        from fineact.engine.datamodule import scan_untrimmed

        untrimmed = scan_untrimmed(cfg, levels)
        print(untrimmed.table.format())
    for split in ("train", "val", "test"):
        if cfg.data[split] is not None:
            samples = untrimmed.samples(split) if untrimmed else read_split(cfg, levels, split)
            totals[split] = len(samples)
            problems += check_samples(split, samples, needed, args.full, args.workers)
    print(format_problems(problems, totals))
    return 1 if problems or (untrimmed and untrimmed.table.rows) else 0


# -- prepare ----------------------------------------------------------------------------------------------

def _add_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="trim FineGym elements out of the untrimmed videos (optional)",
                       description="For tools that want one clip per element (fineact itself reads the untrimmed "
                                   "videos through the JSON): re-encode each element of the split files with "
                                   "libx264 at the native rate and size, in parallel, resumable, each clip written "
                                   "atomically; writes the split lists of the clips and missing_videos.json.")
    p.add_argument("dataset", choices=["finegym"])
    p.add_argument("--annotations", required=True, help="finegym_annotation_info_v1.0.json or v1.1")
    p.add_argument("--videos", required=True, help="folder of the untrimmed <youtube_id>.mp4|mkv|webm")
    p.add_argument("--splits", nargs="+", required=True, metavar="SPLIT_FILE",
                   help="split files, e.g. gym99_train_element_v1.1.txt gym99_val_element.txt")
    p.add_argument("--out", required=True, help="output folder (clips in <out>/videos)")
    p.add_argument("--workers", type=_positive_int, default=2, help="encoding processes (default 2)")
    p.add_argument("--crf", default="18", help="libx264 constant rate factor (default 18)")
    p.add_argument("--preset", default="fast", help="libx264 preset (default fast)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    from fineact.data.prepare_finegym import prepare_finegym

    summary = prepare_finegym(args.annotations, args.videos, args.splits, args.out, workers=args.workers,
                              encoding={"crf": str(args.crf), "preset": args.preset},
                              progress=not args.no_progress)
    print(f"{summary.written} clip(s) written, {summary.skipped} already there, {summary.left_out} sample(s) of "
          f"missing or unreadable videos left out (see {summary.missing_videos})")
    for path in summary.split_lists:
        print(f"  {path}")
    return 0


# -- pack -------------------------------------------------------------------------------------------------

def _add_pack(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pack", help="write a split as shards (LitData chunks) for streamed training",
                       description="Write data.<split> of the config as a pack: LitData chunks holding each "
                                   "sample's encoded clip (the whole file, or its window re-encoded), frame "
                                   "count, fps, label, id and source line. Resumes an interrupted pack when "
                                   "run again. Train from it with data.<split>.shards=DIR (README \"Scale\").")
    _config_args(p)
    p.add_argument("--split", default="train", choices=("train", "val", "test"))
    p.add_argument("--out", required=True, help="the pack's folder (new, empty, or an interrupted pack)")
    p.add_argument("--shard-size", default="256MB", help="bytes per shard (default 256MB)")
    p.add_argument("--workers", type=_positive_int, default=1, help="encoding processes")
    p.set_defaults(handler=_run_pack)


def _run_pack(args: argparse.Namespace) -> int:
    from fineact.config import load_config
    from fineact.data.pack_writer import pack_split, parse_size

    cfg = load_config(args.config, args.overrides)
    index = pack_split(cfg, args.split, args.out, parse_size(args.shard_size), args.workers)
    print(f"pack of data.{args.split} in {args.out}: {index.num_samples} samples, {index.pack_bytes / 1e6:.1f} MB "
          f"(source {index.source_bytes / 1e6:.1f} MB)")
    return 0


# -- demo -------------------------------------------------------------------------------------------------

def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the two-stage hierarchical multi-task recipe on the embedded dataset",
                       description="Generate (once) the synthetic FineGym-like dataset, train a small base "
                                   "model per level, assemble and train the hierarchical multi-task network, "
                                   "evaluate, predict on a few clips and write a report. CPU, a few minutes.")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--data-dir", default=".fineact_cache/demo_data", help="where the dataset is cached")
    p.add_argument("--base-epochs", type=_positive_int, default=None, help="epochs per base model")
    p.add_argument("--fusion-epochs", type=_positive_int, default=None, help="epochs of the fusion stage")
    p.add_argument("--workers", type=_at_least(0), default=1, help="DataLoader workers")
    p.add_argument("--quick", action="store_true", help="a tiny run (smoke test)")
    p.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from fineact.demo import finish_demo, run_demo
    from fineact.files import check_output_dir

    check_output_dir(args.out, "--out")
    check_output_dir(args.data_dir, "--data-dir")

    kwargs = {k: v for k, v in (("base_epochs", args.base_epochs), ("fusion_epochs", args.fusion_epochs))
              if v is not None}
    summary = run_demo(args.out, args.data_dir, workers=args.workers, quick=args.quick, **kwargs)
    finish_demo(summary, args.out)
    return 0


# -- analysis ---------------------------------------------------------------------------------------------

def _key_value(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=RUN_DIR, got {text!r}")
    name, value = text.split("=", 1)
    return name, value


def _add_analyze(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="a report folder for an evaluated run",
                       description="Write a report (index.md + index.html + images/) for a run evaluated by "
                                   "`fineact train`/`test`: metrics per level, best/worst classes, confusion "
                                   "matrices and group sub-matrices (side by side with --compare runs), and "
                                   "with --videos Grad-CAM and ARC state pictures of those clips.")
    p.add_argument("run", help="run folder (or its results_<split>.json)")
    p.add_argument("--out", default=None, help="report folder (default: report_<split> beside the results)")
    p.add_argument("--split", default=None, help="which results_<split>.json when there are several")
    p.add_argument("--groups", default=None, help="class groups file (SSv1 contrastive list or the 50-group TSV); "
                                                  "default: each level grouped by its parent level")
    p.add_argument("--compare", type=_key_value, action="append", default=[], metavar="NAME=RUN",
                   help="another run to compare with, e.g. baseline=runs/ssv1_tsm_r18_8f (repeatable)")
    p.add_argument("--videos", nargs="*", default=None, help="clips for Grad-CAM / ARC pictures")
    p.add_argument("--cam-layer", action="append", default=None, help="Grad-CAM layer (see `fineact layers`)")
    p.add_argument("--cam-level", default=None, help="which level's prediction Grad-CAM explains")
    p.set_defaults(handler=_run_analyze)


def _run_analyze(args: argparse.Namespace) -> int:
    from fineact.analysis.commands import analyze_run
    from fineact.files import check_output_dir

    if args.out is not None:
        check_output_dir(args.out, "--out")

    report = analyze_run(args.run, args.out, args.split, args.groups, dict(args.compare) or None, args.videos,
                         args.cam_layer, args.cam_level)
    print(f"report: {report.index_html} ({len(report.images)} images)")
    for note in report.notes:
        print(f"note: {note}")
    return 0


def _add_layers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("layers", help="layer names for Grad-CAM",
                       description="List the layer names of a checkpoint/export or a registered model that "
                                   "`fineact gradcam --layer` and `fineact analyze --cam-layer` accept.")
    p.add_argument("source", help="a .ckpt / .safetensors file or a registered model name")
    p.add_argument("--kind", choices=["conv", "block", "all"], default="block")
    p.set_defaults(handler=_run_layers)


def _run_layers(args: argparse.Namespace) -> int:
    from fineact.analysis.commands import layer_names

    print("\n".join(layer_names(args.source, args.kind)))
    return 0


def _add_gradcam(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gradcam", help="Grad-CAM pictures of a video",
                       description="Grad-CAM of a trained model on a video (its first test view): a PNG grid "
                                   "of frames with the map overlaid and an animated GIF per layer; for ARC "
                                   "models also the evolving input state per recursive step.")
    p.add_argument("video")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--layer", action="append", default=None, help="layer name (repeatable; default res3)")
    p.add_argument("--level", default=None, help="which level's head to explain (multi-level models)")
    p.add_argument("--target", type=_at_least(0), default=None, help="class index (default: the predicted class)")
    p.add_argument("--out", default="gradcam", help="output folder")
    p.set_defaults(handler=_run_gradcam)


def _run_gradcam(args: argparse.Namespace) -> int:
    from fineact.analysis.commands import gradcam_video
    from fineact.files import check_output_dir

    check_output_dir(args.out, "--out")

    for path in gradcam_video(args.checkpoint, args.video, args.out, args.layer, args.level, args.target):
        print(path)
    return 0


# -- export ---------------------------------------------------------------------------------------------

def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a trained model for deployment (TorchScript, ONNX, torch.export)",
                       description="Export a checkpoint/export to TorchScript (.pt), ONNX (.onnx) or a torch.export "
                                   "archive (.pt2), with a JSON beside it describing the inputs (order, frames, "
                                   "sampling, normalisation) and outputs (levels, class names). --verify compares "
                                   "the exported model with the eager one on random clips (ONNX: onnxruntime).")
    p.add_argument("checkpoint", help="a .ckpt from training or an exported .safetensors")
    p.add_argument("--format", choices=["torchscript", "onnx", "exported-program"], default="onnx")
    p.add_argument("--out", default=None, help="output file (default: beside the checkpoint)")
    p.add_argument("--size", type=_positive_int, default=None,
                   help="input size S x S (default: the config's crop size)")
    p.add_argument("--verify", action="store_true", help="report the max abs difference to the eager model")
    p.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fineact.data.test_views import TestViews
    from fineact.engine.checkpoints import load_module
    from fineact.files import check_output_file
    from fineact.interop import EXPORT_FORMATS, export_model, verify_export

    if args.out is not None:
        check_output_file(args.out, "--out")
    module = load_module(args.checkpoint)
    out = args.out or str(Path(args.checkpoint).with_suffix(EXPORT_FORMATS[args.format]))
    # The export describes the inputs the test protocol feeds the model: crop size and normalisation.
    views = TestViews.from_config(module.cfg.data, module.model.clip_specs)
    names = {level: module.levels.class_names[level] for level in module.trained_levels}
    path = export_model(module.model, out, args.format, size=args.size or views.crop_size, mean=views.mean,
                        std=views.std, class_names=names)
    print(f"exported {path} (inputs and outputs described in {path.name}.json beside it)")
    if args.verify:
        print(f"max abs difference to the eager model: {verify_export(module.model, path, args.format):.3g}")
    return 0


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_models, _add_profile, _add_train, _add_test, _add_predict, _add_extract, _add_check, _add_prepare,
    _add_pack, _add_demo, _add_analyze, _add_layers, _add_gradcam, _add_export]


def build_parser() -> argparse.ArgumentParser:
    from fineact import __version__

    parser = argparse.ArgumentParser(prog="fineact", description="Fine-grained video action recognition.")
    parser.add_argument("--version", action="version", version=f"fineact {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Overrides may also follow an option (`train CONFIG --resume trainer.max_epochs=30`): argparse ends a
    # positional list at the first option, so KEY=VALUE words after it come back here, in order.
    if extra and hasattr(args, "overrides") and all("=" in word and not word.startswith("-") for word in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return run_command(args.command, args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
