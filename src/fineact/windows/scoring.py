"""Per-window class probabilities of every level: windows -> test views -> batches -> the model.

    scores = score_windows(predictor, "routine.mp4", plan, batch_size=16, progress=True)
    scores.probabilities["element"]      # (num_windows, num_elements)

Each window goes through the model's own test pipeline (``predictor.test_views``: resize, crops,
normalisation), as a trimmed clip would in `fineact predict`, and its views' softmax scores are averaged as the
evaluation does (``module.aggregate_views``). Windows are batched; frames come from one sequential decode
(``fineact.windows.stream``).

The test transform works frame by frame (resize, centre / corner crops, normalisation: nothing mixes frames),
so each decoded frame is transformed ONCE as a one-frame clip when it enters the buffer, and a window's clip is
the concatenation of its frames along time: the same tensor as transforming the window's clip, without
redoing the work for every window that overlaps the frame (8 windows per frame at a 64-frame span, stride 8).
``test_windows.py`` checks the equality.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from fineact.data.test_views import stack_views
from fineact.windows.plan import WindowPlan
from fineact.windows.stream import window_frames

__all__ = ["WindowScores", "score_windows"]


@dataclass
class WindowScores:
    """What the model says about each window of a plan."""

    plan: WindowPlan
    probabilities: dict[str, np.ndarray]  # {level: (num_windows, num_classes)} softmax, float32

    @property
    def levels(self) -> list[str]:
        return list(self.probabilities)


@torch.no_grad()
def batch_probabilities(predictor, views: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """{pathway: (V, C, T, H, W)} views of several windows -> {level: (windows, K)} probabilities (CPU)."""
    module, device = predictor.module, predictor.device
    clips = {name: torch.stack([v[name] for v in views]).to(device) for name in views[0]}
    batch = clips["clip"] if list(clips) == ["clip"] else clips
    # uint8 views -> the model's float input on its device, the one normalisation (data/model_input.py)
    outputs = module.aggregate_views(predictor.test_views.model_input(batch))
    if module.cfg.eval.aggregate == "score_mean":  # raw scores were averaged: probabilities after
        outputs = {level: logits.softmax(-1) for level, logits in outputs.items()}
    return {level: p.float().cpu() for level, p in outputs.items()}


def score_windows(predictor, source: str | os.PathLike, plan: WindowPlan, *, batch_size: int = 16,
                  progress: bool = False, decode_threads: int = 0) -> WindowScores:
    """Every window of ``plan`` through the model, ``batch_size`` windows at a time, one decode of ``source``."""
    data = predictor.module.cfg.data
    rng = np.random.default_rng(0)  # the test views draw nothing
    bar = _progress_bar(plan, source) if progress else None
    on_frame = (lambda number: bar.update(1)) if bar is not None else None
    chunks: dict[str, list[torch.Tensor]] = {}
    pending: list[dict[str, torch.Tensor]] = []

    def flush():
        for level, probs in batch_probabilities(predictor, pending).items():
            chunks.setdefault(level, []).append(probs)
        pending.clear()

    transform = predictor.test_views.transform

    def prepare(rgb: np.ndarray) -> torch.Tensor:  # -> (C, 1, H, W), or (V, C, 1, H, W) with several crops
        return stack_views({"frame": rgb[None]}, None, 1, transform, rng)[0]["frame"]

    try:
        for _, clips in window_frames(source, plan, decode_threads=decode_threads, on_frame=on_frame,
                                      prepare=prepare, combine=lambda frames: torch.cat(frames, dim=-3),
                                      filename_template=data.filename_template, start_index=data.start_index):
            pending.append(clips)  # {pathway: (V, C, T, H, W)}
            if len(pending) == batch_size:
                flush()
        if pending:
            flush()
    finally:
        if bar is not None:
            bar.close()
    return WindowScores(plan, {level: torch.cat(parts).numpy() for level, parts in chunks.items()})


def _progress_bar(plan: WindowPlan, source):
    from tqdm import tqdm

    total = int(plan.last_frames[-1]) + 1
    return tqdm(total=total, unit="frame", desc=f"windows of {os.path.basename(os.fspath(source))}",
                mininterval=1.0, dynamic_ncols=True)
