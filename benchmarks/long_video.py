"""Memory of sliding windows over long videos: peak RSS of `predict_video` on a 10-minute and a 2-hour routine.

The routines are generated (``fineact.demo.untrimmed``: events with elements, no men's events) at low
resolution and frame rate (``--size`` px square, ``--fps``), each in its own process; then each video is run
through ``Predictor.predict_video`` + ``VideoTimeline.write`` in a FRESH process that reports its peak resident
set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``). Bounded memory means the 2-hour run peaks at about
the same RSS as the 10-minute one (the decode keeps at most one window of frames; per-window scores are a few
floats per class).

    python benchmarks/long_video.py [--multitask runs/demo/multitask/model.safetensors] [--minutes 10 120]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import print_table, write_results


def generate(folder: str, minutes: float, size: int, fps: int) -> None:
    from fineact.demo.routine import generate_routine

    video = generate_routine(folder, duration=60.0 * minutes, seed=2, fps=fps, size=size)
    print(json.dumps({"path": str(video.path), "frames": video.num_frames, "fps": video.fps,
                      "elements": len(video.elements)}))


def run(video: str, export: str | None, stride: int, out: str) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from windows import demo_levels, multitask_predictor

    predictor = multitask_predictor(export, demo_levels(export))
    start = time.perf_counter()
    result = predictor.predict_video(video, stride=stride)
    result.write(out)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"windows": result.window_info()["count"], "seconds": round(seconds, 1),
                      "peak_rss_mib": round(peak_kib / 1024, 1),
                      "segments": sum(not s.is_background for s in result.timeline.segments)}))


def child(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--multitask", default=None, help="the demo's multi-task export (default: random weights)")
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0, 120.0])
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--stride", type=int, default=32, help="frames between windows (memory does not depend "
                                                               "on it; time does)")
    parser.add_argument("--work", default=None, help="where the videos go (default: a temporary folder)")
    parser.add_argument("--name", default="long_video")
    parser.add_argument("--_generate", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--_run", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._generate:
        return generate(args._generate[0], float(args._generate[1]), args.size, args.fps)
    if args._run:
        return run(args._run[0], args.multitask, args.stride, args._run[1])
    work = Path(args.work or tempfile.mkdtemp(prefix="fineact_long_video_"))
    rows = []
    for minutes in args.minutes:
        folder = work / f"{minutes:g}min"
        video = child("--_generate", str(folder), str(minutes), "--size", str(args.size), "--fps", str(args.fps))
        extra = ["--multitask", args.multitask] if args.multitask else []
        measured = child("--_run", video["path"], str(folder / "out"), "--stride", str(args.stride), *extra)
        rows.append({"minutes": minutes, "frames": video["frames"], "elements": video["elements"], **measured})
    print(f"routines at {args.size} x {args.size} px, {args.fps} fps; stride {args.stride} frames; "
          f"model: {args.multitask or 'demo multi-task architecture, random weights'}")
    print_table(["video min", "frames", "windows", "wall s", "peak RSS MiB", "segments"],
                [[r["minutes"], r["frames"], r["windows"], r["seconds"], r["peak_rss_mib"], r["segments"]]
                 for r in rows])
    path = write_results(args.name, {"size": args.size, "fps": args.fps, "stride": args.stride,
                                     "model": args.multitask or "random", "runs": rows})
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
