"""Training-step throughput (clips/s) of TSM-R50, ARC-TSM-R50 and SlowOnly-R50 under the GPU speed options.

    python benchmarks/train_step.py                        # CUDA: 8 x 224 x 224, batch 8, all variants
    python benchmarks/train_step.py --device cpu --size 64 --batch 1 --variants fp32 --repeats 3   # smoke run
    python benchmarks/train_step.py --device cpu --size 112 --batch 2 --variants fp32 fp32+cl      # CPU layouts

A step is what training does: forward, cross-entropy, backward, SGD step. Variants switch on, cumulatively,
the options `fineact train` takes from the config (trainer.precision, trainer.channels_last, trainer.compile):
    fp32        float32
    fp32+cl     float32 + channels_last (not cumulative: the CPU's fastest variant)
    fp32+c      float32 + torch.compile (not cumulative: what compiling alone does)
    bf16        torch.autocast(bfloat16)                              (trainer.precision=bf16-mixed)
    bf16+cl     + channels_last / channels_last_3d weights and clips  (trainer.channels_last=true)
    bf16+cl+c   + torch.compile of the model                          (trainer.compile=true)
Models take turns within a variant (interleaved medians), so the ARC/TSM time ratio comes from one run.
On CUDA each step ends with a synchronize; peak memory is torch.cuda.max_memory_allocated over one step.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (add_host_memory_option, apply_host_memory, interleaved_median_times,  # noqa: E402
                    print_table, write_results)

from fineact.engine.performance import compile_model, to_channels_last  # noqa: E402
from fineact.models import build_model  # noqa: E402

VARIANTS = {  # name: (bf16 autocast, channels_last, compile)
    "fp32": (False, False, False),
    "fp32+cl": (False, True, False),
    "fp32+c": (False, False, True),
    "bf16": (True, False, False),
    "bf16+cl": (True, True, False),
    "bf16+cl+c": (True, True, True),
}
NUM_CLASSES = 174


def build(name: str, frames: int) -> torch.nn.Module:
    if name.startswith("slowonly"):
        return build_model(name, num_classes=NUM_CLASSES, num_frames=frames)
    return build_model(name, num_classes=NUM_CLASSES, num_segments=frames)


def make_step(model: torch.nn.Module, clip: torch.Tensor, labels: torch.Tensor, bf16: bool):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    device = clip.device

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with autocast:
            loss = F.cross_entropy(model(clip), labels)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    return step


def peak_bytes(step, device: torch.device) -> int | None:
    if device.type != "cuda":
        return None
    torch.cuda.reset_peak_memory_stats()
    step()
    return torch.cuda.max_memory_allocated()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tsm_r50", "arc_tsm_r50", "slowonly_r50"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--name", default="train_step", help="results/<name>.json")
    add_host_memory_option(parser)
    args = parser.parse_args()
    args.host_memory_reused = apply_host_memory(args.host_memory)

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    base_clip = torch.randn(args.batch, 3, args.frames, args.size, args.size, device=device)
    labels = torch.randint(0, NUM_CLASSES, (args.batch,), device=device)
    rows, records = [], []
    for variant in args.variants:
        bf16, channels_last, compiled = VARIANTS[variant]
        steps, peaks = {}, {}
        for name in args.models:
            model = build(name, args.frames).to(device).train()
            clip = base_clip
            if channels_last:  # as trainer.channels_last does
                to_channels_last(model)
                clip = base_clip.contiguous(memory_format=torch.channels_last_3d)
            if compiled:  # as trainer.compile does
                compile_model(model)
            steps[name] = make_step(model, clip, labels, bf16)
            peaks[name] = peak_bytes(steps[name], device)  # also the first (compiling) call
        times = interleaved_median_times(steps, args.repeats)
        baseline = "tsm_r50" if "tsm_r50" in times else args.models[0]
        for name in args.models:
            record = {"variant": variant, "model": name, "seconds_per_step": times[name],
                      "clips_per_second": args.batch / times[name], "peak_memory_bytes": peaks[name],
                      "baseline": baseline, "time_ratio": times[name] / times[baseline]}
            records.append(record)
            peak = "-" if peaks[name] is None else f"{peaks[name] / 2**30:.2f}"
            rows.append([variant, name, times[name] * 1000, record["clips_per_second"], peak, record["time_ratio"]])
    print(f"training step, batch {args.batch}, {args.frames} x {args.size} x {args.size}, device {device}")
    print_table(["variant", "model", "ms/step", "clips/s", "peak GiB", f"time / {baseline}"], rows)
    path = write_results(args.name, {"settings": vars(args), "results": records})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
