"""The Adaptive Recursive Circle (ARC) layer (seed paper 002, Lin, Zhao & Wu, ICME 2022).

A conv layer (+ its BN, + its ReLU if it had one) is split into n parts that generate the output channels
part by part (eq. 2-3). Part 0 reads the layer input X; part i >= 1 reads an evolving input state Z_i that
the earlier parts' outputs Y_j have updated (eq. 4-7):

    Z_i = ReLU( ReLU( X + We·X + sum_{j<i} Wa_j·P(Y_j) ) + sum_{j<i} Wf_j·Y_j )        (eq. 5)
    P(Y) = PoolT(Y) (+) PoolS(Y)                                                          (eq. 7)

    We·X                 linear embedding of the input          (1x1 conv, Cin -> Cin)
    sum Wa_j·P(Y_j)      backward attention, additive            (1x1 conv, C_j -> Cin)
    sum Wf_j·Y_j         adaptive fusion of generated features   (1x1 conv, C_j -> Cin)

Semantics follow the authors' code (REFERENCE.md section 2): the fusion term sits between the two ReLUs
(the printed eq. 5 nests everything in both, which would make the outer ReLU a no-op); P uses mean pooling
by default (`pool="max"` gives the paper text's version); We, Wf, Wa have no bias and start at zero, so on a
post-ReLU input (X >= 0) a freshly decorated layer computes exactly what the plain conv computed.

Cost: by linearity Wa·(PoolT(Y) (+) PoolS(Y)) = Wa·PoolT(Y) (+) Wa·PoolS(Y), so Wa runs on the two small
pooled tensors; for a stride-2 layer Y_j is smaller than X and is nearest-upsampled to X's size, and since a
1x1 conv commutes with nearest upsampling, Wf and Wa also run at Y_j's resolution before upsampling. The sums
over j are running totals, so each 1x1 map runs once per part, and the upsampling happens once per step.
X + We·X is one 1x1 conv with weight I + We. The elementwise part of eq. 5 is `arc_state.update_state`.

The layer works on 2D feature maps of a segment-based model ((N*T, C, H, W), `num_segments` = T) and on 3D
ones ((N, C, T, H, W), SlowOnly/SlowFast).
"""

from __future__ import annotations

import math
from contextlib import contextmanager, nullcontext
from typing import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from fineact.errors import ModelError
from fineact.models.arc_state import integer_factors, update_state, upsample_nearest
from fineact.models.layout import reduce_keepdim

POOL_MODES = ("mean", "max")
STAGE_TO_LAYER = {2: "layer1", 3: "layer2", 4: "layer3", 5: "layer4"}  # res2..res5 of the papers


def part_channels(out_channels: int, num_steps: int) -> list[int]:
    """C_i = Cout // n for every part, the last one also takes the remainder."""
    base = out_channels // num_steps
    return [base] * (num_steps - 1) + [out_channels - base * (num_steps - 1)]


def split_into_parts(split: list[int], conv_weight: torch.Tensor,
                     bn_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A plain conv's weight and its BN's state sliced along the output channels into the parts' keys
    ("{i}.conv.weight", "{i}.bn.{name}"), part i taking the next `split[i]` channels (BN step counters are shared).
    Decorating a built layer (`ARCConv.from_conv`) and loading a plain conv from a file into an ARC layer
    (fineact.interop) both use it, so they give the same numbers."""
    state, start = {}, 0
    for i, c in enumerate(split):
        sl = slice(start, start + c)
        state[f"{i}.conv.weight"] = conv_weight[sl]
        for name, value in bn_state.items():
            state[f"{i}.bn.{name}"] = value if name == "num_batches_tracked" else value[sl]
        start += c
    return state


class ARCPart(nn.Module):
    """Part i of the decorated layer: its own conv, BN and (optionally) ReLU; Y_i = f(Z_i; w_i) (eq. 3)."""

    def __init__(self, conv: nn.Module, bn: nn.Module, relu: bool, inplace: bool = True):
        super().__init__()
        self.conv = conv
        self.bn = bn
        # In place saves a tensor. When this output leaves the layer as is (n = 1), the block's own in-place
        # ReLU modifies it next, so use Threshold(0, 0): the same function, but autograd keeps its input, not
        # the output that the block overwrites.
        if not relu:
            self.relu = nn.Identity()
        else:
            self.relu = nn.ReLU(inplace=True) if inplace else nn.Threshold(0.0, 0.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(z)))


class ARCConv(nn.Module):
    """A conv (+BN, +ReLU) decorated with the Adaptive Recursive Circle.

    Build it from an existing conv and BN with `ARCConv.from_conv` (weights are sliced, so it computes what
    they computed), or from scratch with the constructor. `state_probe` and `attention_probe` are Identity
    modules called on every step's input state Z_i and attention terms: forward hooks on them capture the
    recursion for analysis without changing the output.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 num_steps: int = 4, pool: str = "mean", relu: bool = False, dims: int = 2,
                 num_segments: int | None = None):
        super().__init__()
        if num_steps < 1:
            raise ModelError(f"ARC num_steps must be >= 1, got {num_steps}")
        if num_steps > out_channels:
            raise ModelError(f"ARC num_steps ({num_steps}) exceeds the layer's {out_channels} output channels")
        if pool not in POOL_MODES:
            raise ModelError(f"ARC pool must be one of {POOL_MODES}, got {pool!r}")
        if dims not in (2, 3):
            raise ModelError(f"ARC dims must be 2 or 3, got {dims}")
        if dims == 2 and (num_segments is None or num_segments < 1):
            raise ModelError("a 2D ARC layer needs num_segments (frames per clip) to pool over time")
        conv_cls, bn_cls = (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv3d, nn.BatchNorm3d)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_steps, self.pool, self.dims, self.num_segments = num_steps, pool, dims, num_segments
        self.split = part_channels(out_channels, num_steps)
        self.parts = nn.ModuleList(
            ARCPart(conv_cls(in_channels, c, kernel_size, stride=stride, padding=padding, bias=False),
                    bn_cls(c), relu, inplace=num_steps > 1)
            for c in self.split)
        # The last part is never fed back, so Wf/Wa exist for parts 0..n-2 only; with n = 1 there is no
        # recursion at all and the layer is the plain conv (paper Table 5(b): n = 1 has TSM's 11.27 M).
        self.embed = conv_cls(in_channels, in_channels, 1, bias=False) if num_steps > 1 else None       # We
        self.fuse = nn.ModuleList(conv_cls(c, in_channels, 1, bias=False) for c in self.split[:-1])    # Wf_j
        self.attend = nn.ModuleList(conv_cls(c, in_channels, 1, bias=False) for c in self.split[:-1])  # Wa_j
        for w in arc_parameters(self):
            nn.init.zeros_(w)
        self.state_probe = nn.Identity()
        self.attention_probe = nn.Identity()
        # True: Wf/Wa run at Y_j's (lower) resolution and their outputs are upsampled (exact, cheaper).
        # False: Y_j is upsampled first, the arrangement the paper's FLOP counts describe.
        self.low_resolution_maps = True
        # True: recompute the recursion in backward instead of keeping its states (see forward).
        self.memory_bounded = False

    # -- construction from a pretrained layer -------------------------------------------------------------
    @classmethod
    def from_conv(cls, conv: nn.Conv2d | nn.Conv3d, bn: nn.BatchNorm2d | nn.BatchNorm3d, relu: bool,
                  num_steps: int = 4, pool: str = "mean", num_segments: int | None = None) -> "ARCConv":
        """Decorate `conv` + `bn` (+ ReLU): their weights are sliced along the output channels into the parts."""
        if conv.groups != 1:
            raise ModelError("ARC needs full connections between input and output channels: grouped convs "
                             f"(groups={conv.groups}) cannot be decorated")
        if conv.bias is not None:
            raise ModelError("ARC decorates bias-free convs followed by BN; this conv has a bias")
        dims = 3 if isinstance(conv, nn.Conv3d) else 2
        layer = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    num_steps=num_steps, pool=pool, relu=relu, dims=dims, num_segments=num_segments)
        layer.to(device=conv.weight.device, dtype=conv.weight.dtype)
        layer.parts.load_state_dict(split_into_parts(layer.split, conv.weight.detach(), bn.state_dict()))
        for part in layer.parts:
            part.bn.eps, part.bn.momentum = bn.eps, bn.momentum
        layer.train(conv.training)
        return layer

    # -- layouts: the state update works on 5D maps with the spatial dims last --------------------------
    def _as_5d(self, t: torch.Tensor) -> torch.Tensor:
        """View a 2D map (N*T, C, H, W) as (N, T, C, H, W); 3D maps are already (N, C, T, H, W)."""
        return t.view(-1, self.num_segments, *t.shape[1:]) if self.dims == 2 else t

    def _from_5d(self, t: torch.Tensor) -> torch.Tensor:
        return t.flatten(0, 1) if self.dims == 2 else t

    def _upsample(self, t: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
        """Nearest upsampling of a map in its own layout (the paper arrangement upsamples Y_j first)."""
        if tuple(t.shape[-2:]) == out_hw:
            return t
        size = out_hw if self.dims == 2 else (t.shape[2], *out_hw)
        return F.interpolate(t, size=size, mode="nearest")

    # -- the recursion, eq. 2-7 ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dims == 2 and x.shape[0] % self.num_segments:
            raise ModelError(f"ARC layer: batch of {x.shape[0]} frames is not a multiple of "
                             f"num_segments={self.num_segments}")
        if self.memory_bounded and self.training and torch.is_grad_enabled():
            # Keep only X for backward and recompute the recursion there: memory no longer grows with n.
            return checkpoint(self._recursion, x, use_reentrant=False,
                              context_fn=lambda: (nullcontext(), _recomputing(self)))
        return self._recursion(x)

    def _recursion(self, x: torch.Tensor) -> torch.Tensor:
        out_hw = (x.shape[-2], x.shape[-1])
        y = self.parts[0](self.state_probe(x))  # Z_1 = X (eq. 4)
        if self.num_steps == 1:
            return y
        outputs = [y]
        embedded = self._as_5d(self._embed(x))  # X + We·X
        att_t = att_s = fusion = None
        for i in range(1, self.num_steps):
            j = i - 1  # running sums: add the newest part's terms once
            src = y if self.low_resolution_maps else self._upsample(y, out_hw)
            a_t, a_s = self._attend(j, src, out_hw)
            f = self._as_5d(self.fuse[j](src))
            att_t = a_t if att_t is None else att_t + a_t
            att_s = a_s if att_s is None else att_s + a_s
            fusion = f if fusion is None else fusion + f
            if self.attention_probe._forward_hooks:  # materialise the full map only for an observer
                self.attention_probe(self._from_5d(upsample_nearest(att_t, out_hw) + att_s))
            # Eq. 5: Z_i = ReLU( ReLU(X + We·X + sum Wa_j·P(Y_j)) + sum Wf_j·Y_j )
            z = update_state(embedded, att_t, att_s, fusion, fused=self.training)
            y = self.parts[i](self.state_probe(self._from_5d(z)))
            outputs.append(y)
        return torch.cat(outputs, dim=1)  # Y = Concat(Y_1, ..., Y_n) (eq. 2)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        """X + We·X as a single 1x1 conv with weight I + We: one pass over X instead of a conv and an add."""
        weight = self.embed.weight
        return self.embed._conv_forward(x, weight + _identity_like(weight), None)

    def _attend(self, j: int, y: torch.Tensor, out_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Wa_j·PoolT(Y_j) and Wa_j·PoolS(Y_j) (eq. 7) as 5D maps: time dim 1, and spatial dims 1 x 1.

        By linearity Wa runs on the two small pooled tensors, never on the full-size P(Y_j)."""
        weight = self.attend[j].weight.flatten(1)  # (Cin, c): a 1x1 conv is a linear map over channels
        if self.dims == 2:  # y: (N*T, c, h, w)
            pooled_t = self._pool(self._as_5d(y), dims=(1,), keepdim=True)          # (N, 1, c, h, w)
            a_t = _channel_linear(pooled_t, weight, channel_dim=2)                    # (N, 1, Cin, h, w)
            a_s = F.linear(self._pool_space(y, out_hw), weight)                     # (N*T, Cin)
            return a_t, a_s.view(-1, self.num_segments, a_s.shape[1], 1, 1)
        pooled_t = self._pool(y, dims=(2,), keepdim=True)                            # (N, c, 1, h, w)
        a_t = _channel_linear(pooled_t, weight, channel_dim=1)                        # (N, Cin, 1, h, w)
        a_s = F.linear(self._pool_space(y, out_hw).transpose(1, 2), weight)         # (N, T, Cin)
        return a_t, a_s.transpose(1, 2)[..., None, None]

    def _pool(self, y: torch.Tensor, dims: tuple[int, ...], keepdim: bool = False) -> torch.Tensor:
        pooled = reduce_keepdim(y, dims, "mean" if self.pool == "mean" else "amax")  # keeps channels_last
        return pooled if keepdim else pooled.squeeze(dims)

    def _pool_space(self, y: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
        """PoolS over the spatial grid of Y upsampled (nearest) to `out_hw`, without upsampling it."""
        if self.pool == "max" or integer_factors(tuple(y.shape[-2:]), out_hw) is not None:
            # max ignores duplicates; an integer factor repeats every pixel equally often, so the mean is too
            return self._pool(y, dims=(-2, -1))
        # Mean over a nearest-upsampled map = mean weighted by how often each source pixel is repeated.
        rows = _nearest_repeat_counts(y.shape[-2], out_hw[0], y.device, y.dtype)
        cols = _nearest_repeat_counts(y.shape[-1], out_hw[1], y.device, y.dtype)
        return torch.einsum("...hw,h,w->...", y, rows, cols) / (out_hw[0] * out_hw[1])

    def extra_repr(self) -> str:
        return f"num_steps={self.num_steps}, pool={self.pool!r}, split={self.split}, dims={self.dims}"


@contextmanager
def _recomputing(layer: nn.Module):
    """During the recomputation of a memory-bounded layer, BN must not count the batch a second time."""
    norms = [m for m in layer.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone(), m.running_mean.clone(), m.running_var.clone())
             for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, (momentum, count, mean, var) in zip(norms, saved):
                m.momentum = momentum
                m.num_batches_tracked.copy_(count)
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)


def _channel_linear(t: torch.Tensor, weight: torch.Tensor, channel_dim: int) -> torch.Tensor:
    """A 1x1 conv on a small map as one matrix product (cheaper than a conv call at these sizes)."""
    return F.linear(t.movedim(channel_dim, -1), weight).movedim(-1, channel_dim)


_IDENTITY_CACHE: dict[tuple, torch.Tensor] = {}


def _identity_like(weight: torch.Tensor) -> torch.Tensor:
    """The identity as a (C, C, 1, 1[, 1]) conv weight.

    Cached for real tensors: a fresh torch.eye per layer and step showed in CPU profiles (each new allocation
    of that size faults its pages in). Not cached while tracing (fake tensors, torch.compile), where it is a
    constant of the graph anyway. Not a buffer, so code that walks a model's buffers never sees it."""
    make = lambda: torch.eye(weight.shape[0], dtype=weight.dtype, device=weight.device).view_as(weight)  # noqa: E731
    if type(weight.detach()) is not torch.Tensor or torch.compiler.is_compiling():
        return make()
    key = (tuple(weight.shape), weight.dtype, weight.device)
    if key not in _IDENTITY_CACHE:
        _IDENTITY_CACHE[key] = make()
    return _IDENTITY_CACHE[key]


_COUNT_CACHE: dict[tuple, torch.Tensor] = {}


def _nearest_repeat_counts(src: int, dst: int, device, dtype) -> torch.Tensor:
    """How many times each of `src` positions appears after nearest upsampling to `dst` (as a tensor; cached in
    eager mode, not while compiling: see _identity_like)."""
    make = lambda: torch.tensor(_repeat_counts(src, dst), device=device, dtype=dtype)  # noqa: E731
    if torch.compiler.is_compiling():
        return make()
    key = (src, dst, str(device), dtype)
    if key not in _COUNT_CACHE:
        _COUNT_CACHE[key] = make()
    return _COUNT_CACHE[key]


@torch.compiler.assume_constant_result  # a function of the sizes alone: torch.compile and export see a constant
def _repeat_counts(src: int, dst: int) -> list[int]:
    """PyTorch's nearest rule: output i reads input floor(i * (src / dst)), computed in float32 (float64 gives
    other counts, e.g. for 2 -> 82)."""
    scale = np.float32(src) / np.float32(dst)
    counts = [0] * src
    for i in range(dst):
        counts[min(math.floor(np.float32(i) * scale), src - 1)] += 1
    return counts


# -- decorating a whole network ---------------------------------------------------------------------------

def _stage_modules(model: nn.Module, stages: Iterable[int]) -> Iterator[tuple[str, nn.Module]]:
    """The residual stages res2..res5 of a ResNet-like model (or its `.backbone` / `.pathway`)."""
    for candidate in (model, getattr(model, "backbone", None)):
        if candidate is not None and all(hasattr(candidate, STAGE_TO_LAYER[s]) for s in STAGE_TO_LAYER):
            for s in stages:
                yield STAGE_TO_LAYER[s], getattr(candidate, STAGE_TO_LAYER[s])
            return
    raise ModelError(f"apply_arc: {type(model).__name__} has no ResNet stages layer1..layer4")


def apply_arc(model: nn.Module, stages: Iterable[int] = (3, 4, 5), num_steps: int = 4, pool: str = "mean",
              num_segments: int | None = None) -> nn.Module:
    """Decorate the 3x3 convs of ResNet stages res`stages` with ARC, in place; returns `model`.

    ResNet-18/34: both 3x3 convs of every BasicBlock; ResNet-50/101 and the 3D pathways: the 3x3 conv2 of
    every Bottleneck (each block class lists its targets in `arc_targets`). Weights and BN statistics are
    sliced into the parts and We/Wf/Wa start at zero, so the decorated model computes what it computed.
    `num_segments` (frames per clip, for 2D models) defaults to `model.num_segments`.
    """
    stages = tuple(stages)
    bad = [s for s in stages if s not in STAGE_TO_LAYER]
    if bad:
        raise ModelError(f"ARC stages must be among {sorted(STAGE_TO_LAYER)} (res2..res5), got {bad}")
    if num_segments is None:
        num_segments = getattr(model, "num_segments", None)
    for _, stage in _stage_modules(model, stages):
        for block in stage:
            for conv_name, bn_name, relu in block.arc_targets:
                conv, bn = getattr(block, conv_name), getattr(block, bn_name)
                if isinstance(conv, ARCConv):
                    raise ModelError(f"apply_arc: {conv_name} of a block is already ARC-decorated")
                setattr(block, conv_name, ARCConv.from_conv(conv, bn, relu, num_steps, pool,
                                                            num_segments if conv.weight.dim() == 4 else None))
                setattr(block, bn_name, nn.Identity())  # the parts carry their own BNs
    return model


@contextmanager
def paper_arrangement(model: nn.Module):
    """Temporarily run every ARC layer in the paper's arrangement (upsample Y_j before Wf/Wa).

    Outputs are identical; only the work differs. The profiler uses it to count FLOPs as the paper does.
    """
    layers = [m for _, m in arc_layers(model)]
    saved = [m.low_resolution_maps for m in layers]
    for m in layers:
        m.low_resolution_maps = False
    try:
        yield model
    finally:
        for m, flag in zip(layers, saved):
            m.low_resolution_maps = flag


def set_memory_bounded(model: nn.Module, enabled: bool = True) -> nn.Module:
    """Switch every ARC layer of `model` to (or from) the memory-bounded mode; same outputs and gradients."""
    for _, layer in arc_layers(model):
        layer.memory_bounded = enabled
    return model


def arc_layers(model: nn.Module) -> list[tuple[str, ARCConv]]:
    """Every ARC layer of `model` with its qualified name."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, ARCConv)]


def arc_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The We, Wf and Wa weights (the authors train them without weight decay)."""
    layers = [model] if isinstance(model, ARCConv) else [m for _, m in arc_layers(model)]
    params = []
    for layer in layers:
        if layer.embed is not None:
            params.append(layer.embed.weight)
        params += [m.weight for m in layer.fuse] + [m.weight for m in layer.attend]
    return params
