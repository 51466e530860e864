"""Sliding-window throughput on CPU: windows/s and video-seconds per wall-second, and one-pass decode vs re-reading.

Models (stride 8 frames, batches of 16 windows):
* the demo's hierarchical multi-task network (three SlowOnly pathways 4x16 / 8x8 / 16x4 sharing one 64-frame
  window, 48 px crops): the export of `fineact demo` (``--multitask``), or the same architecture with random
  weights when no export is given (speed does not depend on the weights);
* TSM-R18, 8 segments over a 2.56 s window (the demo's training clip length), 112 px crops, random weights.

The video is a generated routine (``fineact.demo.untrimmed``: events with elements, 25 fps) at 128 px, so both
models resize it as their configs say. Timed: the whole `Predictor.predict_video` path (decode, transforms,
model, segment decoding), best of ``--repeats`` runs.

Frame delivery, without the model: every window's frames read once sequentially
(``fineact.windows.stream.window_frames``, the one-pass decode) vs each window read on its own with the
frame-accurate reader (``fineact.data.video.read_frames_multi``: open, seek to a keyframe, decode to the
window's last frame: what a loop of `predict` calls over windows would do). The two alternate, repeat by repeat,
so machine load affects both alike; the ratio is re-read time / one-pass time. Frames are checked equal.

    python benchmarks/windows.py [--multitask runs/demo/multitask/model.safetensors] [--seconds 60] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import interleaved_median_times, print_table, write_results


def tsm_predictor(levels, size: int = 112):
    from fineact.config import load_config
    from fineact.engine.run import build_module
    from fineact.predict import Predictor

    cfg = load_config(base={"name": "bench_tsm", "level": "element",
                            "model": {"name": "tsm_r18", "args": {"num_segments": 8}},
                            "data": {"resize": [128], "crop_size": size}})
    predictor = Predictor(build_module(cfg, levels))
    predictor.training_clips = {"seconds": 2.56, "frames": 64, "fps": 25.0}  # the demo's clips
    return predictor


def multitask_predictor(export: str | None, levels):
    from fineact.config import load_config
    from fineact.demo.run import BACKBONE, PATHWAYS
    from fineact.engine.run import build_module
    from fineact.predict import Predictor, load_model

    if export:
        return load_model(export)
    cfg = load_config(base={"name": "bench_multitask",
                            "model": {"name": "hierarchical_multitask",
                                      "args": {"pathway_depth": BACKBONE["depth"],
                                               "base_channels": BACKBONE["base_channels"],
                                               "pathway_clips": {k: list(v) for k, v in PATHWAYS.items()}}},
                            "data": {"resize": [56], "crop_size": 48}})
    return Predictor(build_module(cfg, levels))


def demo_levels(export: str | None):
    from fineact.demo.dataset import category_lines, set_lines
    from fineact.interop.sidecar import read_sidecar, sidecar_path
    from fineact.labels import LabelLevels, finegym_levels

    if export:
        return LabelLevels.from_dict(read_sidecar(sidecar_path(Path(export).with_suffix(".safetensors")))["levels"])
    folder = Path(tempfile.mkdtemp())
    (folder / "categories.txt").write_text("\n".join(category_lines()) + "\n")
    (folder / "sets.txt").write_text("\n".join(set_lines()) + "\n")
    return finegym_levels(folder / "categories.txt", folder / "sets.txt")


def time_model(name: str, predictor, video: Path, duration: float, stride: int, repeats: int) -> dict:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = predictor.predict_video(video, stride=stride)
        best = min(best, time.perf_counter() - start)
    windows = result.window_info()["count"]
    return {"model": name, "windows": windows, "span_frames": result.window_info()["span_frames"],
            "seconds": round(best, 3), "windows_per_s": round(windows / best, 2),
            "video_s_per_wall_s": round(duration / best, 2)}


def time_delivery(video: Path, plan, repeats: int) -> dict:
    from fineact.data.video import read_frames_multi
    from fineact.windows.stream import window_frames

    def one_pass():
        for _ in window_frames(video, plan):
            pass

    def re_read():
        for i in range(plan.num_windows):
            read_frames_multi(video, plan.window(i))

    first = dict(next(iter(window_frames(video, plan)))[1])
    again = read_frames_multi(video, plan.window(0))
    assert all(np.array_equal(first[k], again[k]) for k in first), "the two readers disagree"
    times = interleaved_median_times({"one_pass": one_pass, "re_read": re_read}, repeats=repeats, warmup=0)
    return {"windows": plan.num_windows, "one_pass_s": round(times["one_pass"], 3),
            "re_read_s": round(times["re_read"], 3), "ratio": round(times["re_read"] / times["one_pass"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--multitask", default=None, help="the demo's multi-task export (default: random weights)")
    parser.add_argument("--seconds", type=float, default=60.0, help="routine length")
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    parser.add_argument("--name", default="windows")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from fineact.demo.routine import generate_routine
    from fineact.windows.plan import plan_windows

    work = Path(tempfile.mkdtemp(prefix="fineact_windows_bench_"))
    video = generate_routine(work, duration=args.seconds, seed=0, size=128)
    duration = video.num_frames / video.fps
    levels = demo_levels(args.multitask)
    multitask = multitask_predictor(args.multitask, levels)
    rows = [time_model("demo multi-task (48 px)", multitask, video.path, duration, args.stride, args.repeats),
            time_model("TSM-R18 8 seg (112 px)", tsm_predictor(levels), video.path, duration, args.stride,
                       args.repeats)]
    plan = plan_windows(multitask.module.model.clip_specs, video.num_frames, float(video.fps), args.stride)
    delivery = time_delivery(video.path, plan, args.repeats)
    print(f"routine: {duration:.1f} s, {video.num_frames} frames at {video.fps} fps, 128 px; stride {args.stride}; "
          f"torch threads {torch.get_num_threads()}")
    print_table(["model", "windows", "span", "wall s", "windows/s", "video s / wall s"],
                [[r["model"], r["windows"], r["span_frames"], r["seconds"], r["windows_per_s"],
                  r["video_s_per_wall_s"]] for r in rows])
    print()
    print_table(["frame delivery (multi-task windows)", "windows", "one pass s", "re-read s", "re-read / one pass"],
                [["one sequential decode vs read per window", delivery["windows"], delivery["one_pass_s"],
                  delivery["re_read_s"], delivery["ratio"]]])
    path = write_results(args.name, {"video": {"seconds": duration, "frames": video.num_frames, "fps": video.fps,
                                               "size": 128},
                                     "stride": args.stride, "multitask_weights": args.multitask or "random",
                                     "models": rows, "delivery": delivery})
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
