"""Running a trained model on video files: `fineact.load_model(checkpoint)` and the Predictor.

    predictor = fineact.load_model("runs/demo/multitask/model.safetensors")
    for level, top in predictor.predict("clip.mp4", topk=5).items():
        print(level, [(p.name, round(p.probability, 3)) for p in top])

The predictor samples frames as the model was evaluated (its config's test clips and crops), decodes only those
frames, averages the softmax over the views, and names the classes of every level the model predicts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from fineact.data.datasets import sampler_for
from fineact.data.transforms import build_test_transform
from fineact.data.video import probe_video, read_frames_multi


@dataclass
class Prediction:
    index: int
    name: str
    probability: float


class Predictor:
    """A trained model plus the test-time pipeline it was evaluated with."""

    def __init__(self, module, device: str | torch.device = "cpu"):
        self.module = module.eval().to(device)
        self.device = torch.device(device)
        data = module.cfg.data
        self.frame_sampler = sampler_for(module.model.clip_specs, num_clips=data.test_clips,
                                         twice=data.twice_sample, short_video=data.short_video)
        resize = data.resize[0] if len(data.resize) == 1 else tuple(data.resize)
        self.transform = build_test_transform(data.crop_size, resize, data.test_crops)
        self.levels = module.trained_levels
        self.class_names = {level: module.levels.class_names[level] for level in self.levels}

    def clips(self, source: str | Path) -> dict[str, torch.Tensor]:
        """Test views of a video: {pathway: (1, V, C, T, H, W)}."""
        num_frames = probe_video(source).num_frames
        indices = self.frame_sampler.indices(num_frames, "test", np.random.default_rng(0))
        frames = read_frames_multi(source, indices)
        views = self.frame_sampler.views("test")
        per_view = []
        for v in range(views):
            clip = {k: f.reshape(views, -1, *f.shape[1:])[v] for k, f in frames.items()}
            out, _ = self.transform(clip, None, np.random.default_rng(0))
            per_view.append({k: t if t.dim() == 5 else t.unsqueeze(0) for k, t in out.items()})
        return {k: torch.cat([p[k] for p in per_view]).unsqueeze(0) for k in per_view[0]}

    @torch.no_grad()
    def scores(self, source: str | Path) -> dict[str, torch.Tensor]:
        """Per-level class probabilities (softmax averaged over the views) of one video."""
        clips = {k: v.to(self.device) for k, v in self.clips(source).items()}
        batch = clips["clip"] if list(clips) == ["clip"] else clips
        logits = self.module.aggregate_views(batch)
        if self.module.cfg.eval.aggregate == "score_mean":
            logits = {k: v.softmax(-1) for k, v in logits.items()}
        return {k: v[0].cpu() for k, v in logits.items()}

    def predict(self, source: str | Path, topk: int = 5) -> dict[str, list[Prediction]]:
        result = {}
        for level, probs in self.scores(source).items():
            k = min(topk, probs.numel())
            values, indices = probs.topk(k)
            result[level] = [Prediction(int(i), self.class_names[level][int(i)], float(p))
                             for p, i in zip(values, indices)]
        return result

    @staticmethod
    def as_json(predictions: dict[str, list[Prediction]]) -> dict:
        return {level: [asdict(p) for p in top] for level, top in predictions.items()}


def load_model(checkpoint: str | Path, device: str = "cpu") -> Predictor:
    """A Predictor from a training checkpoint (.ckpt) or an export (.safetensors + .json)."""
    from fineact.engine.checkpoints import load_module

    return Predictor(load_module(checkpoint), device)


def format_predictions(source: str, predictions: dict[str, list[Prediction]]) -> str:
    lines = [str(source)]
    for level, top in predictions.items():
        lines.append(f"  {level}:")
        for rank, p in enumerate(top, 1):
            lines.append(f"    {rank}. {100 * p.probability:6.2f}%  [{p.index:>3}] {p.name}")
    return "\n".join(lines)
