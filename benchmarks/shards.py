"""Training clips/s from a pack (`fineact pack`, LitData chunks) vs from the video files, with and without a
simulated per-file open latency, and the pack's size vs the source files'.

Makes `--videos` synthetic 320x240 H.264 clips (x264 defaults, `--frames` frames at 30 fps, as trimmed clips of
fine-grained datasets are), a video_list annotation file, and a pack of them. For each sampling case (sparse 4x16:
4 frames at interval 16; dense 32x2) and each number of loader workers, one training epoch over all clips is read
through fineact's loaders: files (VideoClipDataset + KeyedSampler, one file open per sample, the frame count
probed once per worker) and pack (PackClipDataset + PackLoader: LitData streams chunks). Both run the same
sampler and train transforms (multiscale crop to 224, flip); the two loaders take turns, `--repeats` times, and
clips/s is clips / median epoch time.

Simulated network file system (`--latency-ms 5 20`): every open of a file under the data folder sleeps a random
5-20 ms first (uniform, drawn per open) - the time a network file system (NFS, Lustre, a FUSE-mounted bucket)
adds to each open/first read, which a local disk does not have. It is applied in the loader workers where the
files are opened: for the files loader around each PyAV container open of a video (`fineact.data.video.
_open_container`, which serves reads and probes), for the pack around each Python `open()` of a chunk (LitData
reads chunks with `open`). Reading itself is not slowed down: this isolates the per-file cost that shards amortise.

    python benchmarks/shards.py [--videos 64] [--frames 96] [--workers 1 2] [--repeats 3] [--latency-ms 5 20]
                                [--shard-size 64MB] [--resize 256] [--crop 224] [--name shards]
"""

from __future__ import annotations

import argparse
import builtins
import random
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, print_table, write_results  # noqa: E402

from fineact.data.annotations import read_annotations  # noqa: E402
from fineact.data.datasets import ClipDatasetOptions, KeyedSampler, VideoClipDataset  # noqa: E402
from fineact.data.sampling import DenseSampler  # noqa: E402
from fineact.data.transforms import build_train_transform  # noqa: E402

CASES = {"sparse 4x16": (4, 16), "dense 32x2": (32, 2)}
WIDTH, HEIGHT, FPS = 320, 240, 30


def make_videos(folder: Path, count: int, frames: int) -> Path:
    """`count` clips of moving noise-textured boxes, and their video_list annotation file."""
    rng = np.random.default_rng(0)
    lines = []
    for k in range(count):
        path = folder / f"clip{k:04d}.mp4"
        background = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=FPS, options={"crf": "23", "preset": "fast"})
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            for i in range(frames):
                frame = background.copy()
                left, top = (7 * i + 13 * k) % (WIDTH - 60), (5 * i + 11 * k) % (HEIGHT - 50)
                frame[top: top + 50, left: left + 60] = (40 * k) % 255
                picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
                picture.pts, picture.time_base = i, Fraction(1, FPS)
                container.mux(stream.encode(picture))
            container.mux(stream.encode(None))
        lines.append(f"{path.name} {k % 10}")
    annotations = folder / "train.txt"
    annotations.write_text("\n".join(lines) + "\n")
    return annotations


# ---------------------------------------------------------------------------------------- simulated latency


def install_open_latency(root: Path, low_ms: float, high_ms: float) -> None:
    """Every open of a file under `root` first sleeps uniform(low, high) ms (see the module docstring)."""
    import fineact.data.video as video

    root_text = str(root)
    python_open, container_open = builtins.open, video._open_container

    def wait(path) -> None:
        if str(path).startswith(root_text):
            time.sleep(random.uniform(low_ms, high_ms) / 1000)

    def slow_open(file, *args, **kwargs):
        wait(file)
        return python_open(file, *args, **kwargs)

    def slow_container_open(path, threads):
        if not isinstance(path, video.EncodedVideo):  # a pack's record is in memory: its chunk was opened
            wait(path)
        return container_open(path, threads)

    builtins.open, video._open_container = slow_open, slow_container_open


# -------------------------------------------------------------------------------------------------- loaders


def files_loader(samples, sampler, transform, workers: int, batch: int):
    from fineact.engine.datamodule import ForkSafeDataLoader

    dataset = VideoClipDataset(samples, sampler, transform, ClipDatasetOptions(mode="train"), 0)
    return ForkSafeDataLoader(dataset, batch_size=batch, sampler=KeyedSampler(len(samples), True, seed=0),
                              num_workers=workers, multiprocessing_context="fork")


def pack_loader(pack: Path, count: int, sampler, transform, workers: int, batch: int):
    from fineact.data.pack_dataset import PackClipDataset, PackLoader

    dataset = PackClipDataset(str(pack), count, sampler, transform, ClipDatasetOptions(mode="train"), 0, seed=0)
    return PackLoader(dataset, batch_size=batch, num_workers=workers, multiprocessing_context="fork")


def epoch_seconds(loader) -> tuple[float, int]:
    start, clips = time.perf_counter(), 0
    for batch in loader:
        clips += len(batch["label"])
    return time.perf_counter() - start, clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, nargs=2, default=[5.0, 20.0])
    parser.add_argument("--shard-size", default="64MB")
    parser.add_argument("--resize", type=int, default=256, help="short side before the multiscale crop")
    parser.add_argument("--crop", type=int, default=224, help="training crop size (lower: less work per clip, "
                                                               "so the per-file cost weighs more)")
    parser.add_argument("--name", default="shards")
    args = parser.parse_args()

    from fineact.data.pack_writer import pack_samples, parse_size

    rows, results = [], []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        annotations = make_videos(data, args.videos, args.frames)
        samples = read_annotations("video_list", annotations, data, num_classes=10)
        fingerprint = {"settings": {}, "files": {}}
        index = pack_samples(samples, fingerprint, "train", data / "pack", parse_size(args.shard_size),
                             progress=False)
        source_bytes = sum(p.stat().st_size for p in data.glob("*.mp4"))
        print(f"{args.videos} clips: source {source_bytes / 1e6:.2f} MB, pack {index.pack_bytes / 1e6:.2f} MB "
              f"({index.pack_bytes / source_bytes:.3f}x) in {len(list((data / 'pack').glob('chunk-*.bin')))} "
              f"chunk(s)")
        transform = build_train_transform("multiscale", args.crop, args.resize, True, None)
        for latency in (None, args.latency_ms):
            if latency is not None:
                install_open_latency(data, *latency)
            for case, (length, interval) in CASES.items():
                sampler = DenseSampler(length, interval)
                for workers in args.workers:
                    loaders = {"files": files_loader(samples, sampler, transform, workers, args.batch),
                               "pack": pack_loader(data / "pack", len(samples), sampler, transform, workers,
                                                   args.batch)}
                    times: dict[str, list[float]] = {name: [] for name in loaders}
                    for _ in range(args.repeats):
                        for name, loader in loaders.items():
                            seconds, clips = epoch_seconds(loader)
                            assert clips == len(samples), (name, clips)
                            times[name].append(seconds)
                    speed = {name: len(samples) / float(np.median(t)) for name, t in times.items()}
                    where = "local disk" if latency is None else f"+{latency[0]:g}-{latency[1]:g} ms per open"
                    rows.append([where, case, workers, speed["files"], speed["pack"],
                                 speed["pack"] / speed["files"]])
                    results.append({"storage": where, "case": case, "workers": workers,
                                    "files_clips_per_second": speed["files"],
                                    "pack_clips_per_second": speed["pack"],
                                    "pack_over_files": speed["pack"] / speed["files"],
                                    "epoch_seconds": times})
    print_table(["storage", "clips", "workers", "files clips/s", "pack clips/s", "pack / files"], rows)
    path = write_results(args.name, {"videos": args.videos, "frames": args.frames, "batch": args.batch,
                                     "repeats": args.repeats, "latency_ms": args.latency_ms,
                                     "resize": args.resize, "crop": args.crop,
                                     "source_bytes": source_bytes, "pack_bytes": index.pack_bytes,
                                     "pack_over_source": index.pack_bytes / source_bytes, "results": results,
                                     "host": machine_info()["platform"]})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
