"""Parameter and FLOP counts of a model, counted by PyTorch itself.

FLOPs come from `torch.utils.flop_counter.FlopCounterMode`, which counts every matmul/conv that actually runs
(2 FLOPs per multiply-accumulate). The papers report multiply-accumulates ("GFLOPs" in their tables), so we
report GMACs = counted FLOPs / 2. Element-wise ops (BN, ReLU, additions) are not counted, as in the papers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fineact.models.arc import arc_layers, paper_arrangement
from fineact.models.base import ClipSpec


@dataclass
class Profile:
    model: str
    params: int
    gmacs: float          # multiply-accumulates of the forward pass as fineact runs it
    gmacs_paper: float    # the same network arranged as the paper counts it (differs only with ARC layers)
    inputs: dict[str, list[int]]
    paper: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def example_inputs(model: nn.Module, frames: int | None = None, size: int = 224, batch: int = 1):
    """Zero clips shaped as the model's clip_specs ask (frames overrides a single-pathway model's T)."""
    specs: dict[str, ClipSpec] = model.clip_specs
    shapes = {}
    for name, spec in specs.items():
        t = frames if (frames is not None and len(specs) == 1) else spec.num_frames
        shapes[name] = (batch, 3, t, size, size)
    clips = {name: torch.zeros(shape) for name, shape in shapes.items()}
    return (next(iter(clips.values())) if len(clips) == 1 else clips), shapes


def count_macs(model: nn.Module, inputs) -> int:
    """Multiply-accumulates of one forward pass on `inputs`, counted by PyTorch's flop counter."""
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(inputs)
    model.train(was_training)
    return counter.get_total_flops() // 2


def profile_model(model: nn.Module, frames: int | None = None, size: int = 224) -> Profile:
    inputs, shapes = example_inputs(model, frames, size)
    macs = count_macs(model, inputs)
    with paper_arrangement(model):
        macs_paper = count_macs(model, inputs) if arc_layers(model) else macs
    name = getattr(model, "registry_name", type(model).__name__)
    return Profile(name, count_parameters(model), macs / 1e9, macs_paper / 1e9,
                   {k: list(v) for k, v in shapes.items()})


def profile_by_name(name: str, frames: int | None = None, size: int = 224, **build_kwargs) -> Profile:
    """Build registered model `name` and profile it; the paper's figures ride along when defaults are used."""
    from fineact.models.registry import build_model, get_entry

    entry = get_entry(name)
    accepted = entry.accepted_arguments()
    if frames is not None:
        # T is a build argument for single-clip models: segments (TSM/TSN) or frames (3D models).
        for arg in ("num_segments", "num_frames"):
            if arg in accepted and arg not in build_kwargs:
                build_kwargs[arg] = frames
                break
    result = profile_model(build_model(name, **build_kwargs), size=size)
    defaults = entry.defaults()
    if size == 224 and frames is None and all(defaults.get(k) == v or (k == "arc_stages" and tuple(v) == tuple(defaults.get(k, ())))
           for k, v in build_kwargs.items()):
        result.paper = dict(entry.paper)
    return result


def format_profile_table(profiles: list[Profile]) -> str:
    header = f"{'model':<22} {'input':<24} {'params':>12} {'GMACs':>8} {'paper arr.':>10} " \
             f"{'paper params':>13} {'paper GMACs':>11}"
    rows = [header, "-" * len(header)]
    for p in profiles:
        shape = "+".join("x".join(str(d) for d in s[2:]) for s in p.inputs.values())
        paper_params = f"{p.paper['params']:,}" if "params" in p.paper else "-"
        paper_gmacs = f"{p.paper['gmacs']:.1f}" if "gmacs" in p.paper else "-"
        rows.append(f"{p.model:<22} {shape:<24} {p.params:>12,} {p.gmacs:>8.2f} {p.gmacs_paper:>10.2f} "
                    f"{paper_params:>13} {paper_gmacs:>11}")
    rows.append("GMACs: multiply-accumulates counted by torch.utils.flop_counter (papers call them GFLOPs). "
                "'paper arr.': ARC layers arranged as the paper counts them (same outputs).")
    return "\n".join(rows)
