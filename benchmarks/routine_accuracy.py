"""Accuracy of sliding-window timelines on a generated routine with known element times.

The routine (``fineact.demo.routine.generate_routine``: women's events with elements, 25 fps, 64 px, drawn with
the demo's scenes) goes through ``Predictor.predict_video`` once; each decoding option re-decodes the same
window scores. Per level: frame accuracy (background a class), frame accuracy inside the truth's labelled frames,
and element-segment recall at temporal IoU 0.5 (``fineact.demo.routine`` documents the metrics). What `fineact
demo` reports at its end, for any checkpoint.

    python benchmarks/routine_accuracy.py --checkpoint runs/demo/multitask/model.safetensors [--seconds 60] [--seed 1]
"""

from __future__ import annotations

import argparse
import tempfile

from common import write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a model trained on the demo's trimmed clips")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--name", default="routine_accuracy")
    args = parser.parse_args()
    from fineact.demo.routine import evaluate_routine, format_routine_scores, generate_routine
    from fineact.predict import load_model

    video = generate_routine(tempfile.mkdtemp(prefix="fineact_routine_"), duration=args.seconds, seed=args.seed)
    result, scores = evaluate_routine(load_model(args.checkpoint), video, stride=args.stride)
    print(f"routine: {video.duration:.1f} s, {len(video.events)} events, {len(video.elements)} elements; "
          f"{result.window_info()['count']} windows of {result.window_info()['span_frames']} frames, stride "
          f"{args.stride}")
    print(format_routine_scores(scores))
    path = write_results(args.name, {"routine": {"seconds": video.duration, "events": len(video.events),
                                                 "elements": len(video.elements), "seed": args.seed},
                                     "window": result.window_info(), "scores": scores})
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
