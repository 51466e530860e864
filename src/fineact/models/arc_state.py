"""The state update of ARC's eq. 5 as one autograd step that touches memory as little as eager PyTorch allows.

    Z_i = ReLU( ReLU( E + up(A_t) + A_s ) + up(F) )        E = X + We·X,  A = sum_j Wa_j·P(Y_j),  F = sum_j Wf_j·Y_j

Every tensor here is 5D with the two spatial dims last: a 2D layer's (N*T, C, H, W) maps are viewed as
(N, T, C, H, W), a 3D layer's are (N, C, T, H, W) already. A_t (the temporal pooling's attention) has a
time dim of 1, A_s (the spatial pooling's) has 1 x 1 spatial dims: both broadcast against E. A_t and F may
also be at a lower resolution than E (a stride-2 layer's Y_j is smaller than its input X); `up` is nearest
upsampling, applied here once per step to the running sums rather than to every Y_j.

Why a hand-written autograd Function: on a CPU these maps are memory-bound, and written as separate autograd
ops the update costs about a dozen passes over memory, as many fresh allocations and autograd nodes per step.
Here the forward allocates one full-size map (Z, built in place) and a 1-byte mask, and keeps only those two;
backward is one threshold kernel, one multiply and the reductions that the small A_t, A_s and F need.
(Broadcasting a low-resolution map over a (h, 2, w, 2) view instead of upsampling it looks cheaper but is
several times slower: the innermost loop is then 2 elements long and does not vectorise.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fineact.models.base import tracing
from fineact.models.layout import memory_order, sum_to_shape


def upsample_nearest(t: torch.Tensor, full_hw, like: torch.Tensor | None = None) -> torch.Tensor:
    """Nearest upsampling of the last two dims of a 5D tensor (PyTorch's index rule); 1 x 1 maps broadcast.

    Integer factors (every stride-2 layer) are written as strided copies into the output viewed as
    (..., h, fh, w, fw, ...): `F.interpolate` on a contiguous NCHW map is 5 to 8 times slower on a CPU (its
    kernel makes several internal copies of the map). The result has the layout of `like` (default: t's own),
    the map it is going to be added to: (N, T, C, H, W) memory order for NCHW maps, (N, T, H, W, C) for
    channels_last ones; mixing the two makes every elementwise op after it several times slower. Other sizes,
    tracing for export, and a t that needs its gradient use `F.interpolate`.
    """
    full_hw = tuple(full_hw)
    low_hw = tuple(t.shape[-2:])
    if low_hw in (full_hw, (1, 1)):
        return t
    factors = integer_factors(low_hw, full_hw)
    order = memory_order(t if like is None else like)
    k = order.index(t.dim() - 2)  # where H sits in memory order; W must follow it
    if (factors is None or tracing() or (torch.is_grad_enabled() and t.requires_grad)
            or order[k + 1:k + 2] != [t.dim() - 1]):
        return F.interpolate(t.flatten(0, 1), size=full_hw, mode="nearest").view(*t.shape[:-2], *full_hw)
    src = t.permute(order).contiguous()  # a copy only when t's layout differs from like's (t is the small map)
    (fh, fw), lead, trail = factors, src.shape[:k], src.shape[k + 2:]
    out = src.new_empty(*lead, low_hw[0], fh, low_hw[1], fw, *trail)
    rest = (slice(None),) * len(trail)
    for b in range(fw):
        out[(..., slice(None), 0, slice(None), b, *rest)] = src
    for a in range(1, fh):  # whole rows: contiguous copies
        out[(..., a, slice(None), slice(None), *rest)] = out[(..., 0, slice(None), slice(None), *rest)]
    return out.view(*lead, *full_hw, *trail).permute([order.index(d) for d in range(t.dim())])


def _upsample_backward(grad: torch.Tensor, low_shape: torch.Size) -> torch.Tensor:
    """The gradient of `upsample_nearest` from `low_shape` (same leading dims as grad) to grad's size:
    each low-resolution pixel receives the sum of the gradients of its copies."""
    low_hw, full_hw = tuple(low_shape[-2:]), tuple(grad.shape[-2:])
    if low_hw == full_hw:
        return grad
    factors = integer_factors(low_hw, full_hw)
    if factors is None:
        flat = grad.flatten(0, 1)
        low = torch.ops.aten.upsample_nearest2d_backward(flat, list(full_hw),
                                                         [flat.shape[0], flat.shape[1], *low_hw])
        return low.view(low_shape)
    fh, fw = factors
    # Sums of strided slices: a reduction over a short innermost dim (view(..., w, fw).sum(-1)) is ten times slower.
    rows = _sum_slices([grad.view(*grad.shape[:-2], low_hw[0], fh, full_hw[1])[..., a, :] for a in range(fh)])
    return _sum_slices([rows[..., b::fw] for b in range(fw)])


def _sum_slices(slices: list[torch.Tensor]) -> torch.Tensor:
    """The sum of same-shape views as one new contiguous tensor (no `0 + first` pass, as `sum()` would make)."""
    if len(slices) == 1:
        return slices[0].contiguous()
    total = torch.add(slices[0], slices[1])
    for extra in slices[2:]:
        total.add_(extra)
    return total


def integer_factors(low_hw: tuple[int, int], full_hw: tuple[int, int]) -> tuple[int, int] | None:
    """(fh, fw) when nearest upsampling low_hw -> full_hw repeats every pixel fh x fw times, else None."""
    if full_hw[0] % low_hw[0] or full_hw[1] % low_hw[1]:
        return None
    return full_hw[0] // low_hw[0], full_hw[1] // low_hw[1]


def _update_in_place(embedded, att_t, att_s, fusion, keep_mask: bool):
    """Eq. 5 with one full-size allocation (Z, built in place); optionally the mask of the inner ReLU."""
    full_hw = embedded.shape[-2:]
    z = torch.add(embedded, upsample_nearest(att_t, full_hw, like=embedded))
    z.add_(att_s).clamp_(min=0)
    inner_on = z.bool() if keep_mask else None
    z.add_(upsample_nearest(fusion, full_hw, like=embedded)).relu_()
    return z, inner_on


class _StateUpdate(torch.autograd.Function):
    """Z = ReLU(ReLU(E + up(A_t) + A_s) + up(F)); keeps Z (the next part's conv keeps it anyway) and a mask.

    The mask of E + up(A_t) + A_s > 0 is a cast of the inner ReLU's output to bool and is applied by an
    in-place multiply with its uint8 view: on a CPU a comparison producing bool, `masked_fill` and `where` are
    several times slower than these.
    """

    @staticmethod
    def forward(ctx, embedded, att_t, att_s, fusion):
        z, inner_on = _update_in_place(embedded, att_t, att_s, fusion, keep_mask=True)
        ctx.save_for_backward(inner_on, z)
        ctx.shapes = att_t.shape, att_s.shape, fusion.shape
        return z

    @staticmethod
    def backward(ctx, grad):
        inner_on, z = ctx.saved_tensors
        t_shape, s_shape, f_shape = ctx.shapes
        grad_outer = torch.ops.aten.threshold_backward(grad, z, 0)  # the outer ReLU, one kernel
        grad_fusion = _upsample_backward(grad_outer, f_shape) if ctx.needs_input_grad[3] else None
        # The inner ReLU. In place (on a copy when grad_fusion is grad_outer itself): a float * uint8 product
        # into a new tensor takes a slow mixed-dtype path, ten times slower than copy + in-place multiply.
        grad_inner = grad_outer.clone() if grad_fusion is grad_outer else grad_outer
        grad_inner.mul_(inner_on.view(torch.uint8))
        grad_t = grad_s = None
        if ctx.needs_input_grad[1]:
            grad_t = _upsample_backward(sum_to_shape(grad_inner, (*t_shape[:-2], *grad.shape[-2:])), t_shape)
        if ctx.needs_input_grad[2]:
            grad_s = sum_to_shape(grad_inner, s_shape)
        return grad_inner, grad_t, grad_s, grad_fusion


def update_state(embedded: torch.Tensor, att_t: torch.Tensor, att_s: torch.Tensor, fusion: torch.Tensor,
                 fused: bool) -> torch.Tensor:
    """Eq. 5 on 5D maps; `fused` picks the lean Function (training). Without autograd (inference) Z is built
    in place; otherwise (eval with gradients, e.g. Grad-CAM; tracing for export) plain ops."""
    if fused and torch.is_grad_enabled():
        return _StateUpdate.apply(embedded, att_t, att_s, fusion)
    if not torch.is_grad_enabled() and not tracing():
        return _update_in_place(embedded, att_t, att_s, fusion, keep_mask=False)[0]
    full_hw = embedded.shape[-2:]
    inner = embedded + upsample_nearest(att_t, full_hw) + att_s
    return F.relu(F.relu(inner) + upsample_nearest(fusion, full_hw))
