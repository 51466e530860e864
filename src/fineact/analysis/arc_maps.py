"""What an ARC layer does during its recursion (ARC paper section 4.4, Fig. 3, and appendix A.3, Fig. 6).

Every `ARCConv` calls two Identity probes during its forward pass: `state_probe` on the input state Z_i that
part i reads (Z_1 = the layer input X, eq. 4; Z_i for i >= 2 from eq. 5), and `attention_probe` on the
backward-attention term sum_{j<i} Wa_j·P(Y_j) broadcast to X's shape (steps i >= 2). `record_arc` hangs
forward hooks on those probes; hooks that return nothing change nothing, so the model's outputs are exactly
those of a plain forward pass.

For each recorded layer an `ARCCapture` keeps, per recursive step:
- the evolving state Z_i (optional, `keep_states`) and its channel average, a (N, T, h, w) map per clip: the
  paper's Fig. 6 ("input states ... averaged across channels"), where the first step is the original input;
- for steps 2..n, the attention activation vector: the attention map averaged over all spatio-temporal
  positions of a clip, one value per INPUT channel (N, C_in): the paper's Fig. 3 ("attention activation ...
  shared among all spatio-temporal positions"). With the default zero initialisation of Wa these are all 0.

Layer layouts: 2D layers (TSM/TSN backbones) hold frames as a batch (N*T, C, h, w) and are viewed per clip with
the layer's `num_segments`; 3D layers (SlowOnly, SlowFast, multi-task pathways) are (N, C, T, h, w).

The paper's choices: Fig. 6 shows "the second 3x3 convolutional layer of the second residual block of Res3"
(`backbone.layer2.1.conv2` in a ResNet-18, see `paper_state_layer`); Fig. 3 the first conv of the first block
of stages 2, 3, 4 (`attention_layers`).
"""

from __future__ import annotations

import difflib
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from fineact.analysis.plotting import as_uint8_frames, new_figure, pick_columns, resize_maps, save_figure
from fineact.errors import ModelError
from fineact.models.arc import ARCConv, arc_layers

PathLike = str | os.PathLike


@dataclass
class ARCCapture:
    """The recursion of one ARC layer over one forward pass (see the module documentation).

    states:            Z_1..Z_n as the layer saw them (only with keep_states=True; else empty). Z_1 is X.
    state_maps:        per step, the channel average of Z_i per clip and frame: (N, T, h, w).
    attention_vectors: per step 2..n, the attention averaged over all positions of a clip: (N, C_in).
    attention_maps:    per step 2..n, the full broadcast attention (only with keep_attention_maps=True).
    """

    layer: str
    num_steps: int
    dims: int
    num_segments: int | None
    in_channels: int
    states: list[torch.Tensor] = field(default_factory=list, repr=False)
    state_maps: list[torch.Tensor] = field(default_factory=list, repr=False)
    attention_vectors: list[torch.Tensor] = field(default_factory=list, repr=False)
    attention_maps: list[torch.Tensor] = field(default_factory=list, repr=False)

    @property
    def steps_recorded(self) -> int:
        return len(self.state_maps)

    def attention_matrix(self, sample: int = 0) -> np.ndarray:
        """(n - 1, C_in): one row per step 2..n for clip `sample` (Fig. 3's vectors, stacked)."""
        if not self.attention_vectors:
            return np.zeros((0, self.in_channels))
        return np.stack([v[sample].numpy() for v in self.attention_vectors])

    def state_map_stack(self, sample: int = 0) -> np.ndarray:
        """(n, T, h, w): the channel-averaged state of every step for clip `sample` (Fig. 6's rows)."""
        return np.stack([m[sample].numpy() for m in self.state_maps])


def _per_clip(x: torch.Tensor, layer: ARCConv) -> torch.Tensor:
    """A 2D layer's (N*T, C, h, w) as (N, C, T, h, w); 3D maps are already so."""
    if layer.dims == 3:
        return x
    t = layer.num_segments
    return x.reshape(-1, t, *x.shape[1:]).transpose(1, 2)


def _select_layers(model: nn.Module, layers: str | Sequence[str] | None) -> list[tuple[str, ARCConv]]:
    found = arc_layers(model)
    if not found:
        raise ModelError(f"{type(model).__name__} has no ARC layers: build an ARC model (e.g. 'arc_tsm_r18') or "
                         f"pass arc_stages=(3, 4, 5) to the builder")
    if layers is None:
        return found
    if isinstance(layers, str):
        layers = [layers]
    names = [n for n, _ in found]
    chosen: list[tuple[str, ARCConv]] = []
    modules = dict(model.named_modules())
    for want in layers:
        if want in modules and isinstance(modules[want], ARCConv):
            picked = [(want, modules[want])]
        else:  # a containing module (a stage, a block, a pathway) selects the ARC layers inside it
            prefix = want + "."
            picked = [(n, m) for n, m in found if n.startswith(prefix)] if want in modules else []
        if not picked:
            close = difflib.get_close_matches(want, names, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ModelError(f"no ARC layer {want!r} in {type(model).__name__}.{hint} ARC layers: "
                             f"{', '.join(names[:6])}{', ...' if len(names) > 6 else ''} ({len(names)} in all; "
                             f"fineact.models.arc.arc_layers(model) lists them)")
        chosen += [p for p in picked if p[0] not in {c[0] for c in chosen}]
    return chosen


@contextmanager
def record_arc(model: nn.Module, layers: str | Sequence[str] | None = None, keep_states: bool = True,
               keep_attention_maps: bool = False) -> Iterator[dict[str, ARCCapture]]:
    """Record the recursion of ARC layers during the forward passes run inside the `with` block.

        with record_arc(model, "backbone.layer2.1.conv2") as captures:
            logits = model(clip)        # exactly the logits without recording
        captures["backbone.layer2.1.conv2"].state_maps

    layers: ARC layer names, or names of modules containing them (a stage, a pathway); None = every ARC layer.
    Record one forward pass per `with` block: a second pass appends its steps after the first pass's.
    """
    chosen = _select_layers(model, layers)
    captures: dict[str, ARCCapture] = {}
    handles = []
    for name, layer in chosen:
        cap = ARCCapture(name, layer.num_steps, layer.dims, layer.num_segments, layer.in_channels)
        captures[name] = cap

        def on_state(_m, _inputs, output, cap=cap, layer=layer):
            z = output.detach()
            if keep_states:
                cap.states.append(z.clone().cpu())
            cap.state_maps.append(_per_clip(z, layer).float().mean(1).cpu())      # (N, T, h, w)

        def on_attention(_m, _inputs, output, cap=cap, layer=layer):
            a = _per_clip(output.detach(), layer).float()                         # (N, C, T, h, w)
            cap.attention_vectors.append(a.mean(dim=(2, 3, 4)).cpu())             # (N, C)
            if keep_attention_maps:
                cap.attention_maps.append(output.detach().clone().cpu())

        handles.append(layer.state_probe.register_forward_hook(on_state))
        handles.append(layer.attention_probe.register_forward_hook(on_attention))
    try:
        yield captures
    finally:
        for h in handles:
            h.remove()


def capture_arc(model: nn.Module, clips, layers: str | Sequence[str] | None = None, keep_states: bool = True,
                keep_attention_maps: bool = False) -> dict[str, ARCCapture]:
    """One forward pass of `model` on `clips` (no gradients, the model's current train/eval mode) with the
    recursion of the chosen ARC layers recorded: {layer name: ARCCapture}. See `record_arc`.

    Call `model.eval()` first for the usual analysis setting (BN running statistics, no dropout).
    """
    with record_arc(model, layers, keep_states, keep_attention_maps) as captures, torch.no_grad():
        model(clips)
    return captures


def paper_state_layer(model: nn.Module) -> str:
    """The layer of the paper's Fig. 6: the second 3x3 conv of the second block of res3 (`...layer2.1.conv2`)
    where it is ARC-decorated; otherwise the last ARC layer of the first decorated stage."""
    names = [n for n, _ in arc_layers(model)]
    if not names:
        raise ModelError(f"{type(model).__name__} has no ARC layers")
    for n in names:
        if n.endswith("layer2.1.conv2"):
            return n
    first_stage = names[0].rsplit(".", 2)[0]
    return [n for n in names if n.startswith(first_stage + ".")][-1]


def attention_layers(model: nn.Module) -> list[str]:
    """The layers of the paper's Fig. 3: the first ARC conv of the first block of every decorated stage
    (of the first pathway that has ARC layers)."""
    names = [n for n, _ in arc_layers(model)]
    if not names:
        raise ModelError(f"{type(model).__name__} has no ARC layers")
    pathway = names[0].split("layer")[0]
    chosen, stages = [], set()
    for n in names:
        if not n.startswith(pathway):
            continue
        stage = n[len(pathway):].split(".")[0]
        if stage not in stages:
            stages.add(stage)
            chosen.append(n)
    return chosen


# -- plots ------------------------------------------------------------------------------------------------

def plot_attention_vectors(captures: ARCCapture | Mapping[str, ARCCapture], path: PathLike, sample: int = 0,
                           title: str | None = None) -> Path:
    """Fig. 3: the attention activation vector of each recursive step 2..n, channels on x.

    One column per layer: on top one line per step, below the same values as a heat row per step (a diverging
    colour map centred on 0, one symmetric scale per layer, written in the colour bar). A layer whose attention
    is all zero (the zero initialisation, an untrained model) says so.
    """
    if isinstance(captures, ARCCapture):
        captures = {captures.layer: captures}
    if not captures:
        raise ValueError("plot_attention_vectors: no captures given")
    cols = len(captures)
    fig = new_figure(max(5.0, 4.6 * cols), 5.2)
    grid = fig.add_gridspec(2, cols, height_ratios=[2.2, 1.3])
    for c, (name, cap) in enumerate(captures.items()):
        mat = cap.attention_matrix(sample)
        ax_line = fig.add_subplot(grid[0, c])
        ax_heat = fig.add_subplot(grid[1, c])
        channels = np.arange(mat.shape[1]) if mat.size else np.arange(cap.in_channels)
        if mat.shape[0] == 0:
            ax_line.text(0.5, 0.5, "n = 1: no recursion, no attention", ha="center", va="center",
                         transform=ax_line.transAxes)
        for s, row in enumerate(mat):
            ax_line.plot(channels, row, lw=1.0, label=f"step {s + 2}")
        ax_line.axhline(0, color="#888888", lw=0.6)
        ax_line.set_xlim(-0.5, len(channels) - 0.5)
        zero = mat.size == 0 or not np.any(mat)
        ax_line.set_title(f"{name}" + ("\n(all zero: Wa at its zero initialisation?)" if zero and mat.size else ""),
                          fontsize=9)
        ax_line.set_ylabel("mean attention")
        if mat.shape[0] and c == 0:
            fig.legend(*ax_line.get_legend_handles_labels(), loc="outside lower center", ncol=mat.shape[0],
                       fontsize=8, frameon=False)
        ax_line.tick_params(labelbottom=False, labelsize=7)
        bound = float(np.abs(mat).max()) if mat.size else 0.0
        bound = bound if bound > 0 else 1.0
        image = ax_heat.imshow(mat if mat.size else np.zeros((1, len(channels))), aspect="auto", cmap="RdBu_r",
                               vmin=-bound, vmax=bound, interpolation="nearest", origin="upper",
                               extent=(-0.5, len(channels) - 0.5, mat.shape[0] + 1.5, 1.5))
        ax_heat.set_yticks(range(2, mat.shape[0] + 2), [f"step {s}" for s in range(2, mat.shape[0] + 2)],
                           fontsize=7)
        ax_heat.set_xlabel(f"input channel (C = {len(channels)})", fontsize=8)
        ax_heat.tick_params(labelsize=7)
        bar = fig.colorbar(image, ax=ax_heat, fraction=0.05, pad=0.02)
        bar.ax.tick_params(labelsize=6)
        bar.set_label("attention (scale symmetric about 0)", fontsize=7)
    fig.suptitle(title or "Backward-attention activation per recursive step\n(attention averaged over all "
                 "spatio-temporal positions of the clip)", fontsize=10)
    return save_figure(fig, path)


def plot_state_maps(frames, capture: ARCCapture, path: PathLike, sample: int = 0, max_columns: int = 8,
                    cmap: str = "viridis", title: str | None = None) -> Path:
    """Fig. 6: rows = the RGB frames, then the channel-averaged input state of recursive steps 1..n (step 1 =
    the layer input X), upsampled to the frame size; columns = frames.

    frames: (T, H, W, 3) of the clip `sample` (uint8, or float in [0, 1]). The layer's T must equal the frames'
    T (both are the clip's frames for TSM and SlowOnly). Each row has its own colour scale, shared by all its
    frames (written at the row's colour bar), so the rows show where a step is excited, not how strongly
    compared with another step.
    """
    frames = as_uint8_frames(frames)
    maps = capture.state_map_stack(sample)                      # (n, T, h, w)
    t, height, width = frames.shape[:3]
    if maps.shape[1] != t:
        raise ValueError(f"plot_state_maps: the layer has {maps.shape[1]} frames per clip but {t} frames were "
                         f"given; pass the frames the clip was made of")
    columns = pick_columns(t, max_columns)
    n = maps.shape[0]
    tile = 1.5 if max(height, width) >= 64 else 1.2
    aspect = height / width
    fig = new_figure(0.9 + len(columns) * (tile + 0.05) + 0.8, 1.0 + (n + 1) * (tile * aspect + 0.16))
    grid = fig.add_gridspec(n + 1, len(columns) + 1, width_ratios=[1] * len(columns) + [0.08], wspace=0.04,
                            hspace=0.06)
    for c, i in enumerate(columns):
        ax = fig.add_subplot(grid[0, c])
        ax.imshow(frames[i], origin="upper", interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"frame {i}", fontsize=8)
        if c == 0:
            ax.set_ylabel("RGB", fontsize=9)
    for s in range(n):
        up = resize_maps(maps[s][columns], (height, width))
        lo, hi = float(up.min()), float(up.max())
        if hi <= lo:
            hi = lo + 1e-6
        image = None
        for c in range(len(columns)):
            ax = fig.add_subplot(grid[s + 1, c])
            image = ax.imshow(up[c], cmap=cmap, vmin=lo, vmax=hi, origin="upper", interpolation="bilinear")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"step {s + 1}" + (" (= X)" if s == 0 else ""), fontsize=9)
        cax = fig.add_subplot(grid[s + 1, len(columns)])
        bar = fig.colorbar(image, cax=cax)
        bar.ax.tick_params(labelsize=6)
    fig.suptitle((title or f"Evolving input state of {capture.layer}") +
                 "\nchannel average per step; one colour scale per row", fontsize=9)
    return save_figure(fig, path)


__all__ = ["ARCCapture", "attention_layers", "capture_arc", "paper_state_layer", "plot_attention_vectors",
           "plot_state_maps", "record_arc"]
