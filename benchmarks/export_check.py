"""Export the full-size models in every format and check them against the eager model.

    python benchmarks/export_check.py                          # TSM-R50, ARC-TSM-R18, SlowOnly-R50, multi-task
    python benchmarks/export_check.py --formats onnx --models arc_tsm_r18
    python benchmarks/export_check.py --mt-frames 4 8 32 --mt-size 224   # the multi-task network as the paper

Each model gets random weights with BN statistics calibrated on a random clip (logits of order 1, every branch
active, ARC's We/Wf/Wa non-zero), is exported with fineact.interop.export_model (dynamic batch, example batch
2), and verify_export compares the exported graph with the eager model on new random clips (ONNX files run in
onnxruntime). The table gives the max absolute difference of the logits, the largest |logit| for scale, the
export time and the file size. Prints a table and writes benchmarks/results/export_check.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from common import print_table, write_results
from fineact.interop import EXPORT_FORMATS, export_model, make_example_inputs, verify_export
from fineact.interop.random_weights import calibrate_random_weights
from fineact.models import build_model

FORMATS = ["torchscript", "exported-program", "onnx"]


def logit_scale(model: nn.Module, size: int) -> float:
    clips = make_example_inputs(model, size=size, batch=2, seed=7)
    with torch.no_grad():
        out = model(dict(zip(model.clip_specs, clips)) if len(clips) > 1 else clips[0])
    return max(t.abs().max().item() for t in (out.values() if isinstance(out, dict) else [out]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tsm_r50", "arc_tsm_r18", "slowonly_r50", "multitask"])
    parser.add_argument("--formats", nargs="+", default=FORMATS, choices=FORMATS)
    parser.add_argument("--size", type=int, default=224, help="spatial size of the 2D / SlowOnly clips")
    parser.add_argument("--segments", type=int, default=8, help="TSM / ARC-TSM segments")
    parser.add_argument("--mt-frames", type=int, nargs=3, default=[4, 8, 32], metavar=("EVENT", "SET", "ELEMENT"),
                        help="multi-task pathway frames (paper: 4 8 32)")
    parser.add_argument("--mt-size", type=int, default=224, help="multi-task clip size (paper: 224)")
    parser.add_argument("--name", default="export_check", help="results/<name>.json")
    args = parser.parse_args()

    torch.manual_seed(0)
    e, s, x = args.mt_frames
    specs = {
        "tsm_r50": ("tsm_r50", dict(num_classes=174, num_segments=args.segments), args.size),
        "arc_tsm_r18": ("arc_tsm_r18", dict(num_classes=174, num_segments=args.segments), args.size),
        "slowonly_r50": ("slowonly_r50", dict(num_classes=400), args.size),
        "multitask": ("hierarchical_multitask",
                      dict(pathway_clips={"event": (e, 16), "set": (s, 64 // s), "element": (x, 2)}), args.mt_size),
    }
    rows, records = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.models:
            name, kwargs, size = specs[key]
            model = calibrate_random_weights(build_model(name, **kwargs), size)
            params = sum(p.numel() for p in model.parameters())
            shapes = " + ".join(f"{spec.num_frames}x{size}x{size}" for spec in model.clip_specs.values())
            scale = logit_scale(model, size)
            for fmt in args.formats:
                start = time.perf_counter()
                try:
                    path = export_model(model, Path(tmp) / f"{key}{EXPORT_FORMATS[fmt]}", fmt, size=size)
                except Exception as exc:  # report and go on: the table says what does not export
                    records.append({"model": key, "format": fmt, "error": f"{type(exc).__name__}: {exc}"})
                    rows.append([key, f"{params / 1e6:.1f}M", shapes, fmt, "-", "-", f"FAILED: {type(exc).__name__}",
                                 "-"])
                    continue
                seconds = time.perf_counter() - start
                size_mb = sum(f.stat().st_size for f in Path(tmp).glob(f"{path.name}*")
                              if not f.name.endswith(".json")) / 2**20
                diff = verify_export(model, path)
                records.append({"model": key, "registry_name": name, "kwargs": {k: str(v) for k, v in kwargs.items()},
                                "parameters": params, "inputs": shapes, "format": fmt, "export_seconds": seconds,
                                "file_mib": size_mb, "max_abs_diff": diff, "max_abs_logit": scale})
                rows.append([key, f"{params / 1e6:.1f}M", shapes, fmt, f"{seconds:.1f}", f"{size_mb:.0f}",
                             f"{diff:.2e}", f"{scale:.2f}"])
                print(f"{key} {fmt}: max abs diff {diff:.2e} (export {seconds:.1f} s)", flush=True)
            del model
    print(f"\nexported vs eager, float32, batch 2 (dynamic batch), torch {torch.__version__}")
    print_table(["model", "params", "input (T x H x W)", "format", "export s", "MiB", "max abs diff", "max |logit|"],
                rows)
    path = write_results(args.name, {"settings": vars(args), "results": records})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
