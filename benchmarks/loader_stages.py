"""Where a training clip's time goes, stage by stage, and how close the DataLoader comes to decoding alone.

    python benchmarks/loader_stages.py [--clips 8] [--repeats 3] [--sizes 320x240 640x360 1280x720]
                                       [--pipelines float uint8] [--threads 1 2]

Synthetic 4-second H.264 videos (30 fps, GOP 48, 3 B-frames) at each source size; the train pipeline of the
config defaults (resize short side 256, MultiScaleCrop 224, flip) on sparse 4x16, dense 32x2 and the
hierarchical network's three pathways (4x16 + 8x8 + 32x2, one decode of their 32 frames, transformed once).
Pipelines: "float" is the one before issue 18 (float32 from the first step, the whole frame resized and then
the crop, normalised in the worker); "uint8" is fineact's (the crop cut from the source frame and resized to
224 in one step, the flip, in uint8; normalised on the device after the transfer). Both run through today's
dataset, which transforms the pathways' union once.

Host memory as `fineact train` sets it (--host-memory reuse; the "before" results were taken with the C
library's defaults, "release").

(a) Per-stage milliseconds for one clip (medians over the clips, in this process with 1 torch thread as in a
    DataLoader worker, decoder threads 1):
    decode = demux + decode (the reader's time less its colour conversion), convert = YUV -> RGB (with the
    scaling when FFmpeg's scaler resizes), resize = full-frame resize in torch (float only: uint8 crops are cut
    from the source frame), crop/flip = crop, the crop's resize to 224 and the flip (uint8: the flip is only
    drawn in the worker and done on the device), worker float/layout = what the worker does after the crops (float: normalisation and
    model layout; uint8: the loader layout only; both: taking each pathway's frames from the union the
    transform ran on once), collate = the loader's collate_batch per clip (batch 4),
    transfer = a worker's batch reaching the main process (a DataLoader with 1 worker serving ready-made items) less the
    collation; total = the worker's and the transfer's time. "device norm" (uint8 only, not in the total) is
    what the device does after the transfer, timed here on this CPU: the flips (half the clips) and the float
    conversion + normalisation.
(b) DataLoader clips/s with 1 and 2 workers, batch 4: "decode-only" (the same Dataset reading the same frames,
    transform replaced by nothing) vs each pipeline, epochs interleaved in one run (persistent workers, one
    warm-up epoch each) so the machine's load hits all alike; clips/s = clips / median epoch time; ratio =
    pipeline / decode-only taken round by round (the two epochs of a round ran back to back): the median of the
    rounds and their range.
(c) Decoder threads per worker (data.decode_threads) against more workers: uint8 pipeline, dense 32x2, every
    (workers, threads) pair of --workers x --threads, interleaved; ratio vs decode-only with 1 worker, 1 thread.
(d) Pixel difference of the uint8 pipeline from the float one (same clips, crops and flips): |uint8 - float|
    in grey levels (0-255) before normalisation.

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_host_memory_option, apply_host_memory, print_table, write_results  # noqa: E402

from fineact.data import transforms as T  # noqa: E402
from fineact.data.annotations import Sample  # noqa: E402
from fineact.data.datasets import ClipDatasetOptions, KeyedSampler, VideoClipDataset  # noqa: E402
from fineact.data.sampling import DenseSampler, MultiPathwaySampler  # noqa: E402
from fineact.data.model_input import Normalization, collate_batch, flip_marked  # noqa: E402
from fineact.data.video import FrameUnion, read_frames_union  # noqa: E402

FPS, SECONDS, GOP, BFRAMES, BATCH = 30, 4, 48, 3, 4
SIZES = ("320x240", "640x360", "1280x720")
CASES = {
    "sparse 4x16": lambda: DenseSampler(4, 16),
    "dense 32x2": lambda: DenseSampler(32, 2),
    "3 pathways": lambda: MultiPathwaySampler({"event": (4, 16), "set": (8, 8), "element": (32, 2)}),
}
STAGES = ("decode", "convert", "resize", "crop/flip", "float+norm", "collate", "transfer")
STAGE_OF_STEP = {"ToFloat": "float+norm", "AsTensor": "convert", "Resize": "resize", "MultiScaleCrop": "crop/flip",
                 "RandomHorizontalFlip": "crop/flip", "Normalize": "float+norm", "ToModelLayout": "float+norm",
                 "ToLoaderLayout": "float+norm"}


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


def float_pipeline(normalize: bool = True):
    """The pipeline before issue 18: float32 from the first step, everything in the worker."""
    steps = [T.ToFloat(), T.Resize(256), T.MultiScaleCrop(224), T.RandomHorizontalFlip(0.5)]
    return T.Compose(steps + ([T.Normalize()] if normalize else []) + [T.ToModelLayout()])


def uint8_pipeline():
    """fineact's train pipeline, as the datamodule builds it: uint8 through the loader, the flip drawn in the
    worker (ClipDatasetOptions.device_flip), mirrored and normalised on the device."""
    return T.build_train_transform("multiscale", 224, 256, flip=False), T.RandomHorizontalFlip(0.5)


PIPELINES = {"float": lambda: (float_pipeline(), None), "uint8": uint8_pipeline}  # name -> (transform, device flip)


# -------------------------------------------------------------------------------------------- (a) stages


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def stage_times(path: Path, frames_av: list, case: str, pipeline: str, clips: int) -> dict[str, float]:
    """Median milliseconds per stage for one clip of `case`."""
    transform, device_flip = PIPELINES[pipeline]()
    sampler = CASES[case]()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a DataLoader worker
    per_stage: dict[str, list[float]] = {stage: [] for stage in STAGES}
    item = None
    for k in range(clips + 1):  # clip 0 warms up
        rng = np.random.default_rng(k)
        indices = sampler.indices(len(frames_av), "train", rng)
        union, read_s = timed(lambda: read_frames_union(path, indices, decode_threads=1))
        unique = FrameUnion.of(indices)[0]
        _, convert_s = timed(lambda: [frames_av[i].to_ndarray(format="rgb24") for i in unique])
        times = dict.fromkeys(STAGES, 0.0)
        times["decode"], times["convert"] = read_s - convert_s, convert_s
        clip_dict, label = {"clip": union.frames}, 0  # as the dataset does: the pathways' union, once
        for step in transform.transforms:
            (clip_dict, label), seconds = timed(lambda: step.apply(clip_dict, label, rng))
            times[STAGE_OF_STEP[type(step).__name__]] += seconds
        if device_flip is not None:
            (_, label), seconds = timed(lambda: device_flip.decide(label, rng))
            times["crop/flip"] += seconds
        pathways, take_s = timed(lambda: union.take(clip_dict["clip"]))
        times["float+norm"] += take_s
        clips_out = pathways["clip"] if list(pathways) == ["clip"] else pathways
        item = {"clips": clips_out, "label": torch.tensor(0), "index": torch.tensor(k), "skipped": ""}
        _, collate_s = timed(lambda: collate_batch([item] * BATCH))
        times["collate"] = collate_s / BATCH
        if k:
            for stage, seconds in times.items():
                per_stage[stage].append(seconds)
    torch.set_num_threads(threads)
    medians = {stage: 1e3 * statistics.median(values) for stage, values in per_stage.items()}
    medians["transfer"] = max(0.0, 1e3 * transfer_seconds(item, clips) - medians["collate"])
    medians["total"] = sum(medians.values())
    batch = collate_batch([item] * BATCH)["clips"]
    is_uint8 = next(iter(batch.values())).dtype == torch.uint8 if isinstance(batch, dict) else batch.dtype == torch.uint8
    if is_uint8:  # half the clips flipped, as the flip's p = 0.5 makes them on average
        flipped = torch.arange(BATCH) % 2 == 0
        norm = [timed(lambda: Normalization().clips(flip_marked(batch, flipped)))[1] for _ in range(3)]
        medians["device_norm"] = 1e3 * statistics.median(norm) / BATCH
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
    loader = DataLoader(_Repeat(item, BATCH * max(2, clips // BATCH)), batch_size=BATCH, num_workers=1,
                        collate_fn=collate_batch)
    next(iter(loader))  # worker start-up is not a per-clip cost
    iterator = iter(loader)
    start = time.perf_counter()
    count = sum(batch["label"].numel() for batch in iterator)
    return (time.perf_counter() - start) / count


# ---------------------------------------------------------------------------------------- (b) DataLoader


def nothing(frames, label, rng):
    """The decode-only 'transform': drop the frames (a 1-pixel clip per frame travels instead)."""
    return torch.zeros((1, len(frames), 1, 1), dtype=torch.uint8), label


def make_loader(path: Path, case: str, pipeline: tuple, clips: int, workers: int, decode_threads: int = 1) -> DataLoader:
    """A loader of `clips` training clips of `path`; `pipeline` = (transform, device flip or None)."""
    transform, device_flip = pipeline
    samples = [Sample(source=str(path), label=0, sample_id=str(i)) for i in range(clips)]
    options = ClipDatasetOptions(mode="train", decode_threads=decode_threads, device_flip=device_flip)
    dataset = VideoClipDataset(samples, CASES[case](), transform, options, 224)
    return DataLoader(dataset, batch_size=BATCH, num_workers=workers, persistent_workers=True,
                      collate_fn=collate_batch,
                      sampler=KeyedSampler(len(dataset), shuffle=True, seed=0))


def interleaved_epochs(loaders: dict[str, DataLoader], repeats: int) -> dict[str, list[float]]:
    """Seconds of each loader's epochs, the loaders taken in turn round after round (round 0, which starts the
    workers and warms up, is not kept): a slow spell of the machine hits every loader of its round."""
    epochs: dict[str, list[float]] = {name: [] for name in loaders}
    for rep in range(repeats + 1):
        for name, loader in loaders.items():
            _, seconds = timed(lambda: sum(batch["label"].numel() for batch in loader))
            if rep:
                epochs[name].append(seconds)
    return epochs


def interleaved_rates(loaders: dict[str, DataLoader], clips: int, repeats: int) -> dict[str, float]:
    """Clips/s of each loader: 1 / median epoch time, epochs of all loaders taken in turn."""
    return {name: clips / statistics.median(values) for name, values in interleaved_epochs(loaders, repeats).items()}


def paired_ratios(epochs: dict[str, list[float]], name: str, baseline: str) -> list[float]:
    """rate(name) / rate(baseline) round by round: the two epochs of one round ran back to back."""
    return [base / own for own, base in zip(epochs[name], epochs[baseline])]


def loader_rates(path: Path, case: str, pipelines: list[str], clips: int, repeats: int, workers: int) -> list[dict]:
    loaders = {"decode-only": make_loader(path, case, (nothing, None), clips, workers)}
    loaders |= {name: make_loader(path, case, PIPELINES[name](), clips, workers) for name in pipelines}
    epochs = interleaved_epochs(loaders, repeats)
    rates = {name: clips / statistics.median(values) for name, values in epochs.items()}
    rows = []
    for name in pipelines:
        ratios = paired_ratios(epochs, name, "decode-only")
        rows.append({"pipeline": name, "workers": workers, "decode_only_clips_per_s": rates["decode-only"],
                     "clips_per_s": rates[name], "ratio_vs_decode_only": statistics.median(ratios),
                     "ratio_min": min(ratios), "ratio_max": max(ratios)})
    if "float" in rates:
        for row in rows:
            row["speedup_vs_float"] = rates[row["pipeline"]] / rates["float"]
    return rows


def thread_rates(path: Path, workers: list[int], threads: list[int], clips: int, repeats: int) -> list[dict]:
    """(c): the uint8 pipeline on dense 32x2 with every (workers, decoder threads) pair, interleaved."""
    case = "dense 32x2"
    loaders = {"decode-only": make_loader(path, case, (nothing, None), clips, 1)}
    for w in workers:
        for t in threads:
            loaders[f"{w}x{t}"] = make_loader(path, case, uint8_pipeline(), clips, w, decode_threads=t)
    rates = interleaved_rates(loaders, clips, repeats)
    return [{"workers": int(name.split("x")[0]), "decode_threads": int(name.split("x")[1]), "clips_per_s": rate,
             "ratio_vs_decode_only_1_worker": rate / rates["decode-only"]}
            for name, rate in rates.items() if name != "decode-only"]


def pixel_difference(frames_av: list, clips: int) -> dict:
    """(d): |uint8 pipeline - float pipeline| in grey levels, same clips, crops and flips."""
    diffs = []
    for k in range(clips):
        indices = np.random.default_rng(k).choice(len(frames_av), 8, replace=False)
        clip = np.stack([frames_av[i].to_ndarray(format="rgb24") for i in indices])
        before, _ = float_pipeline(normalize=False)(clip, rng=np.random.default_rng(k))
        # the flip in the transform: bitwise the device's (tests/test_model_input.py)
        after, _ = T.build_train_transform("multiscale", 224, 256)(clip, rng=np.random.default_rng(k))
        diffs.append((after.float() - before).abs().flatten())
    d = torch.cat(diffs)
    return {"mean": float(d.mean()), "p99": float(d.quantile(0.99)) if d.numel() < 2**24 else float(d[::7].quantile(0.99)),
            "max": float(d.max()), "share_above_1": float((d > 1).float().mean())}


# ------------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=8, help="clips per stage measurement and per loader epoch")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per loader (interleaved)")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), help="source sizes WxH")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--pipelines", nargs="+", default=list(PIPELINES), choices=list(PIPELINES))
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2],
                        help="decoder threads per worker for (c); none skips (c)")
    parser.add_argument("--name", default="loader_stages", help="results/<name>.json")
    add_host_memory_option(parser)
    args = parser.parse_args(argv)
    apply_host_memory(args.host_memory)
    load_start = os.getloadavg()
    stage_rows, loader_rows, thread_rows, pixel_rows = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="fineact_stages_") as tmp:
        for size in args.sizes:
            width, height = (int(v) for v in size.split("x"))
            path = Path(tmp) / f"video_{size}.mp4"
            make_video(path, width, height)
            frames_av = decoded_frames(path)
            for case in args.cases:
                for pipeline in args.pipelines:
                    ms = stage_times(path, frames_av, case, pipeline, args.clips)
                    stage_rows.append({"source": size, "case": case, "pipeline": pipeline, **ms})
                for workers in args.workers:
                    for row in loader_rates(path, case, args.pipelines, args.clips, args.repeats, workers):
                        loader_rows.append({"source": size, "case": case, **row})
            if args.threads:
                thread_rows += [{"source": size, **row}
                                for row in thread_rates(path, args.workers, args.threads, args.clips, args.repeats)]
            if set(args.pipelines) >= {"float", "uint8"}:
                pixel_rows.append({"source": size, **pixel_difference(frames_av, args.clips)})
            del frames_av
    print("(a) milliseconds per clip, by stage (decoder threads 1, batch 4)")
    print_table(["source", "case", "pipeline", *STAGES, "total", "device norm"],
                [[r["source"], r["case"], r["pipeline"], *(r[s] for s in STAGES), r["total"],
                  r.get("device_norm", "")] for r in stage_rows])
    print("\n(b) DataLoader clips/s, batch 4: decode-only vs each pipeline, interleaved epochs")
    print_table(["source", "case", "pipeline", "workers", "decode-only", "clips/s", "ratio", "ratio range",
                 "vs float"],
                [[r["source"], r["case"], r["pipeline"], r["workers"], r["decode_only_clips_per_s"],
                  r["clips_per_s"], r["ratio_vs_decode_only"], f"{r['ratio_min']:.2f}-{r['ratio_max']:.2f}",
                  r.get("speedup_vs_float", "")] for r in loader_rows])
    if thread_rows:
        print("\n(c) uint8 pipeline, dense 32x2: workers x decoder threads (ratio vs decode-only, 1 worker 1 thread)")
        print_table(["source", "workers", "threads", "clips/s", "ratio"],
                    [[r["source"], r["workers"], r["decode_threads"], r["clips_per_s"],
                      r["ratio_vs_decode_only_1_worker"]] for r in thread_rows])
    if pixel_rows:
        print("\n(d) |uint8 pipeline - float pipeline|, grey levels")
        print_table(["source", "mean", "p99", "max", "share > 1"],
                    [[r["source"], r["mean"], r["p99"], r["max"], r["share_above_1"]] for r in pixel_rows])
    payload = {"settings": vars(args), "video": {"fps": FPS, "seconds": SECONDS, "gop": GOP, "bframes": BFRAMES,
                                                  "codec": "libx264 preset fast crf 23"},
               "load_average_start": load_start, "load_average_end": os.getloadavg(),
               "stages_ms": stage_rows, "loader": loader_rows, "decoder_threads": thread_rows,
               "pixel_difference": pixel_rows}
    print(f"load average (1, 5, 15 min): start {load_start}, end {payload['load_average_end']}")
    print(f"wrote {write_results(args.name, payload)}")


if __name__ == "__main__":
    main()
