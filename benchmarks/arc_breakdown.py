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
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path

import torch

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
    print(f"wrote {write_results(args.name, {'settings': vars(args), 'results': records})}")


if __name__ == "__main__":
    main()
