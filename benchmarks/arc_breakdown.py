"""Where ARC's extra time goes: ARC-TSM with parts of its recursion replaced by near-free stand-ins.

    python benchmarks/arc_breakdown.py                 # R18, n = 4, 8 x 112 x 112, batch 2
    python benchmarks/arc_breakdown.py --depth 50

A diagnostic, not a model: the stand-ins compute the wrong values (same shapes, gradient paths kept, so every
convolution still runs forward and backward). Rows, timed interleaved with TSM in one run:
    arc                         the real layer
    free state update           eq. 5's elementwise update -> Z = E (and 0 x the attention and fusion terms)
    free state update + Wa      also Wa·PoolT / Wa·PoolS -> zeros
What remains in the last row is the convolutions (the n part convs, We, Wf) and BN: the floor for this layer
design in eager PyTorch on the machine at hand.

A second table times every convolution call (forward, and backward for input and weight) of one training step
of each model, grouped by role: the ARC part convs, We (X + We·X), Wf, and the convs ARC leaves alone; with
their GFLOPs (2 x multiply-adds, backward counted per gradient computed) and the rate reached. The time is summed
per call, so these rows add up to less than the step.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (add_host_memory_option, apply_host_memory, interleaved_median_times,  # noqa: E402
                    print_table, write_results)

import fineact.models.arc as arc  # noqa: E402
from fineact.models import build_model  # noqa: E402


def free_update(embedded, att_t, att_s, fusion, fused):
    return embedded * 1.0 + (att_t.sum() + att_s.sum() + fusion.sum()) * 0


def free_attend(self, j, y, out_hw):
    zero = y.sum() * 0  # keeps Y_j in the graph, as the real attention does
    shape_t = (1, 1, self.in_channels, 1, 1) if self.dims == 2 else (1, self.in_channels, 1, 1, 1)
    return zero.expand(shape_t), zero.expand(shape_t)


class ConvTimer(TorchDispatchMode):
    """Seconds and multiply-adds of every convolution call, by the role of its weight."""

    def __init__(self, roles: dict[int, str]):
        super().__init__()
        self.roles = roles
        self.totals: dict[str, list[float]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in (torch.ops.aten.convolution.default, torch.ops.aten.convolution_backward.default):
            return func(*args, **kwargs)
        start = time.perf_counter()
        out = func(*args, **kwargs)
        seconds = time.perf_counter() - start
        if func is torch.ops.aten.convolution.default:
            weight, output, passes = args[1], out, 1
        else:
            weight, output, passes = args[2], args[0], sum(args[-1][:2])  # input and/or weight gradient
        # a weight made on the fly is X + We·X's I + We (ARCConv._embed); parameters are looked up
        role = self.roles.get(weight.data_ptr(), "We (X + We·X)")
        total = self.totals.setdefault(role, [0.0, 0.0])
        total[0] += seconds
        total[1] += output.numel() * weight[0].numel() * passes
        return out


def conv_roles(model: torch.nn.Module) -> dict[int, str]:
    """Weight data pointer -> role. In TSM, the convs at the places ARC decorates (res3-res5) are their own row,
    to compare with ARC's part convs (the same convs split by output channels)."""
    roles = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.modules.conv._ConvNd):
            role = ("ARC part convs" if ".parts." in name else "Wf (fusion)" if ".fuse." in name
                    else "convs ARC leaves alone")
            roles[module.weight.data_ptr()] = role
    for name, module in model.named_modules():  # after the loop above, which visits a block's convs later
        if hasattr(module, "arc_targets") and any(f"layer{k}." in name for k in (2, 3, 4)):
            for conv_name, _, _ in module.arc_targets:
                conv = getattr(module, conv_name)
                if isinstance(conv, torch.nn.modules.conv._ConvNd):
                    roles[conv.weight.data_ptr()] = "convs ARC decorates"
    return roles


def conv_time_by_role(model, clip, repeats: int) -> dict[str, tuple[float, float]]:
    """{role: (seconds per step, GFLOPs per step)} over `repeats` training steps (after one warm-up)."""
    timer = ConvTimer(conv_roles(model))
    for i in range(repeats + 1):
        if i == 1:
            timer.totals.clear()
        model.zero_grad(set_to_none=True)
        with timer:
            model(clip).sum().backward()
    return {role: (t / repeats, 2 * macs / repeats / 1e9) for role, (t, macs) in timer.totals.items()}


@contextmanager
def patched(state: bool, attention: bool):
    saved = arc.update_state, arc.ARCConv._attend
    if state:
        arc.update_state = free_update
    if attention:
        arc.ARCConv._attend = free_attend
    try:
        yield
    finally:
        arc.update_state, arc.ARCConv._attend = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=18)
    parser.add_argument("--steps", type=int, default=4, help="ARC recursive steps n")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--name", default="arc_breakdown", help="results/<name>.json")
    add_host_memory_option(parser)
    args = parser.parse_args()
    args.host_memory_reused = apply_host_memory(args.host_memory)

    torch.manual_seed(0)
    clip = torch.randn(args.batch, 3, args.frames, args.size, args.size)
    tsm = build_model(f"tsm_r{args.depth}", num_segments=args.frames).train()
    model = build_model(f"arc_tsm_r{args.depth}", num_segments=args.frames, arc_steps=args.steps).train()

    def step(m, state=False, attention=False):
        def run():
            with patched(state, attention):
                m.zero_grad(set_to_none=True)
                m(clip).sum().backward()
        return run

    cases = {f"tsm_r{args.depth}": step(tsm), "arc": step(model),
             "free state update": step(model, state=True),
             "free state update + Wa": step(model, state=True, attention=True)}
    times = interleaved_median_times(cases, args.repeats)
    base = times[f"tsm_r{args.depth}"]
    records = [{"case": k, "seconds": v, "time_ratio": v / base} for k, v in times.items()]
    print(f"forward+backward, arc_tsm_r{args.depth} n={args.steps}, batch {args.batch}, "
          f"{args.frames} x {args.size} x {args.size}, cpu")
    print_table(["case", "ms/step", "time vs TSM"], [[r["case"], r["seconds"] * 1000, r["time_ratio"]]
                                                     for r in records])
    conv_rows, conv_records = [], []
    for name, m in ((f"tsm_r{args.depth}", tsm), (f"arc_tsm_r{args.depth}", model)):
        for role, (seconds, gflops) in sorted(conv_time_by_role(m, clip, args.repeats).items()):
            conv_records.append({"model": name, "role": role, "seconds": seconds, "gflops": gflops,
                                 "gflops_per_second": gflops / seconds})
            conv_rows.append([name, role, seconds * 1000, gflops, gflops / seconds])
    print("convolution calls per training step, by role (forward and backward)")
    print_table(["model", "role", "ms/step", "GFLOPs", "GFLOP/s"], conv_rows)
    payload = {"settings": vars(args), "results": records, "convolutions": conv_records}
    print(f"wrote {write_results(args.name, payload)}")


if __name__ == "__main__":
    main()
