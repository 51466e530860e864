"""What `fineact analyze`, `fineact layers` and `fineact gradcam` do, as plain functions.

They tie the analysis modules to trained runs: a run folder (as `fineact train` writes it: results next to the
checkpoints, the export `model.safetensors` + `model.json`) and video files read with the model's own test
views (fineact.data.test_views, through the Predictor), so what is explained is what was evaluated.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fineact.analysis.arc_maps import capture_arc, paper_state_layer, plot_state_maps
from fineact.analysis.gradcam import default_cam_layers, grad_cam, list_layers, save_cam_animation, save_cam_grid
from fineact.analysis.plotting import clip_to_frames
from fineact.analysis.report import Report, build_report
from fineact.errors import FineactError
from fineact.models.arc import arc_layers
from fineact.predict import Predictor, load_model


def find_export(run_dir: Path) -> Path | None:
    for candidate in (run_dir / "model.safetensors", run_dir.parent / "model.safetensors"):
        if candidate.is_file():
            return candidate
    return None


def video_clips(predictor: Predictor, videos: list[str]):
    """First test view of each video as a normalised model input batch ({pathway: (N, C, T, H, W)} or a tensor)."""
    views = predictor.test_views
    per_video = [views.of_video(v) for v in videos]
    clips = views.model_input({k: torch.cat([c[k][:1] for c in per_video]) for k in per_video[0]})
    return clips["clip"] if list(clips) == ["clip"] else clips


def analyze_run(run_dir: str | Path, out_dir: str | Path | None = None, split: str | None = None,
                groups=None, compare: dict[str, str] | None = None, videos: list[str] | None = None,
                cam_layers: list[str] | None = None, cam_level: str | None = None) -> Report:
    """A report folder for an evaluated run; with `videos`, also Grad-CAM and ARC pictures of those clips."""
    run_dir = Path(run_dir)
    model = clips = levels = labels = None
    export = find_export(run_dir if run_dir.is_dir() else run_dir.parent)
    if export is not None:
        predictor = load_model(export)
        levels = predictor.module.levels
        if videos:
            model = predictor.module.model
            clips = video_clips(predictor, videos)
    elif videos:
        raise FineactError(f"{run_dir}: no exported model.safetensors found for the Grad-CAM pictures of --videos")
    return build_report(run_dir, out_dir, split=split, levels=levels, groups=groups, compare=compare,
                        model=model, sample_clips=clips, sample_labels=labels, cam_layers=cam_layers,
                        cam_level=cam_level)


def layer_names(source: str, kind: str = "conv") -> list[str]:
    """Grad-CAM-able layer names of a checkpoint/export or of a registered model name."""
    path = Path(source)
    if path.suffix in (".ckpt", ".safetensors") or path.is_file():
        model = load_model(path).module.model
    else:
        from fineact.models import build_model
        model = build_model(source)
    return list_layers(model, kind)


def gradcam_video(checkpoint: str | Path, video: str | Path, out_dir: str | Path, layers: list[str] | None = None,
                  level: str | None = None, target: int | None = None) -> list[Path]:
    """Grad-CAM of `video` (its first test view) per layer: a PNG frame grid and a GIF; ARC state maps too."""
    predictor = load_model(checkpoint)
    model = predictor.module.model
    clips = video_clips(predictor, [str(video)])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    first = next(iter(clips.values())) if isinstance(clips, dict) else clips
    mean, std = predictor.test_views.mean, predictor.test_views.std
    stem = Path(video).stem
    for layer in layers or default_cam_layers(model):
        cams = grad_cam(model, clips, layer, target=target, level=level)[0].numpy()
        pathway_clip = clips[layer.split(".")[1]] if isinstance(clips, dict) and layer.startswith("pathways.") \
            else first
        frames = clip_to_frames(pathway_clip[0], mean, std)
        safe = layer.replace(".", "_")
        written.append(save_cam_grid(frames, cams, out / f"{stem}_{safe}.png", title=f"Grad-CAM {layer}"))
        written.append(save_cam_animation(frames, cams, out / f"{stem}_{safe}.gif"))
    if arc_layers(model):
        capture = capture_arc(model, clips, [paper_state_layer(model)])
        for name, cap in capture.items():
            path = out / f"{stem}_arc_states_{name.replace('.', '_')}.png"
            written.append(plot_state_maps(clip_to_frames(first[0], mean, std), cap, path))
    return [Path(p) for p in written]

