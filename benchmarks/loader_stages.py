"""Where a training clip's time goes, stage by stage, and how close the DataLoader comes to decoding alone.

    python benchmarks/loader_stages.py [--clips 8] [--repeats 3] [--sizes 320x240 640x360 1280x720]

Synthetic 4-second H.264 videos (30 fps, GOP 48, 3 B-frames) at each source size; the train pipeline of the
config defaults (resize short side 256, MultiScaleCrop 224, flip) on sparse 4x16, dense 32x2 and the
hierarchical network's three pathways (4x16 + 8x8 + 32x2, one decode).

(a) Per-stage milliseconds for one clip (medians over the clips, in this process, decoder threads 1):
    decode = demux + decode (the reader's time less its colour conversion), convert = YUV -> RGB (with the
    scaling when FFmpeg's scaler resizes), resize = full-frame resize in torch, crop/flip = crop, flip and the
    crop's resize to 224, float+norm = uint8 -> float, normalisation and model layout (on the device for the
    uint8 pipeline: timed here on this CPU), collate = default_collate per clip (batch 4), transfer = a worker's
    batch reaching the main process (a DataLoader with 1 worker serving ready-made items) less the collation.
(b) DataLoader clips/s with 1 and 2 workers, batch 4: "decode-only" (the same Dataset reading the same frames,
    transform replaced by nothing) vs the full pipeline, epochs interleaved in one run (persistent workers, one
    warm-up epoch each) so the machine's load hits both alike; ratio = full / decode-only.

Results: a table and benchmarks/results/<--name>.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data._utils.collate import default_collate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_results  # noqa: E402

from fineact.data import transforms as T  # noqa: E402
from fineact.data.annotations import Sample  # noqa: E402
from fineact.data.datasets import ClipDatasetOptions, KeyedSampler, VideoClipDataset  # noqa: E402
from fineact.data.sampling import DenseSampler, MultiPathwaySampler  # noqa: E402
from fineact.data.video import read_frames_multi  # noqa: E402

FPS, SECONDS, GOP, BFRAMES, BATCH = 30, 4, 48, 3, 4
SIZES = ("320x240", "640x360", "1280x720")
CASES = {
    "sparse 4x16": lambda: DenseSampler(4, 16),
    "dense 32x2": lambda: DenseSampler(32, 2),
    "3 pathways": lambda: MultiPathwaySampler({"event": (4, 16), "set": (8, 8), "element": (32, 2)}),
}
STAGES = ("decode", "convert", "resize", "crop/flip", "float+norm", "collate", "transfer")
STAGE_OF_STEP = {"ToFloat": "float+norm", "Resize": "resize", "MultiScaleCrop": "crop/flip",
                 "RandomHorizontalFlip": "crop/flip", "Normalize": "float+norm", "ToModelLayout": "float+norm"}


# --------------------------------------------------------------------------------------------- videos


def make_video(path: Path, width: int, height: int) -> None:
    """Moving gradients, texture, two boxes and sensor noise: real work for the encoder at any size."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    x, y = x * 320 / width, y * 240 / height  # the same scene at every size
    with av.open(str(path), "w") as container:
        options = {"g": str(GOP), "bf": str(BFRAMES), "preset": "fast", "crf": "23"}
        stream = container.add_stream("libx264", rate=FPS, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(FPS * SECONDS):
            t = i / FPS
            base = 110 + 60 * np.sin(x / 23 + 1.7 * t) * np.cos(y / 31 - 0.9 * t)
            texture = 25 * np.sin((x + 40 * t) / 3.1) * np.sin((y - 25 * t) / 4.3)
            frame = np.stack([base + texture, base * 0.8 + 30, 200 - base * 0.6 + texture], axis=-1)
            for k, (vx, vy, colour) in enumerate([(70, 35, (240, 60, 40)), (-45, 55, (30, 200, 90))]):
                left, top = int((60 + 80 * k + vx * t) % 260 * width / 320), int((40 + 60 * k + vy * t) % 190 * height / 240)
                frame[top : top + height * 50 // 240, left : left + width * 60 // 320] = colour
            frame += rng.normal(0, 3, frame.shape).astype(np.float32)
            video_frame = av.VideoFrame.from_ndarray(np.clip(frame, 0, 255).astype(np.uint8), format="rgb24")
            video_frame.pts, video_frame.time_base = i, Fraction(1, FPS)
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def decoded_frames(path: Path) -> list:
    """Every frame of the video as an undecoded-to-RGB av.VideoFrame (to time the colour conversion alone)."""
    with av.open(str(path)) as container:
        return list(container.decode(container.streams.video[0]))


# --------------------------------------------------------------------------------------------- pipelines


def float_pipeline():
    """Today's pipeline (before this benchmark's issue): float32 from the first step, everything in the worker."""
    return T.build_train_transform("multiscale", 224, 256)


PIPELINES = {"float": float_pipeline}


# -------------------------------------------------------------------------------------------- (a) stages


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def stage_times(path: Path, frames_av: list, case: str, pipeline: str, clips: int) -> dict[str, float]:
    """Median milliseconds per stage for one clip of `case`."""
    transform = PIPELINES[pipeline]()
    sampler = CASES[case]()
    per_stage: dict[str, list[float]] = {stage: [] for stage in STAGES}
    item = None
    for k in range(clips + 1):  # clip 0 warms up
        rng = np.random.default_rng(k)
        indices = sampler.indices(len(frames_av), "train", rng)
        frames, read_s = timed(lambda: read_frames_multi(path, indices, decode_threads=1))
        union = np.unique(np.concatenate(list(indices.values())))
        _, convert_s = timed(lambda: [frames_av[i].to_ndarray(format="rgb24") for i in union])
        times = dict.fromkeys(STAGES, 0.0)
        times["decode"], times["convert"] = read_s - convert_s, convert_s
        clip_dict, label = dict(frames), 0
        for step in transform.transforms:
            (clip_dict, label), seconds = timed(lambda: step.apply(clip_dict, label, rng))
            times[STAGE_OF_STEP[type(step).__name__]] += seconds
        clips_out = clip_dict["clip"] if list(clip_dict) == ["clip"] else clip_dict
        item = {"clips": clips_out, "label": torch.tensor(0), "index": torch.tensor(k), "skipped": ""}
        _, collate_s = timed(lambda: default_collate([item] * BATCH))
        times["collate"] = collate_s / BATCH
        if k:
            for stage, seconds in times.items():
                per_stage[stage].append(seconds)
    medians = {stage: 1e3 * statistics.median(values) for stage, values in per_stage.items()}
    medians["transfer"] = max(0.0, 1e3 * transfer_seconds(item, clips) - medians["collate"])
    return medians


class _Repeat(Dataset):
    def __init__(self, item: dict, length: int):
        self.item, self.length = item, length

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        return self.item


def transfer_seconds(item: dict, clips: int) -> float:
    """Seconds per clip for a worker to collate ready-made items and hand the batch to the main process."""
    loader = DataLoader(_Repeat(item, BATCH * max(2, clips // BATCH)), batch_size=BATCH, num_workers=1)
    next(iter(loader))  # worker start-up is not a per-clip cost
    iterator = iter(loader)
    start = time.perf_counter()
    count = sum(batch["label"].numel() for batch in iterator)
    return (time.perf_counter() - start) / count


# ---------------------------------------------------------------------------------------- (b) DataLoader


def nothing(frames, label, rng):
    """The decode-only 'transform': drop the frames (a scalar travels instead)."""
    return {"clip": torch.zeros(())}, label


def make_loader(path: Path, case: str, transform, clips: int, workers: int) -> DataLoader:
    samples = [Sample(source=str(path), label=0, sample_id=str(i)) for i in range(clips)]
    dataset = VideoClipDataset(samples, CASES[case](), transform, ClipDatasetOptions(mode="train"), 224)
    return DataLoader(dataset, batch_size=BATCH, num_workers=workers, persistent_workers=True,
                      sampler=KeyedSampler(len(dataset), shuffle=True, seed=0))


def loader_rates(path: Path, case: str, pipeline: str, clips: int, repeats: int, workers: int) -> dict:
    loaders = {"decode-only": make_loader(path, case, nothing, clips, workers),
               pipeline: make_loader(path, case, PIPELINES[pipeline](), clips, workers)}
    epochs: dict[str, list[float]] = {name: [] for name in loaders}
    for rep in range(repeats + 1):  # repeat 0 starts the workers and warms up
        for name, loader in loaders.items():
            _, seconds = timed(lambda: sum(batch["label"].numel() for batch in loader))
            if rep:
                epochs[name].append(seconds)
    rates = {name: clips / statistics.median(values) for name, values in epochs.items()}
    del loaders
    return {"workers": workers, "decode_only_clips_per_s": rates["decode-only"],
            "clips_per_s": rates[pipeline], "ratio_vs_decode_only": rates[pipeline] / rates["decode-only"]}


# ------------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=8, help="clips per stage measurement and per loader epoch")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per loader (interleaved)")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), help="source sizes WxH")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--pipelines", nargs="+", default=list(PIPELINES), choices=list(PIPELINES))
    parser.add_argument("--name", default="loader_stages", help="results/<name>.json")
    args = parser.parse_args(argv)
    load_start = os.getloadavg()
    stage_rows, loader_rows = [], []
    with tempfile.TemporaryDirectory(prefix="fineact_stages_") as tmp:
        for size in args.sizes:
            width, height = (int(v) for v in size.split("x"))
            path = Path(tmp) / f"video_{size}.mp4"
            make_video(path, width, height)
            frames_av = decoded_frames(path)
            for case in args.cases:
                for pipeline in args.pipelines:
                    ms = stage_times(path, frames_av, case, pipeline, args.clips)
                    stage_rows.append({"source": size, "case": case, "pipeline": pipeline, **ms,
                                       "total": sum(ms.values())})
                    for workers in args.workers:
                        rates = loader_rates(path, case, pipeline, args.clips, args.repeats, workers)
                        loader_rows.append({"source": size, "case": case, "pipeline": pipeline, **rates})
            del frames_av
    print("(a) milliseconds per clip, by stage (decoder threads 1, batch 4)")
    print_table(["source", "case", "pipeline", *STAGES, "total"],
                [[r["source"], r["case"], r["pipeline"], *(r[s] for s in STAGES), r["total"]] for r in stage_rows])
    print("\n(b) DataLoader clips/s, batch 4: decode-only vs the full pipeline, interleaved epochs")
    print_table(["source", "case", "pipeline", "workers", "decode-only", "clips/s", "ratio"],
                [[r["source"], r["case"], r["pipeline"], r["workers"], r["decode_only_clips_per_s"],
                  r["clips_per_s"], r["ratio_vs_decode_only"]] for r in loader_rows])
    payload = {"settings": vars(args), "video": {"fps": FPS, "seconds": SECONDS, "gop": GOP, "bframes": BFRAMES,
                                                  "codec": "libx264 preset fast crf 23"},
               "load_average_start": load_start, "load_average_end": os.getloadavg(),
               "stages_ms": stage_rows, "loader": loader_rows}
    print(f"load average (1, 5, 15 min): start {load_start}, end {payload['load_average_end']}")
    print(f"wrote {write_results(args.name, payload)}")


if __name__ == "__main__":
    main()
