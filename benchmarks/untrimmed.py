"""Reading element windows from a long untrimmed video vs from trimmed clips of the same content.

Makes (once, cached) a long synthetic 1280x720 H.264 mp4 (default 30 minutes at 25 fps, x264 veryfast CRF 23,
a keyframe every 50 frames = 2 s and 2 B-frames, like a downloaded broadcast), picks random element windows of
96 frames in it, and trims each into its own clip with `fineact prepare`'s encoder (same x264 settings, so both
sides decode the same kind of stream). Then, for each sampling case, the same 64-frame windows are read

* untrimmed: `fineact.data.video_pool.read_window` on the long video (what training on the JSON does: the video
  is opened and probed once per worker process and kept open; each read seeks to the keyframe before the window);
* trimmed: `fineact.data.video.read_frames` on the element's clip (what training on trimmed clips does).

Cases: sparse 4x16 (4 frames 16 apart) and dense 32x2 (32 frames 2 apart) from a random 64-frame window of the
element. Worker processes: 1 and 2 (persistent, like DataLoader workers, one decoder thread each). The two
readers alternate batch by batch so that other load on the machine hits them alike; clips/s is clips / the
median wall time of a batch, CPU ms the median CPU time per clip summed over the workers. Frames are checked
equal in count and close in value (re-encoding noise) once. Target: untrimmed / trimmed time <= 1.5.

    python benchmarks/untrimmed.py [--minutes 30] [--size 1280x720] [--clips 24] [--repeats 5] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_results  # noqa: E402

FPS, GOP = 25, 50
ELEMENT_FRAMES, WINDOW = 96, 64
CASES = {"sparse 4x16": (4, 16), "dense 32x2": (32, 2)}
ENCODING = {"crf": "23", "preset": "veryfast", "x264-params": f"keyint={GOP}:min-keyint={GOP}:bframes=2"}


def _frames(num_frames: int, width: int, height: int, chunk: int = 100):
    """A textured, moving scene (cheap to draw: a rolled texture plus two moving boxes)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    texture = np.stack([110 + 60 * np.sin(x / 23) * np.cos(y / 31), 90 + 40 * np.sin((x + y) / 17),
                        150 - 50 * np.cos(x / 41)], axis=-1) + rng.normal(0, 4, (height, width, 3))
    texture = np.clip(texture, 0, 255).astype(np.uint8)
    for begin in range(0, num_frames, chunk):
        batch = np.empty((min(chunk, num_frames - begin), height, width, 3), np.uint8)
        for k in range(len(batch)):
            i = begin + k
            frame = np.roll(texture, (i * 3) % width, axis=1)
            box_w, box_h = width // 10, height // 7
            left, top = (i * 11) % (width - box_w), (i * 5) % (height - box_h)
            frame[top:top + box_h, left:left + box_w] = (240, 60, 40)
            batch[k] = frame
        yield batch


def make_long_video(path: Path, minutes: float, width: int, height: int) -> None:
    from fineact.demo.untrimmed import encode_video

    if path.is_file():
        return
    partial = path.with_name(f".{path.name}.partial.mp4")
    print(f"writing {minutes:g} min of {width}x{height} to {path} (once) ...", flush=True)
    encode_video(_frames(int(minutes * 60 * FPS), width, height), partial, Fraction(FPS), ENCODING)
    partial.replace(path)


def make_clips(video: Path, folder: Path, count: int, seed: int) -> list[tuple[str, int]]:
    """(clip path, element start frame in the long video) for `count` random elements, trimmed once."""
    from fineact.data.prepare_finegym import Window, _trim_video
    from fineact.data.video import probe_video

    total = probe_video(video).num_frames
    rng = np.random.default_rng(seed)
    starts = sorted(int(s) for s in rng.choice(total - ELEMENT_FRAMES, count, replace=False))
    windows = [Window(f"element_{s:07d}", s, s + ELEMENT_FRAMES) for s in starts]
    folder.mkdir(parents=True, exist_ok=True)
    todo = [w for w in windows if not (folder / f"{w.clip_id}.mp4").is_file()]
    if todo:
        _trim_video(str(video), todo, str(folder), ENCODING)
    return [(str(folder / f"{w.clip_id}.mp4"), w.first) for w in windows]


def _jobs(clips: list[tuple[str, int]], case: str, seed: int) -> list[tuple[str, int, list[int]]]:
    num, step = CASES[case]
    rng = np.random.default_rng(seed)
    jobs = []
    for clip, start in clips:
        offset = int(rng.integers(0, ELEMENT_FRAMES - WINDOW + 1))
        jobs.append((clip, start, list(range(offset, offset + num * step, step))))
    return jobs


def _read_batch(args) -> float:
    """One worker's share of a batch; returns its CPU seconds."""
    kind, video, jobs = args
    from fineact.data.video import read_frames
    from fineact.data.video_pool import read_window

    cpu = time.process_time()
    for clip, start, indices in jobs:
        if kind == "untrimmed":
            read_window(video, [start + i for i in indices], decode_threads=1)
        else:
            read_frames(clip, indices, decode_threads=1)
    return time.process_time() - cpu


def _check_same_frames(video: str, jobs) -> float:
    from fineact.data.video import read_frames
    from fineact.data.video_pool import read_window

    clip, start, indices = jobs[0]
    a = read_window(video, [start + i for i in indices]).astype(np.int16)
    b = read_frames(clip, indices).astype(np.int16)
    assert a.shape == b.shape
    return float(np.abs(a - b).mean())


def measure(video: str, clips, workers: int, repeats: int, seed: int) -> list[dict]:
    rows = []
    with mp.get_context("spawn").Pool(workers) as pool:
        for case in CASES:
            jobs = _jobs(clips, case, seed)
            shares = [jobs[w::workers] for w in range(workers)]
            timings = {"untrimmed": [], "trimmed": []}
            cpus = {"untrimmed": [], "trimmed": []}
            for repeat in range(repeats + 1):  # the first round warms up (opens the videos), not counted
                for kind in ("untrimmed", "trimmed") if repeat % 2 == 0 else ("trimmed", "untrimmed"):
                    begin = time.perf_counter()
                    cpu = sum(pool.map(_read_batch, [(kind, video, share) for share in shares]))
                    wall = time.perf_counter() - begin
                    if repeat:
                        timings[kind].append(wall)
                        cpus[kind].append(cpu)
            medians = {k: statistics.median(v) for k, v in timings.items()}
            cpu_ms = {k: 1000 * statistics.median(v) / len(jobs) for k, v in cpus.items()}
            rows.append({"case": case, "workers": workers,
                         "untrimmed_clips_per_s": len(jobs) / medians["untrimmed"],
                         "trimmed_clips_per_s": len(jobs) / medians["trimmed"],
                         "untrimmed_cpu_ms": cpu_ms["untrimmed"], "trimmed_cpu_ms": cpu_ms["trimmed"],
                         "time_ratio": medians["untrimmed"] / medians["trimmed"],
                         "cpu_ratio": cpu_ms["untrimmed"] / cpu_ms["trimmed"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the long video (default 30)")
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of the long video (default 1280x720)")
    parser.add_argument("--clips", type=int, default=24, help="element windows per batch (default 24)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=".fineact_cache/bench_untrimmed", help="where the videos are kept")
    parser.add_argument("--name", default="untrimmed", help="results file name (benchmarks/results/NAME.json)")
    args = parser.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.lower().split("x"))
    video = cache / f"long_{args.minutes:g}min_{width}x{height}.mp4"
    make_long_video(video, args.minutes, width, height)
    clips = make_clips(video, cache / f"clips_{video.stem}_seed{args.seed}", args.clips, args.seed)
    noise = _check_same_frames(str(video), _jobs(clips, "dense 32x2", args.seed))
    rows = [row for w in args.workers for row in measure(str(video), clips, w, args.repeats, args.seed)]
    print(f"long video: {args.minutes:g} min, {width}x{height} at {FPS} fps, keyframe every {GOP} frames; "
          f"{len(clips)} elements of {ELEMENT_FRAMES} frames; mean |untrimmed - trimmed| = {noise:.2f} grey levels")
    print_table(["case", "workers", "untrimmed clips/s", "trimmed clips/s", "untrimmed CPU ms", "trimmed CPU ms",
                 "time ratio", "CPU ratio"],
                [[r["case"], r["workers"], r["untrimmed_clips_per_s"], r["trimmed_clips_per_s"],
                  r["untrimmed_cpu_ms"], r["trimmed_cpu_ms"], r["time_ratio"], r["cpu_ratio"]] for r in rows])
    path = write_results(args.name, {"minutes": args.minutes, "size": [width, height], "fps": FPS, "gop": GOP,
                                     "element_frames": ELEMENT_FRAMES, "window": WINDOW, "clips": len(clips),
                                     "repeats": args.repeats, "encoding": ENCODING, "mean_abs_difference": noise,
                                     "target_time_ratio": 1.5, "rows": rows})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
