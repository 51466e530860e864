"""ARC overhead: forward+backward time and training memory of TSM vs ARC-TSM, as ratios from one run.

    python benchmarks/arc_overhead.py                       # R18, n=4, 8 x 112 x 112, batch 2 (issue default)
    python benchmarks/arc_overhead.py --depths 18 50 --steps 2 4 8

Time: median of interleaved forward+backward passes (the models take turns, so machine drift hits all).
Memory: the peak of allocated memory during one forward+backward step: on CUDA torch.cuda.max_memory_allocated,
on CPU the maximum of PyTorch's profiler memory timeline (every tensor allocation and free, all categories:
parameters, gradients, activations, temporaries). Also reported: the bytes autograd keeps for backward (saved
tensors, each storage once), the part that the paper's appendix C.3 says grows linearly with n.
Also: the time of an inference forward (eval mode, no autograd) and its ratio.
Host memory is set up as `fineact train` does (glibc keeps freed memory, engine/host_memory.py);
`--host-memory release` measures with the C library's defaults instead.
"""

from __future__ import annotations

import argparse

import torch

from common import (add_host_memory_option, apply_host_memory, interleaved_median_times,
                    print_table, write_results)
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
    rows, records = [], []
    for depth in args.depths:
        models = {f"tsm_r{depth}": build_model(f"tsm_r{depth}", num_segments=args.frames)}
        for n in args.steps:
            for mode in args.modes:
                model = build_model(f"arc_tsm_r{depth}", num_segments=args.frames, arc_steps=n)
                models[f"arc_tsm_r{depth} n={n}{' bounded' if mode == 'bounded' else ''}"] = \
                    set_memory_bounded(model, mode == "bounded")
        for m in models.values():
            m.to(args.device).train()
        times = interleaved_median_times({k: training_step(m, clip) for k, m in models.items()}, args.repeats)
        inference = interleaved_median_times({k: inference_step(m, clip) for k, m in models.items()}, args.repeats)
        memory = {k: peak_memory(m, clip) for k, m in models.items()}
        kept = {k: saved_tensor_bytes(m, clip) for k, m in models.items()}
        base = f"tsm_r{depth}"
        for name in models:
            record = {"model": name, "seconds": times[name], "peak_memory_bytes": memory[name],
                      "kept_for_backward_bytes": kept[name], "time_ratio": times[name] / times[base],
                      "memory_ratio": memory[name] / memory[base], "inference_seconds": inference[name],
                      "inference_time_ratio": inference[name] / inference[base]}
            records.append(record)
            rows.append([name, times[name] * 1000, memory[name] / 2**20, kept[name] / 2**20, record["time_ratio"],
                         record["memory_ratio"], inference[name] * 1000, record["inference_time_ratio"]])
    print(f"forward+backward, batch {args.batch}, {args.frames} x {args.size} x {args.size}, device {args.device}")
    print_table(["model", "ms/step", "peak MiB", "kept MiB", "time ratio", "peak ratio", "eval ms", "eval ratio"],
                rows)
    path = write_results(args.name, {"settings": vars(args), "results": records})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
