"""Sliding-window recognition over long (untrimmed) videos, and a timeline a person can read.

    predictor = fineact.load_model("runs/demo/multitask/model.safetensors")
    result = predictor.predict_video("routine.mp4", stride=8)
    result.write("runs/routine", render="annotated.mp4")

One job per module, in the order the data flows:

- `plan`: which frames each window reads (the model's clip_specs, slid every `stride` frames);
- `stream`: one sequential decode of the video serving every window from a bounded buffer;
- `scoring`: windows -> the model's test views -> batches -> per-window probabilities of every level;
- `segments`: smoothing, background, hierarchy-consistent labels -> segments (the method is documented there);
- `outputs`: timeline.json, segments.csv, timeline.png; `render`: the annotated video;
- `evaluation`: frame-level accuracy and segment recall at a temporal IoU against known truth;
- `training_clips`: the typical training clip duration recorded at training time (segment models' window);
- `recognise`: all of it for one video (`recognise_video`, behind `Predictor.predict_video`).
"""

from fineact.windows.evaluation import TruthSegment, frame_accuracy, segment_recall, truth_frame_labels
from fineact.windows.plan import WindowPlan, plan_windows
from fineact.windows.recognise import DEFAULT_STRIDE, VideoTimeline, recognise_video
from fineact.windows.segments import BACKGROUND, SegmentOptions, Timeline, decode_segments

__all__ = ["BACKGROUND", "DEFAULT_STRIDE", "SegmentOptions", "Timeline", "TruthSegment", "VideoTimeline",
           "WindowPlan", "decode_segments", "frame_accuracy", "plan_windows", "recognise_video",
           "segment_recall", "truth_frame_labels"]
