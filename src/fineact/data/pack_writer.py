"""`fineact pack`: write one split of a config as a pack of LitData chunks (data/packs.py), resumably.

Records are written in the split's sample order, so record i is sample i of the annotation file; encoding runs
in `workers` processes (ordered), writing in this one. Each shard is one LitData chunk of about `shard_bytes`,
written by its own `BinaryWriter` into `.writing/` and moved into the pack when complete; `fineact_pack.progress`
then records it. An interrupted pack (Ctrl-C, a crash, a lost machine) therefore holds only complete shards,
and running the same command again starts after the last one. When every sample is written, LitData's
`merge` joins the shards' indexes into `index.json` and `fineact_pack.json` is written last: a folder with it is
a complete pack.
"""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
import shutil
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
from omegaconf import DictConfig

from fineact.data.annotations import Sample
from fineact.data.packs import PACK_INDEX, PackIndex, data_fingerprint, record_of
from fineact.data.video import probe_video, read_frames
from fineact.errors import ConfigError, VideoError

PROGRESS = "fineact_pack.progress"
WRITING = ".writing"
# Re-encoded windows: H.264 at a quality close to the sources' (crf 18-23 is x264's "visually lossless" range).
X264_OPTIONS = {"crf": "20", "preset": "fast"}
FRAMES_PER_READ = 32
FOLDER_FPS = 30  # frame folders carry no rate; their windows are encoded at this one


def parse_size(text: str) -> int:
    """'256MB', '1GB', '512KB' or a number of bytes."""
    units = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "B": 1}
    upper = text.strip().upper()
    for unit, factor in units.items():
        if upper.endswith(unit) and upper[: -len(unit)].strip().replace(".", "", 1).isdigit():
            return int(float(upper[: -len(unit)]) * factor)
    if upper.isdigit():
        return int(upper)
    raise ConfigError(f"--shard-size: expected a size such as 256MB, 1GB or a number of bytes, found {text!r}")


# ------------------------------------------------------------------------------------------- one sample


def encoded_sample(job: tuple[int, Sample, dict]) -> tuple[int, dict, int]:
    """(position, record, source bytes) of one sample: the whole file's bytes, or its window re-encoded.

    A window's source bytes are its share of the file (frames in the window / frames in the file)."""
    position, sample, read_options = job
    if sample.is_frame_folder:
        read_options = {"filename_template": sample.filename_template, "start_index": sample.start_index}
    try:
        info = probe_video(sample.source, **read_options)
        # The window's length exactly as the file-reading dataset counts it (VideoClipDataset.frame_count).
        if sample.end_frame is not None:
            count = sample.end_frame - sample.start_frame
        elif sample.num_frames is not None:
            count = sample.num_frames
        else:
            count = info.num_frames - sample.start_frame
        if count <= 0:
            raise VideoError(f"{sample.source}: no frames in the window starting at frame {sample.start_frame}")
        whole_file = (not info.is_frame_folder and sample.start_frame == 0 and count == info.num_frames)
        if whole_file:
            video, encoding = Path(sample.source).read_bytes(), "copy"
        else:
            video, encoding = _encode_window(sample, count, info.fps, read_options), "libx264"
    except VideoError as error:
        raise VideoError(f"{sample.where}: {error} (fix or remove the line, then run `fineact pack` again: it "
                         f"resumes)") from None
    size = Path(sample.source).stat().st_size if not info.is_frame_folder else _folder_bytes(sample.source)
    size = size * count // info.num_frames  # a window counts its share of the source
    return position, record_of(position, sample, video, count, info.fps, encoding), size


def _encode_window(sample: Sample, count: int, fps: float | None, read_options: dict) -> bytes:
    """Frames [start_frame, start_frame + count) of the source as an H.264 MP4 (frame 0 = the window's first)."""
    rate = Fraction(fps).limit_denominator(1001) if fps else Fraction(FOLDER_FPS)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate, options=dict(X264_OPTIONS))
        stream.pix_fmt = "yuv420p"
        number = 0
        for first in range(sample.start_frame, sample.start_frame + count, FRAMES_PER_READ):
            last = min(first + FRAMES_PER_READ, sample.start_frame + count)
            frames = read_frames(sample.source, list(range(first, last)), **read_options)
            if number == 0:  # 4:2:0 chroma needs even sizes: an odd last row/column is dropped
                stream.height, stream.width = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
            for frame in frames:
                picture = av.VideoFrame.from_ndarray(frame[: stream.height, : stream.width], format="rgb24")
                picture.pts = number
                number += 1
                container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def _folder_bytes(folder: str) -> int:
    return sum(entry.stat().st_size for entry in os.scandir(folder) if entry.is_file())


# ---------------------------------------------------------------------------------------------- the pack


def pack_samples(samples: list[Sample], fingerprint: dict, split: str, out: Path, shard_bytes: int,
                 workers: int = 1, read_options: dict | None = None, progress: bool = True) -> PackIndex:
    """Write `samples` as a pack in `out` (resuming an interrupted one with the same fingerprint)."""
    from litdata.streaming.writer import BinaryWriter

    out = Path(out)
    state = _start_or_resume(out, fingerprint, split, len(samples))
    if state is None:
        return PackIndex.read(str(out))
    shutil.rmtree(out / WRITING, ignore_errors=True)
    start = state["shards"][-1]["end"] if state["shards"] else 0
    jobs = ((p, samples[p], read_options or {}) for p in range(start, len(samples)))
    writer, shard_start, shard_size = None, start, 0
    with _single_process_world(), _progress_bar(progress, len(samples), start, split) as bar:
        for position, record, source_size in _encoded(jobs, workers):
            if writer is not None and shard_size + len(record["video"]) > shard_bytes:
                _commit_shard(out, writer, state, shard_start, position)
                writer = None
            if writer is None:
                (out / WRITING).mkdir(parents=True, exist_ok=True)
                writer = BinaryWriter(str(out / WRITING), chunk_bytes=1 << 62, chunk_index=len(state["shards"]))
                shard_start, shard_size = position, 0
            writer[position] = record
            shard_size += len(record["video"])
            state["source_bytes"] += source_size
            bar.update(1)
        if writer is not None:
            _commit_shard(out, writer, state, shard_start, len(samples))
        BinaryWriter(str(out), chunk_bytes=1 << 62).merge(num_workers=len(state["shards"]))
    shutil.rmtree(out / WRITING, ignore_errors=True)
    pack_bytes = sum(f.stat().st_size for f in out.glob("chunk-*.bin"))
    index = PackIndex(split=split, num_samples=len(samples), fingerprint=fingerprint,
                      source_bytes=state["source_bytes"], pack_bytes=pack_bytes,
                      annotation_file=samples[0].annotation_file)
    index.write(out)
    (out / PROGRESS).unlink()
    return index


def _start_or_resume(out: Path, fingerprint: dict, split: str, num_samples: int) -> dict | None:
    """The progress of a pack in `out` (new, or interrupted with the same data); None when it is complete."""
    if (out / PACK_INDEX).is_file():
        done = PackIndex.read(str(out))
        if done.fingerprint == fingerprint and done.split == split:
            return None
        raise ConfigError(f"{out}: holds a complete pack of other data (split {done.split!r}); give another --out "
                          f"or remove the folder")
    if (out / PROGRESS).is_file():
        state = json.loads((out / PROGRESS).read_text())
        if state["fingerprint"] != fingerprint or state["split"] != split or state["num_samples"] != num_samples:
            raise ConfigError(f"{out}: holds an unfinished pack of other data (split {state['split']!r}, "
                              f"{state['num_samples']} samples); give another --out or remove the folder")
        _remove_uncommitted(out, len(state["shards"]))
        return state
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out}: not empty and not a pack; `fineact pack` writes into a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    state = {"fingerprint": fingerprint, "split": split, "num_samples": num_samples, "shards": [],
             "source_bytes": 0}
    _save_progress(out, state)
    return state


def _commit_shard(out: Path, writer, state: dict, first: int, end: int) -> None:
    """Finish the shard's chunk, move it and its index into the pack, then record it as done."""
    writer.done()
    number = len(state["shards"])
    writing = out / WRITING
    chunk = next(writing.glob("chunk-*.bin"))
    os.replace(chunk, out / chunk.name)
    os.replace(next(writing.glob("*.index.json")), out / f"{number}.index.json")
    state["shards"].append({"chunk": chunk.name, "start": first, "end": end})
    _save_progress(out, state)


def _remove_uncommitted(out: Path, committed: int) -> None:
    """Chunks or indexes of a shard that was being moved in when the pack was interrupted."""
    for path in [*out.glob("chunk-*.bin"), *out.glob("*.index.json")]:
        number = int(path.name.split(".")[0].split("-")[-1])
        if number >= committed:
            path.unlink()


def _save_progress(out: Path, state: dict) -> None:
    temporary = out / (PROGRESS + ".tmp")
    temporary.write_text(json.dumps(state))
    os.replace(temporary, out / PROGRESS)


def _encoded(jobs: Iterator, workers: int) -> Iterator[tuple[int, dict, int]]:
    """encoded_sample of every job, in order; in `workers` processes when more than one."""
    if workers <= 1:
        yield from map(encoded_sample, jobs)
        return
    context = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with context.Pool(workers) as pool:
        yield from pool.imap(encoded_sample, jobs)


@contextmanager
def _single_process_world():
    """LitData's writer counts the index files it merges per process of a distributed world: packing is one."""
    saved = {key: os.environ.pop(key) for key in ("WORLD_SIZE", "GLOBAL_RANK") if key in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


@contextmanager
def _progress_bar(enabled: bool, total: int, done: int, split: str):
    from tqdm import tqdm

    with tqdm(total=total, initial=done, desc=f"pack {split}", unit="clip", disable=not enabled) as bar:
        yield bar


def pack_split(cfg: DictConfig, split: str, out: str | Path, shard_bytes: int, workers: int = 1,
               progress: bool = True) -> PackIndex:
    """`fineact pack`: the config's `split` as a pack in `out`."""
    from fineact.engine.datamodule import read_split
    from fineact.engine.run import levels_from_config

    if cfg.data[split] is None:
        raise ConfigError(f"data.{split}: not configured, nothing to pack")
    samples = read_split(cfg, levels_from_config(cfg), split)
    if not samples:
        raise ConfigError(f"data.{split}: no samples to pack")
    read_options = {"filename_template": cfg.data.filename_template, "start_index": cfg.data.start_index}
    return pack_samples(samples, data_fingerprint(cfg, split), split, Path(out), shard_bytes, workers,
                        read_options, progress)
