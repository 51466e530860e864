"""Writing the demo dataset: a small FineGym look-alike on disk, in FineGym's exact file formats.

`ensure_dataset(root, **default_demo_params())` writes, under `root`, real H.264 clips and label files in
FineGym's exact formats (split files `<clip_id> <Clabel>`, a gym99-style category file, set_categories.txt), so
the demo runs through the same readers as the real dataset. The classes are in `fineact.demo.classes`; what a
clip shows, and why each level rests on its own kind of evidence, in `fineact.demo.scenes`.

Here: the parameters, the plan (clip ids, labels and per-clip seeds), encoding, the label files and README, and
generation into a scratch folder that is renamed into place, reused while its manifest matches. Every clip
depends only on its own seed, so the result does not depend on the number of worker processes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import textwrap
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable

import numpy as np

from fineact.demo.classes import ELEMENTS, EVENTS, SETS
from fineact.demo.scenes import describe, render_clip
from fineact.errors import ConfigError, FineactError

# The generator's name in manifests: the module's former path, kept so that datasets cached before the move to
# fineact.demo are still recognised (reused, or replaced) instead of refused as a folder of unknown content.
GENERATOR = "fineact.data.synthetic"
GENERATOR_VERSION = 2  # bump whenever the drawing or the file layout changes: cached datasets then regenerate

MANIFEST_NAME = "manifest.json"
VIDEOS_DIR = "videos"
FILE_PREFIX = "synth16"  # like "gym99": the number of element classes


# ----------------------------------------------------------------------------------------------------------
# Parameters and the result
# ----------------------------------------------------------------------------------------------------------

def default_demo_params() -> dict[str, int]:
    """The demo's dataset: 64 px, 64 frames at 25 fps, 40 train and 10 val clips per element (640 + 160)."""
    return {"num_train": 40 * len(ELEMENTS), "num_val": 10 * len(ELEMENTS), "size": 64, "num_frames": 64,
            "fps": 25, "seed": 0}


@dataclass(frozen=True)
class SyntheticDataset:
    """Where a generated dataset lives, and what it holds (no label-levels object: read the files for that)."""

    root: Path
    params: dict[str, int]
    train_list: Path = field(init=False)
    val_list: Path = field(init=False)
    categories_file: Path = field(init=False)
    set_categories_file: Path = field(init=False)
    videos_dir: Path = field(init=False)
    readme: Path = field(init=False)
    manifest: Path = field(init=False)
    num_elements: int = len(ELEMENTS)
    num_sets: int = len(SETS)
    num_events: int = len(EVENTS)

    def __post_init__(self) -> None:
        for name, path in _layout(self.root).items():
            object.__setattr__(self, name, path)

    def video_path(self, clip_id: str) -> Path:
        return self.videos_dir / f"{clip_id}.mp4"


def _layout(root: Path) -> dict[str, Path]:
    return {"train_list": root / f"{FILE_PREFIX}_train_element.txt",
            "val_list": root / f"{FILE_PREFIX}_val_element.txt",
            "categories_file": root / f"{FILE_PREFIX}_categories.txt",
            "set_categories_file": root / "set_categories.txt",
            "videos_dir": root / VIDEOS_DIR,
            "readme": root / "README.txt",
            "manifest": root / MANIFEST_NAME}


def _check_params(num_train: int, num_val: int, size: int, num_frames: int, fps: int, seed: int) -> dict[str, int]:
    rules = {"num_train": (num_train, 0, "a count >= 0"), "num_val": (num_val, 0, "a count >= 0"),
             "size": (size, 16, "an even number of pixels >= 16 (H.264 yuv420p needs even sides)"),
             "num_frames": (num_frames, 16, "at least 16 frames"), "fps": (fps, 1, "a frame rate >= 1"),
             "seed": (seed, 0, "an integer >= 0")}
    for name, (value, minimum, expected) in rules.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ConfigError(f"synthetic dataset parameter {name}: expected {expected}, found {value!r}")
    if size % 2:
        raise ConfigError(f"synthetic dataset parameter size: expected {rules['size'][2]}, found {size}")
    if num_frames / fps > 600:  # the clip ids' A_ssss_eeee fields hold 4 digits of seconds
        raise ConfigError(f"synthetic dataset parameters num_frames / fps: expected clips of at most 600 s, "
                          f"found {num_frames} / {fps} = {num_frames / fps:.0f} s")
    return {"num_train": int(num_train), "num_val": int(num_val), "size": int(size),
            "num_frames": int(num_frames), "fps": int(fps), "seed": int(seed)}


# ----------------------------------------------------------------------------------------------------------
# Encoding
# ----------------------------------------------------------------------------------------------------------

# keyint 16 without scene cuts: every 16th frame is a keyframe, so 4 x 16 sparse sampling seeks cheaply (the
# usual re-encoding trick); 2 B-frames like real footage; CRF 12 keeps a 1-pixel tuck or bar edge. Determinism:
# one thread per encoder (generation parallelises over clips instead), and no MB-tree: on tiny frames (32 px)
# x264's MB-tree made the same input encode differently from run to run (measured with x264 in PyAV 18).
X264_OPTIONS = {"crf": "12", "preset": "veryfast",
                "x264-params": "keyint=16:min-keyint=16:scenecut=0:bframes=2:threads=1:mbtree=0"}


def encode_clip(frames: np.ndarray, path: Path | str, fps: int) -> None:
    """Write (T, H, W, 3) uint8 RGB frames as an H.264 yuv420p mp4."""
    import av

    with av.open(os.fspath(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = dict(X264_OPTIONS)
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


# ----------------------------------------------------------------------------------------------------------
# The plan: which clip ids, labels and seeds each split gets
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlannedClip:
    split: str
    index: int
    clip_id: str
    label: int
    seed: tuple[int, int, int]  # SeedSequence entropy for render_clip


_SPLITS = ("train", "val")
_ID_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"))


def _youtube_id(rng: np.random.Generator, used: set[str]) -> str:
    while True:
        # first character alphanumeric: a leading '-' would read as an option on command lines
        chars = np.concatenate([rng.integers(0, 62, 1), rng.integers(0, 64, 10)])
        vid = "".join(_ID_ALPHABET[chars])
        if vid not in used:
            used.add(vid)
            return vid


def _routines(labels: list[int], rng: np.random.Generator) -> list[list[int]]:
    """Sample indices grouped into routines (FineGym event instances) of 2-6 elements of one event each."""
    routines = []
    for event in EVENTS:
        members = [i for i in rng.permutation(len(labels)).tolist() if ELEMENTS[labels[i]].event_id == event]
        while members:
            count = int(rng.integers(2, 7))
            routines.append(members[:count])
            members = members[count:]
    return [routines[i] for i in rng.permutation(len(routines))]


def _clip_ids(labels: list[int], rng: np.random.Generator, used: set[str], clip_seconds: float) -> list[str]:
    """FineGym-style ids `{youtube}_E_{ssssss}_{eeeeee}_A_{ssss}_{eeee}` (seconds, truncated): each fake video
    holds 1-3 routines, each routine 2-6 non-overlapping sub-actions of one event."""
    ids: list[str] = [""] * len(labels)
    routines = _routines(labels, rng)
    while routines:
        video, take = _youtube_id(rng, used), int(rng.integers(1, 4))
        event_start = rng.uniform(60, 900)
        for routine in routines[:take]:
            offset, actions = rng.uniform(0.5, 6), []
            for index in routine:
                actions.append((index, offset, offset + clip_seconds))
                offset += clip_seconds + rng.uniform(1, 8)
            event_end = event_start + offset + rng.uniform(1, 10)
            for index, a_start, a_end in actions:
                ids[index] = (f"{video}_E_{int(event_start):06d}_{int(event_end):06d}"
                              f"_A_{int(a_start):04d}_{int(a_end):04d}")
            event_start = event_end + rng.uniform(30, 400)
        routines = routines[take:]
    return ids


def plan_dataset(num_train: int, num_val: int, num_frames: int, fps: int, seed: int) -> dict[str, list[PlannedClip]]:
    """Clip ids, labels and per-clip seeds of both splits (cheap: nothing is drawn or written).

    Labels go round-robin over the elements (balanced classes); train and val never share a fake video.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x1D5]))
    used: set[str] = set()
    plan = {}
    for split_code, (split, count) in enumerate(zip(_SPLITS, (num_train, num_val))):
        labels = [i % len(ELEMENTS) for i in range(count)]
        ids = _clip_ids(labels, rng, used, num_frames / fps)
        plan[split] = [PlannedClip(split, i, ids[i], labels[i], (seed, split_code, i)) for i in range(count)]
    return plan


# ----------------------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------------------

def category_lines() -> list[str]:
    """gym99_categories.txt format: `Clabel: %3d; set: %2d; Glabel: %3d; (EV) description`."""
    return [f"Clabel: {e.clabel:3d}; set: {e.set_id:2d}; Glabel: {e.glabel:3d}; {e.description}" for e in ELEMENTS]


def set_lines() -> list[str]:
    """set_categories.txt format: `set: %2d; NAME`."""
    return [f"set: {set_id:2d}; {name}" for set_id, name in SETS.items()]


def split_lines(clips: Iterable[PlannedClip]) -> list[str]:
    """`<clip_id> <Clabel>`, sorted by clip id like the official split files."""
    return [f"{c.clip_id} {c.label}" for c in sorted(clips, key=lambda c: c.clip_id)]


def _readme(params: dict[str, int], counts: dict[str, int]) -> str:
    design = describe()
    files = textwrap.dedent(f"""\
        fineact synthetic FineGym look-alike (generator {GENERATOR} v{GENERATOR_VERSION})

        Parameters: {json.dumps(params, sort_keys=True)}
        Clips: {counts['train']} train, {counts['val']} val, balanced over the {len(ELEMENTS)} elements.
        Each: {params['num_frames']} frames of {params['size']}x{params['size']} px at {params['fps']} fps, \
H.264 yuv420p (CRF 12, a keyframe every 16 frames, 2 B-frames).

        Files (FineGym's formats):
          {FILE_PREFIX}_train_element.txt, {FILE_PREFIX}_val_element.txt   `<clip_id> <Clabel>`
          {FILE_PREFIX}_categories.txt   `Clabel: %3d; set: %2d; Glabel: %3d; (EV) description`
          set_categories.txt      `set: %2d; NAME` (event = tens digit of the set id: 2 FX, 3 BB, 4 UB)
          videos/<clip_id>.mp4
          {MANIFEST_NAME}           parameters + generator version; regenerated when they change

        Regenerate (same bytes for the label files, same decoded frames):
          python -c "from fineact.demo import ensure_dataset; ensure_dataset('<root>', **{params!r})"

        """)
    return files + design + "\n"


def _write_text(path: Path, lines: Iterable[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="\n")


def _manifest(params: dict[str, int]) -> dict:
    return {"generator": GENERATOR, "version": GENERATOR_VERSION, "params": params}


# ----------------------------------------------------------------------------------------------------------
# Generation (atomic) and caching
# ----------------------------------------------------------------------------------------------------------

def _render_and_encode(jobs: list[tuple[int, tuple[int, int, int], str]], size: int, num_frames: int,
                       fps: int) -> int:
    for label, seed, path in jobs:
        encode_clip(render_clip(label, seed, size=size, num_frames=num_frames), path, fps)
    return len(jobs)


def _render_all(clips: list[PlannedClip], videos: Path, params: dict[str, int], workers: int) -> None:
    jobs = [(c.label, c.seed, os.fspath(videos / f"{c.clip_id}.mp4")) for c in clips]
    args = (params["size"], params["num_frames"], params["fps"])
    if workers <= 1 or len(jobs) < 2:
        _render_and_encode(jobs, *args)
        return
    # Each clip depends only on its own seed, so splitting the work changes nothing in the output. "spawn"
    # children start clean (no inherited torch threads or locks), whatever the caller has imported.
    chunks = [jobs[i::workers * 4] for i in range(min(len(jobs), workers * 4))]
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
    try:
        for _ in pool.map(_render_and_encode, chunks, *([a] * len(chunks) for a in args)):
            pass
    finally:  # on an error or Ctrl-C, do not start the remaining chunks
        pool.shutdown(wait=True, cancel_futures=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _scratch_name(root: Path, kind: str) -> Path:
    return root.with_name(f".{root.name}.{kind}-{socket.gethostname()}-{os.getpid()}-{os.urandom(4).hex()}")


def _reap_abandoned(root: Path) -> None:
    """Remove scratch folders left by interrupted generations of this host whose process is gone."""
    host = socket.gethostname()
    for kind in ("partial", "old"):
        for path in root.parent.glob(f".{root.name}.{kind}-{host}-*"):
            pid = path.name[len(f".{root.name}.{kind}-{host}-"):].split("-")[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)


def _read_manifest(root: Path) -> dict | None:
    try:
        manifest = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("generator") == GENERATOR else None


def _check_replaceable(root: Path) -> None:
    """Only a missing or empty folder, or a dataset this generator wrote, may be replaced."""
    if root.exists() and (not root.is_dir() or (any(root.iterdir()) and _read_manifest(root) is None)):
        raise FineactError(f"{root}: expected a new folder, an empty one or a fineact synthetic dataset "
                           f"(with its {MANIFEST_NAME}), found other content; refusing to replace it")


def _install(scratch: Path, root: Path) -> None:
    """Move a finished dataset into place (a rename: readers never see half a dataset under `root`)."""
    _check_replaceable(root)
    if root.exists():
        old = _scratch_name(root, "old")
        os.rename(root, old)
        os.rename(scratch, root)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(scratch, root)


def generate_dataset(root: Path | str, *, num_train: int = 40 * len(ELEMENTS), num_val: int = 10 * len(ELEMENTS),
                     size: int = 64, num_frames: int = 64, fps: int = 25, seed: int = 0,
                     workers: int = 1) -> SyntheticDataset:
    """Generate the dataset into `root` (always; see `ensure_dataset` for the cached version).

    num_train / num_val are clip counts per split (round-robin over the 16 elements). Everything is written into
    a scratch folder beside `root` and renamed into place at the end, manifest included, so an interrupted run
    never leaves something that looks complete. The result does not depend on `workers`.
    """
    params = _check_params(num_train, num_val, size, num_frames, fps, seed)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"synthetic dataset parameter workers: expected an integer >= 1, found {workers!r}")
    root = Path(root).absolute()
    _check_replaceable(root)  # before the work, not only after it
    root.parent.mkdir(parents=True, exist_ok=True)
    _reap_abandoned(root)
    scratch = _scratch_name(root, "partial")
    try:
        layout = _layout(scratch)
        layout["videos_dir"].mkdir(parents=True)
        plan = plan_dataset(num_train, num_val, num_frames, fps, seed)
        _render_all(plan["train"] + plan["val"], layout["videos_dir"], params, workers)
        _write_text(layout["train_list"], split_lines(plan["train"]))
        _write_text(layout["val_list"], split_lines(plan["val"]))
        _write_text(layout["categories_file"], category_lines())
        _write_text(layout["set_categories_file"], set_lines())
        layout["readme"].write_text(_readme(params, {s: len(plan[s]) for s in _SPLITS}), encoding="utf-8")
        layout["manifest"].write_text(json.dumps(_manifest(params), indent=2, sort_keys=True) + "\n",
                                      encoding="utf-8")  # written last: its presence means "complete"
        _install(scratch, root)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return SyntheticDataset(root, params)


def _is_complete(root: Path, params: dict[str, int]) -> bool:
    manifest = _read_manifest(root)
    if manifest is None or manifest != _manifest(params):
        return False
    layout = _layout(root)
    if not all(layout[k].is_file() for k in ("train_list", "val_list", "categories_file", "set_categories_file")):
        return False
    videos = layout["videos_dir"]
    return videos.is_dir() and sum(1 for _ in videos.glob("*.mp4")) == params["num_train"] + params["num_val"]


def ensure_dataset(root: Path | str, *, num_train: int = 40 * len(ELEMENTS), num_val: int = 10 * len(ELEMENTS),
                   size: int = 64, num_frames: int = 64, fps: int = 25, seed: int = 0,
                   workers: int = 1) -> SyntheticDataset:
    """The dataset at `root`: reused when its manifest matches these parameters (and the generator version) and
    its files are all there, generated otherwise."""
    params = _check_params(num_train, num_val, size, num_frames, fps, seed)
    root = Path(root).absolute()
    if _is_complete(root, params):
        return SyntheticDataset(root, params)
    return generate_dataset(root, workers=workers, **params)


__all__ = ["PlannedClip", "SyntheticDataset", "category_lines", "default_demo_params", "encode_clip",
           "ensure_dataset", "generate_dataset", "plan_dataset", "set_lines", "split_lines"]
