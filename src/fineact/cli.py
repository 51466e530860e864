"""The `fineact` command. Each subcommand parses its arguments here and calls the Python API.

User mistakes (FineactError) print one clear message and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

from fineact.errors import FineactError

Handler = Callable[[argparse.Namespace], int]


def _int_tuple(text: str) -> tuple[int, ...]:
    text = text.strip()
    if text in ("", "none", "()"):
        return ()
    try:
        return tuple(int(x) for x in text.replace("(", "").replace(")", "").split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 3,4,5, got {text!r}")


# -- profile ----------------------------------------------------------------------------------------------

def _add_profile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="parameter count and GMACs of registered models",
                       description="Count parameters and multiply-accumulates (GMACs, the papers' 'GFLOPs') of "
                                   "one or more registered models with PyTorch's flop counter, next to the "
                                   "figures the papers publish.")
    p.add_argument("models", nargs="+", metavar="MODEL", help="registered model names (see `fineact models`)")
    p.add_argument("--num-classes", type=int, default=None, help="classifier size (default: the model's)")
    p.add_argument("--frames", type=int, default=None, help="frames per clip T (default: the model's)")
    p.add_argument("--size", type=int, default=224, help="spatial size S of the S x S input (default 224)")
    p.add_argument("--arc-stages", type=_int_tuple, default=None, help="ARC stages, e.g. 3,4,5 or none")
    p.add_argument("--arc-steps", type=int, default=None, help="ARC recursive steps n")
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
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object {video: {level: [...]}}")
    p.set_defaults(handler=_run_predict)


def _run_predict(args: argparse.Namespace) -> int:
    from fineact.predict import Predictor, format_predictions, load_model

    predictor = load_model(args.checkpoint, args.device)
    results = {}
    for video in args.videos:
        predictions = predictor.predict(video, topk=args.topk)
        if args.json:
            results[video] = Predictor.as_json(predictions)
        else:
            print(format_predictions(video, predictions))
    if args.json:
        print(json.dumps(results, indent=2))
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
    p.add_argument("--workers", type=int, default=2)
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
    problems, totals = [], {}
    for split in ("train", "val", "test"):
        if cfg.data[split] is not None:
            samples = read_split(cfg, levels, split)
            totals[split] = len(samples)
            problems += check_samples(split, samples, needed, args.full, args.workers)
    print(format_problems(problems, totals))
    return 1 if problems else 0


# -- demo -------------------------------------------------------------------------------------------------

def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the two-stage hierarchical multi-task recipe on the embedded dataset",
                       description="Generate (once) the synthetic FineGym-like dataset, train a small base "
                                   "model per level, assemble and train the hierarchical multi-task network, "
                                   "evaluate, predict on a few clips and write a report. CPU, a few minutes.")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--data-dir", default=".fineact_cache/demo_data", help="where the dataset is cached")
    p.add_argument("--base-epochs", type=int, default=None, help="epochs per base model")
    p.add_argument("--fusion-epochs", type=int, default=None, help="epochs of the fusion stage")
    p.add_argument("--workers", type=int, default=1, help="DataLoader workers")
    p.add_argument("--quick", action="store_true", help="a tiny run (smoke test)")
    p.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from fineact.demo import finish_demo, run_demo

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
    p.add_argument("--target", type=int, default=None, help="class index (default: the predicted class)")
    p.add_argument("--out", default="gradcam", help="output folder")
    p.set_defaults(handler=_run_gradcam)


def _run_gradcam(args: argparse.Namespace) -> int:
    from fineact.analysis.commands import gradcam_video

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
    p.add_argument("--size", type=int, default=None, help="input size S x S (default: the config's crop size)")
    p.add_argument("--verify", action="store_true", help="report the max abs difference to the eager model")
    p.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fineact.data.test_views import TestViews
    from fineact.engine.checkpoints import load_module
    from fineact.interop import EXPORT_FORMATS, export_model, verify_export

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
    _add_models, _add_profile, _add_train, _add_test, _add_predict, _add_extract, _add_check, _add_demo,
    _add_analyze, _add_layers, _add_gradcam, _add_export]


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
    try:
        return args.handler(args)
    except FineactError as exc:
        print(f"fineact {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
