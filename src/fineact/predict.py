"""Running a trained model on video files: `fineact.load_model(checkpoint)` and the Predictor.

    predictor = fineact.load_model("runs/demo/multitask/model.safetensors")
    for level, top in predictor.predict("clip.mp4", topk=5).items():
        print(level, [(p.name, round(p.probability, 3)) for p in top])

The predictor sees a video as the model was evaluated (fineact.data.test_views: its config's test clips and crops),
decodes only those frames, averages the softmax over the views, and names the classes of every level the model
predicts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from fineact.data.test_views import TestViews
from fineact.errors import VideoError


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
        self.test_views = TestViews.from_config(module.cfg.data, module.model.clip_specs)
        self.levels = module.trained_levels
        self.class_names = {level: module.levels.class_names[level] for level in self.levels}
        self.training_clips: dict | None = None  # typical training clip duration (windows of segment models)

    def clips(self, source: str | Path) -> dict[str, torch.Tensor]:
        """Test views of a video as a batch of one: {pathway: uint8 (1, V, C, T, H, W)} (the module normalises
        them on its device)."""
        refuse_urls(source)
        return {name: views.unsqueeze(0) for name, views in self.test_views.of_video(source).items()}

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

    def predict_video(self, source: str | Path, *, stride: int | None = None, window_s: float | None = None,
                      batch_size: int = 16, options=None, progress: bool = False):
        """Sliding-window recognition over a whole (untrimmed) video -> fineact.windows.VideoTimeline.

        The model's clip window slides every `stride` frames (default 8) over the video, decoded once; segment
        models (TSN/TSM) use windows of `window_s` seconds (default: the typical training clip duration recorded
        in the export's JSON). `options`: fineact.windows.SegmentOptions (smoothing, background threshold).
        """
        from fineact.windows.recognise import DEFAULT_STRIDE, recognise_video

        return recognise_video(self, source, stride=DEFAULT_STRIDE if stride is None else stride, window_s=window_s,
                               batch_size=batch_size, options=options, progress=progress,
                               training_clips=self.training_clips)

    @staticmethod
    def as_json(predictions: dict[str, list[Prediction]]) -> dict:
        return {level: [asdict(p) for p in top] for level, top in predictions.items()}


URL_SCHEMES = ("http://", "https://", "ftp://", "rtsp://", "rtmp://", "s3://", "gs://")


def refuse_urls(source: str | Path) -> None:
    """fineact reads local files only (no network at run time): a URL is refused with what to do instead."""
    if isinstance(source, str) and source.lower().startswith(URL_SCHEMES):
        raise VideoError(f"video {source}: URLs are not supported (fineact reads local files only); download "
                         "the file first and give its path")


def load_model(checkpoint: str | Path, device: str = "cpu") -> Predictor:
    """A Predictor from a training checkpoint (.ckpt) or an export (.safetensors + .json)."""
    from fineact.engine.checkpoints import load_module

    from fineact.windows.training_clips import recorded_training_clips

    predictor = Predictor(load_module(checkpoint), device)
    predictor.training_clips = recorded_training_clips(checkpoint)
    return predictor


def format_predictions(source: str, predictions: dict[str, list[Prediction]]) -> str:
    lines = [str(source)]
    for level, top in predictions.items():
        lines.append(f"  {level}:")
        for rank, p in enumerate(top, 1):
            lines.append(f"    {rank}. {100 * p.probability:6.2f}%  [{p.index:>3}] {p.name}")
    return "\n".join(lines)
