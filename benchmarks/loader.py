"""Clip-loading throughput: fineact's frame-accurate reader vs decoding every frame and indexing.

Makes synthetic 10-second 320x240 H.264 videos at 30 fps with 3 B-frames (x264's default) and two GOPs: 250
frames (x264's default keyint, typical of downloaded videos) and 48 frames (a keyframe every 1.6 s, typical of
re-encoded datasets). For each sampling case, the same random clips are read by

* ours: ``fineact.data.video.read_frames`` / ``read_frames_multi`` (decode up to the last needed frame, seek to
  keyframes across long gaps, convert only the needed frames to RGB);
* baseline: decode every frame of the video, convert every frame to RGB, then index (what a naive loader or
  ``torchvision.io.read_video`` does);
* decode-all: decode every frame but convert only the needed ones (a stronger baseline, to separate the gain
  from skipping decoding from the gain of skipping RGB conversion).

Cases: sparse 4x16 (4 frames at interval 16 in a random 64-frame window), dense 32x2, and the hierarchical
network's three pathways (4x16 + 8x8 + 32x2 from one 64-frame window, one decode). Clips/s is 1 / the median
wall time per clip, and CPU ms the median process CPU time (all decoder threads) per clip; the readers take
turns on every clip so that other load on the machine affects them alike. Results are checked equal across
readers, printed as a table and written to benchmarks/results/loader.json.

    python benchmarks/loader.py [--clips 30] [--seed 0] [--threads 0 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from fineact.data.sampling import dense_indices, multi_pathway_indices
from fineact.data.video import _read_video_frames, read_frames, read_frames_multi

WIDTH, HEIGHT, FPS, SECONDS, BFRAMES = 320, 240, 30, 10, 3
GOPS = (250, 48)
PATHWAYS = {"event": (4, 16), "set": (8, 8), "element": (32, 2)}
RESULTS = Path(__file__).resolve().parent / "results" / "loader.json"


# ------------------------------------------------------------------------------------------- the video


def scene(index: int, rng: np.random.Generator) -> np.ndarray:
    """A moving scene with texture, edges and a little sensor noise, so the encoder has real work to do."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    t = index / FPS
    background = 110 + 60 * np.sin(x / 23 + 1.7 * t) * np.cos(y / 31 - 0.9 * t)
    texture = 25 * np.sin((x + 40 * t) / 3.1) * np.sin((y - 25 * t) / 4.3)
    frame = np.stack([background + texture, background * 0.8 + 30, 200 - background * 0.6 + texture], axis=-1)
    for k, (speed_x, speed_y, colour) in enumerate([(70, 35, (240, 60, 40)), (-45, 55, (30, 200, 90))]):
        left = int((60 + 80 * k + speed_x * t) % (WIDTH - 60))
        top = int((40 + 60 * k + speed_y * t) % (HEIGHT - 50))
        frame[top : top + 50, left : left + 60] = colour
    frame += rng.normal(0, 3, frame.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)


def make_video(path: Path, gop: int) -> None:
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        options = {"g": str(gop), "bf": str(BFRAMES), "preset": "medium", "crf": "23"}
        stream = container.add_stream("libx264", rate=FPS, options=options)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(FPS * SECONDS):
            frame = av.VideoFrame.from_ndarray(scene(i, rng), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


# ------------------------------------------------------------------------------------------- readers


def baseline_decode_all(path: Path, index_lists: dict[str, np.ndarray], threads: int, convert_all: bool):
    """Decode every frame; convert all (baseline) or only the needed ones (decode-all) to RGB; then index."""
    needed = set(np.concatenate(list(index_lists.values())).tolist())
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        frames = [
            frame.to_ndarray(format="rgb24") if convert_all or i in needed else None
            for i, frame in enumerate(container.decode(stream))
        ]
    return {name: np.stack([frames[i] for i in indices]) for name, indices in index_lists.items()}


def ours(path: Path, index_lists: dict[str, np.ndarray], threads: int):
    if len(index_lists) == 1:
        (name, indices), = index_lists.items()
        return {name: read_frames(path, indices, decode_threads=threads)}
    return read_frames_multi(path, index_lists, decode_threads=threads)


CASES = {
    "sparse 4x16": lambda n, rng: {"clip": dense_indices(n, 4, 16, 1, "train", rng)},
    "dense 32x2": lambda n, rng: {"clip": dense_indices(n, 32, 2, 1, "train", rng)},
    "3 pathways 4x16+8x8+32x2": lambda n, rng: multi_pathway_indices(n, PATHWAYS, "train", rng),
}


def decode_all_convert_all(path, sample, threads):
    return baseline_decode_all(path, sample, threads, convert_all=True)


def decode_all_convert_needed(path, sample, threads):
    return baseline_decode_all(path, sample, threads, convert_all=False)


READERS = {"ours": ours, "baseline": decode_all_convert_all, "decode_all": decode_all_convert_needed}


def time_readers(path: Path, samples: list[dict], threads: int):
    """Wall and CPU seconds per clip for every reader, and the outputs. The readers take turns on each clip (in
    rotating order), so a busy machine slows them alike; the caller summarises with medians."""
    for read in READERS.values():
        read(path, samples[0], threads)  # warm-up: page cache, codec initialisation
    wall: dict[str, list[float]] = {name: [] for name in READERS}
    cpu: dict[str, list[float]] = {name: [] for name in READERS}
    outputs: dict[str, list] = {name: [] for name in READERS}
    names = list(READERS)
    for k, sample in enumerate(samples):
        for name in names[k % len(names) :] + names[: k % len(names)]:
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            outputs[name].append(READERS[name](path, sample, threads))
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu)
    return wall, cpu, outputs


def run_case(path: Path, case: str, clips: int, seed: int, threads: int) -> dict:
    num_frames = FPS * SECONDS
    rng = np.random.default_rng(seed)
    samples = [CASES[case](num_frames, rng) for _ in range(clips)]
    wall, cpu, outputs = time_readers(path, samples, threads)
    for mine, theirs in zip(outputs["ours"], outputs["baseline"]):
        assert all(np.array_equal(mine[name], theirs[name]) for name in mine), f"{case}: frames differ"
    rate = {name: 1.0 / float(np.median(times)) for name, times in wall.items()}
    cpu_ms = {name: 1000 * float(np.median(times)) for name, times in cpu.items()}
    stats = [_read_video_frames(path, np.unique(np.concatenate(list(s.values()))), threads)[1] for s in samples]
    return {
        "case": case,
        "clips_per_s_ours": round(rate["ours"], 2),
        "clips_per_s_baseline": round(rate["baseline"], 2),
        "ratio": round(rate["ours"] / rate["baseline"], 2),
        "clips_per_s_decode_all_convert_needed": round(rate["decode_all"], 2),
        "ratio_vs_decode_all": round(rate["ours"] / rate["decode_all"], 2),
        "cpu_ms_per_clip_ours": round(cpu_ms["ours"], 2),
        "cpu_ms_per_clip_baseline": round(cpu_ms["baseline"], 2),
        "cpu_ms_per_clip_decode_all": round(cpu_ms["decode_all"], 2),
        "mean_frames_decoded_ours": round(float(np.mean([s.decoded for s in stats])), 1),
        "mean_seeks_ours": round(float(np.mean([s.seeks for s in stats])), 2),
        "frames_in_video": num_frames,
    }


# ---------------------------------------------------------------------------------------------- report


def machine_info() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "av": av.__version__,
        "numpy": np.__version__,
        "ffmpeg_libavcodec": ".".join(map(str, av.library_versions.get("libavcodec", ()))),
    }


TABLE = [  # (header, row key, width, format)
    ("case", "case", 26, "s"),
    ("GOP", "gop", 4, "d"),
    ("thr", "decoder_threads", 3, "d"),
    ("ours", "clips_per_s_ours", 7, ".1f"),
    ("baseline", "clips_per_s_baseline", 9, ".1f"),
    ("ratio", "ratio", 6, ".2f"),
    ("decode-all", "clips_per_s_decode_all_convert_needed", 10, ".1f"),
    ("ratio", "ratio_vs_decode_all", 6, ".2f"),
    ("cpu:ours", "cpu_ms_per_clip_ours", 9, ".1f"),
    ("cpu:base", "cpu_ms_per_clip_baseline", 9, ".1f"),
    ("cpu:dec-all", "cpu_ms_per_clip_decode_all", 11, ".1f"),
]


def print_table(rows: list[dict]) -> None:
    """Columns 4-8: clips per second (wall clock); cpu: columns: CPU milliseconds per clip."""
    header = " ".join(f"{title:<{width}}" if fmt == "s" else f"{title:>{width}}" for title, _, width, fmt in TABLE)
    print(header)
    print("-" * len(header))
    for row in rows:
        print(" ".join(f"{row[key]:{'<' if fmt == 's' else '>'}{width}{fmt}}" for _, key, width, fmt in TABLE))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=30, help="random clips per case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[0, 1],
        help="decoder thread counts to try (0 = FFmpeg's choice; 1 = the usual setting in DataLoader workers)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(prefix="fineact_loader_bench_") as tmp:
        for gop in GOPS:
            path = Path(tmp) / f"synthetic_gop{gop}.mp4"
            make_video(path, gop)
            for threads in args.threads:
                for case in CASES:
                    row = run_case(path, case, args.clips, args.seed, threads)
                    rows.append({"gop": gop, "decoder_threads": threads, **row})
    print_table(rows)
    report = {
        "benchmark": "clip loading throughput (benchmarks/loader.py)",
        "command": " ".join([os.path.relpath(sys.executable), *sys.argv]),
        "working_directory": os.getcwd(),
        "machine": machine_info(),
        "video": {
            "width": WIDTH,
            "height": HEIGHT,
            "fps": FPS,
            "seconds": SECONDS,
            "codec": "libx264 preset medium crf 23",
            "bframes": BFRAMES,
            "gops": list(GOPS),
            "container": "mp4",
        },
        "clips_per_case": args.clips,
        "rate": "clips per second = 1 / median wall seconds per clip, readers interleaved clip by clip; "
        "cpu_ms_per_clip = median process CPU time (all threads) per clip",
        "load_average_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "seed": args.seed,
        "results": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
