"""ARC overhead: forward+backward time and training memory of TSM vs ARC-TSM, as ratios from one run.

    python benchmarks/arc_overhead.py                       # R18, n=4, 8 x 112 x 112, batch 2 (issue default)
    python benchmarks/arc_overhead.py --depths 18 50 --steps 2 4 8
    python benchmarks/arc_overhead.py --depths 18 50 --layouts nchw channels_last

Time: median of interleaved forward+backward passes (the models take turns, so machine drift hits all).
Memory: the peak of allocated memory during one forward+backward step: on CUDA torch.cuda.max_memory_allocated,
on CPU the maximum of PyTorch's profiler memory timeline (every tensor allocation and free, all categories:
parameters, gradients, activations, temporaries). Also reported: the bytes autograd keeps for backward (saved
tensors, each storage once), the part that the paper's appendix C.3 says grows linearly with n.
Also: the time of an inference forward (eval mode, no autograd) and its ratio.
`--layouts channels_last` measures the models as `trainer.channels_last=true` runs them (weights and clips in
channels_last(_3d)); each ratio compares models of one layout, and "vs nchw" is a [cl] model's time over the
same model's NCHW time.
Host memory is set up as `fineact train` does (glibc keeps freed memory, engine/host_memory.py);
`--host-memory release` measures with the C library's defaults instead.
"""

from __future__ import annotations

import argparse

import torch

from common import (add_host_memory_option, apply_host_memory, interleaved_median_times,
                    print_table, write_results)
from fineact.engine.performance import to_channels_last
from fineact.models import build_model
from fineact.models.arc import set_memory_bounded


def training_step(model, clip):
    def step():
        model.zero_grad(set_to_none=True)
        model(clip).sum().backward()
    return step


def inference_step(model, clip):
    def step():
        model.eval()
        with torch.inference_mode():
            model(clip)
        model.train()
    return step


def saved_tensor_bytes(model, clip) -> int:
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    model.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(clip)
    out.sum().backward()
    # parameters (saved by every layer that uses them) and their gradients: each storage once
    for p in model.parameters():
        seen[p.untyped_storage().data_ptr()] = p.untyped_storage().nbytes()
        seen[p.grad.untyped_storage().data_ptr()] = p.grad.untyped_storage().nbytes()
    return sum(seen.values())


def peak_memory(model, clip) -> int:
    if clip.is_cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        training_step(model, clip)()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()
    return cpu_peak_bytes(model, clip)


def cpu_peak_bytes(model, clip) -> int:
    """Peak of the profiler's memory timeline over one training step (tensors alive at once, in bytes)."""
    import json
    import tempfile

    from torch.profiler import ProfilerActivity, profile

    model.zero_grad(set_to_none=True)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                 with_stack=True) as prof:
        training_step(model, clip)()
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/timeline.json"
        prof.export_memory_timeline(path, device="cpu")
        _, sizes = json.load(open(path))
    return int(max(sum(row) for row in sizes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depths", type=int, nargs="+", default=[18])
    parser.add_argument("--steps", type=int, nargs="+", default=[4], help="ARC recursive steps n")
    parser.add_argument("--modes", nargs="+", default=["plain"], choices=["plain", "bounded"],
                        help="ARC training modes: plain, and/or memory-bounded (recomputed recursion)")
    parser.add_argument("--layouts", nargs="+", default=["nchw"], choices=["nchw", "channels_last"],
                        help="memory layouts to measure; ratios compare models of the same layout "
                             "([cl] rows: trainer.channels_last=true)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--name", default="arc_overhead", help="results/<name>.json")
    add_host_memory_option(parser)
    args = parser.parse_args()
    args.host_memory_reused = apply_host_memory(args.host_memory)

    torch.manual_seed(0)
    clip = torch.randn(args.batch, 3, args.frames, args.size, args.size, device=args.device)
    clips = {"nchw": clip, "channels_last": clip.contiguous(memory_format=torch.channels_last_3d)}
    rows, records = [], []
    for depth in args.depths:
        models, layouts = {}, {}
        for layout in args.layouts:  # the same models in each memory layout, all timed in one interleaved run
            tag = "" if layout == "nchw" else " [cl]"
            models[f"tsm_r{depth}{tag}"] = build_model(f"tsm_r{depth}", num_segments=args.frames)
            for n in args.steps:
                for mode in args.modes:
                    model = build_model(f"arc_tsm_r{depth}", num_segments=args.frames, arc_steps=n)
                    models[f"arc_tsm_r{depth} n={n}{' bounded' if mode == 'bounded' else ''}{tag}"] = \
                        set_memory_bounded(model, mode == "bounded")
            layouts.update({name: (layout, tag) for name in models if name not in layouts})
        for name, m in models.items():
            m.to(args.device).train()
            if layouts[name][0] == "channels_last":
                to_channels_last(m)  # as trainer.channels_last=true does
        steps = {k: training_step(m, clips[layouts[k][0]]) for k, m in models.items()}
        times = interleaved_median_times(steps, args.repeats)
        inference = interleaved_median_times(
            {k: inference_step(m, clips[layouts[k][0]]) for k, m in models.items()}, args.repeats)
        memory = {k: peak_memory(m, clips[layouts[k][0]]) for k, m in models.items()}
        kept = {k: saved_tensor_bytes(m, clips[layouts[k][0]]) for k, m in models.items()}
        for name in models:
            layout, tag = layouts[name]
            base = f"tsm_r{depth}{tag}"
            record = {"model": name, "layout": layout, "seconds": times[name], "peak_memory_bytes": memory[name],
                      "kept_for_backward_bytes": kept[name], "time_ratio": times[name] / times[base],
                      "memory_ratio": memory[name] / memory[base], "inference_seconds": inference[name],
                      "inference_time_ratio": inference[name] / inference[base]}
            nchw_twin = name.removesuffix(tag)
            if tag and nchw_twin in times:  # the speed-up the layout gives this model
                record["time_vs_nchw"] = times[name] / times[nchw_twin]
            records.append(record)
            rows.append([name, times[name] * 1000, memory[name] / 2**20, kept[name] / 2**20, record["time_ratio"],
                         record["memory_ratio"], inference[name] * 1000, record["inference_time_ratio"]]
                        + ([record.get("time_vs_nchw", "")] if len(args.layouts) > 1 else []))
    print(f"forward+backward, batch {args.batch}, {args.frames} x {args.size} x {args.size}, device {args.device}")
    print_table(["model", "ms/step", "peak MiB", "kept MiB", "time ratio", "peak ratio", "eval ms", "eval ratio"]
                + (["vs nchw"] if len(args.layouts) > 1 else []), rows)
    path = write_results(args.name, {"settings": vars(args), "results": records})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
