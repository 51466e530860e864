"""Keep a map's memory layout (NCHW or channels_last) through ops that would otherwise change or ignore it.

With `trainer.channels_last=true` ARC's 5D views of (N*T, C, H, W) maps have the channel dim innermost in memory.
Two kinds of op then need help:

- Reductions. `t.sum(dim, keepdim=True)` allocates its output contiguous in the logical (.., C, H, W) order,
  and then walks a channels_last input against its memory order. Summing a (2, 8, 128, 14, 14) channels_last
  map over time took 180 us on a CPU, against 17 us for the same sum on a view permuted into memory order.
- Copies into fresh tensors (the nearest upsampling): those must be allocated in the input's layout, or every
  later op mixes two layouts.
"""

from __future__ import annotations

from typing import Sequence

import torch


def memory_order(t: torch.Tensor) -> list[int]:
    """t's dims from the outermost to the innermost in memory (by stride; ties keep the logical order)."""
    return sorted(range(t.dim()), key=lambda d: -t.stride(d))


def reduce_keepdim(t: torch.Tensor, dims: Sequence[int], op: str = "sum") -> torch.Tensor:
    """`op` ("sum", "mean" or "amax") over `dims` with keepdim=True, run on t's memory order.

    The result has t's layout (a channels_last input gives a channels_last-ordered result) and the same values
    as `getattr(t, op)(dims, keepdim=True)`."""
    order = memory_order(t)
    if order == list(range(t.dim())):
        return getattr(t, op)(tuple(dims), keepdim=True)
    dims = {d % t.dim() for d in dims}
    in_memory = t.permute(order)
    reduced = getattr(in_memory, op)(tuple(order.index(d) for d in dims), keepdim=True)
    return reduced.permute([order.index(d) for d in range(t.dim())])


def sum_to_shape(t: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """`t.sum_to_size(shape)` for a `shape` of t's rank (the dims where it is 1 are summed), in t's layout."""
    dims = [d for d, (have, want) in enumerate(zip(t.shape, shape)) if want == 1 and have != 1]
    return reduce_keepdim(t, dims) if dims else t
