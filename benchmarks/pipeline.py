"""Throughput of the whole pipeline: loader workers, training steps, and `predict` latency.

    python benchmarks/pipeline.py                  # all three parts, results/pipeline.json

(b) loader: clips/s of fineact's Dataset + DataLoader (decode, sample, crop, collate uint8) with 1 and 2
    worker processes, on copies of a synthetic 10-second 320x240 H.264 video (GOP 48, B-frames), for the
    sparse 4x16 clip, the dense 32x2 clip and the hierarchical network's three pathways.
(c) training: clips/s of a full training step (forward, loss, backward, SGD step) of the demo's base models
    (SlowOnly R18-style, 8 base channels, 48 x 48) and of SlowOnly-R50 at 8 x 112 x 112, on in-memory clips;
    and the demo's element base model end to end through Lightning (data loading included).
(d) predict: wall time per video of `fineact.load_model(...).predict(video)` (decode, transform, forward) for
    the demo's multi-task model, after a warm-up.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_results  # noqa: E402
from loader import make_video  # noqa: E402

from fineact.data.annotations import Sample  # noqa: E402
from fineact.data.datasets import ClipDatasetOptions, KeyedSampler, VideoClipDataset  # noqa: E402
from fineact.data.model_input import collate_batch  # noqa: E402
from fineact.data.sampling import DenseSampler, MultiPathwaySampler  # noqa: E402
from fineact.data.transforms import build_train_transform  # noqa: E402
from fineact.models import build_model  # noqa: E402

CASES = {
    "sparse 4x16": lambda: DenseSampler(4, 16),
    "dense 32x2": lambda: DenseSampler(32, 2),
    "3 pathways": lambda: MultiPathwaySampler({"event": (4, 16), "set": (8, 8), "element": (32, 2)}),
}


def loader_rates(folder: Path, clips: int) -> list[dict]:
    video = folder / "video.mp4"
    make_video(video, gop=48)
    samples = [Sample(source=str(video), label=0, sample_id=str(i)) for i in range(clips)]
    transform = build_train_transform("multiscale", 224, 256)
    rows = []
    for case, make_sampler in CASES.items():
        for workers in (1, 2):
            dataset = VideoClipDataset(samples, make_sampler(), transform, ClipDatasetOptions(mode="train"), 224)
            loader = DataLoader(dataset, batch_size=4, num_workers=workers, collate_fn=collate_batch,
                                sampler=KeyedSampler(len(dataset), shuffle=True, seed=0))
            start = time.perf_counter()
            count = sum(batch["label"].numel() for batch in loader)
            seconds = time.perf_counter() - start
            rows.append({"case": case, "workers": workers, "clips_per_s": count / seconds})
    return rows


def training_rates(steps: int) -> list[dict]:
    rows = []
    setups = {
        "demo base: event 4x48x48": ("slowonly_r50", dict(depth=18, base_channels=8, num_frames=4), 16, 48),
        "demo base: set 8x48x48": ("slowonly_r50", dict(depth=18, base_channels=8, num_frames=8), 16, 48),
        "demo base: element 16x48x48": ("slowonly_r50", dict(depth=18, base_channels=8, num_frames=16), 16, 48),
        "slowonly_r50 8x112x112": ("slowonly_r50", dict(num_frames=8, num_classes=99), 2, 112),
    }
    for label, (name, kwargs, batch, size) in setups.items():
        model = build_model(name, **kwargs).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        t = kwargs["num_frames"]
        clip = torch.randn(batch, 3, t, size, size)
        target = torch.zeros(batch, dtype=torch.long)

        def step():
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(clip), target).backward()
            optimizer.step()

        for _ in range(2):
            step()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        seconds = (time.perf_counter() - start) / steps
        rows.append({"setup": label, "batch": batch, "clips_per_s": batch / seconds, "ms_per_step": seconds * 1e3})
    return rows


def demo_end_to_end(folder: Path, epochs: int) -> dict:
    from fineact.config import load_config
    from fineact.demo import base_config, default_demo_params, ensure_dataset
    from fineact.engine.run import train

    ds = ensure_dataset(folder / "demo_data", **default_demo_params())
    cfg = load_config(base=base_config("element", ds, folder / "runs", epochs, workers=1))
    cfg.trainer.progress_bar = False
    start = time.perf_counter()
    run = train(cfg)
    seconds = time.perf_counter() - start
    clips = epochs * default_demo_params()["num_train"]
    return {"setup": "demo element base model via Lightning (data included, incl. evaluation)",
            "epochs": epochs, "seconds": seconds, "train_clips_per_s_incl_eval": clips / seconds,
            "exported": str(run.exported), "val_videos": str(ds.val_list), "videos_dir": str(ds.videos_dir)}


def predict_latency(export: str, videos_dir: str, count: int) -> dict:
    from fineact import load_model

    predictor = load_model(export)
    videos = sorted(Path(videos_dir).glob("*.mp4"))[: count + 1]
    predictor.predict(videos[0])  # warm-up
    times = []
    for video in videos[1:]:
        start = time.perf_counter()
        predictor.predict(video)
        times.append(time.perf_counter() - start)
    return {"model": export, "videos": len(times), "median_ms": 1e3 * float(np.median(times)),
            "max_ms": 1e3 * float(np.max(times))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=48, help="clips per loader case")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per setup")
    parser.add_argument("--demo-epochs", type=int, default=1)
    parser.add_argument("--predict-videos", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        loader = loader_rates(folder, args.clips)
        print("(b) loader: Dataset + DataLoader, batch 4, train transform (MultiScaleCrop 224)")
        print_table(["case", "workers", "clips/s"], [[r["case"], r["workers"], r["clips_per_s"]] for r in loader])
        training = training_rates(args.steps)
        print("\n(c) training steps on in-memory clips (forward, loss, backward, SGD step)")
        print_table(["setup", "batch", "clips/s", "ms/step"],
                    [[r["setup"], r["batch"], r["clips_per_s"], r["ms_per_step"]] for r in training])
        demo = demo_end_to_end(folder, args.demo_epochs)
        print(f"\n(c) {demo['setup']}: {demo['train_clips_per_s_incl_eval']:.1f} train clips/s "
              f"({demo['seconds']:.1f} s for {demo['epochs']} epoch)")
        latency = predict_latency(demo["exported"], demo["videos_dir"], args.predict_videos)
        print(f"\n(d) predict latency per video (single-level demo model, decode + transform + forward): "
              f"median {latency['median_ms']:.1f} ms, max {latency['max_ms']:.1f} ms")
    path = write_results("pipeline", {"settings": vars(args), "loader": loader, "training": training,
                                      "demo_end_to_end": demo, "predict": latency})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
