"""The embedded demo dataset: a small FineGym look-alike whose label hierarchy is honest.

`ensure_dataset(root, **default_demo_params())` writes, under `root`, real H.264 clips and label files in
FineGym's exact formats (split files `<clip_id> <Clabel>`, a gym99-style category file, set_categories.txt), so
the demo runs through the same readers as the real dataset. Each clip shows a "gymnast" (a capsule-shaped body
with a head) on an apparatus. The three levels are decided by different kinds of evidence, so a hierarchical model
has something real to learn at each level:

event (coarse): APPEARANCE. The scene: background colour family and a static apparatus, visible in every frame.
    FX floor exercise: warm (red/orange) arena, blue floor mat with a white border line.
    BB balance beam:   green arena, a tan beam on two legs.
    UB uneven bars:    blue/violet arena, a high bar and a low bar.
    One frame decides it (a nearest-centroid on one frame's mean colour is near-perfect).

set (middle): MOTION FAMILY. What the body does during the clip's "skill window":
    bounce (FX 21, BB 31): the body jumps (vertical parabolas), upright;
    spin   (FX 22, BB 32): the body turns in the image plane about its centre, in place;
    orbit  (UB 41): the body circles around the high bar (hands on the bar);
    travel (UB 42): the body twists in hang, flies to the other bar, twists in hang again.
    Outside the window the body only sways. A frame inside the window often hints at the family (a rotated
    body), a few frames decide it.

element (fine): TEMPORAL DETAIL. Within a set, every element draws its frames from the same pose distribution,
so one frame tells nothing; what differs is how poses follow each other:
    count:       1 jump vs 2 hops as high, in the same window (the vertical speed doubles);
    direction:   clockwise vs counter-clockwise turn, circle or twist: needs two close frames, in order;
    order:       which of the two twists around the flight is reversed: needs the order of the whole window;
    brief event: a tuck at the top of a jump, a hold at the half turn, a release and re-grasp at the top of a
                 circle: 3-6 frames only.
    Turns, circles and twists take 11-18 frames (20-40 degrees per frame): frames 2 apart (the paper's element
    pathway, 32 frames at interval 2) follow them; glimpses 16 apart (4 frames) land at uniform angles and
    mostly miss the brief events. (Window lengths are quoted for a 64-frame clip; they scale with it.)

Nuisances, drawn per clip and independent of the label: background hue/brightness jitter, low-frequency and
grain texture, slow illumination flicker, apparatus placement, body colour, body size, start position, jump
height, window start/length, an easing exponent (speed profile), idle sway. Every clip is drawn from its own seed,
SeedSequence([seed, split, index]), so any number of worker processes produces byte-identical label files and
identical decoded frames. Elements of one set draw the SAME nuisances from the same seed: only the element's
temporal detail depends on the label (see `render_clip`).

Event ids follow FineGym (2 = FX, 3 = BB, 4 = UB; the event of a set is its tens digit), so the files also pass
`fineact.labels.finegym_levels`.
"""

from __future__ import annotations

import colorsys
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
from typing import Callable, Iterable, Sequence

import numpy as np

from fineact.errors import ConfigError, FineactError

# The generator's name in manifests: the module's former path, kept so that datasets cached before the move to
# fineact.demo are still recognised (reused, or replaced) instead of refused as a folder of unknown content.
GENERATOR = "fineact.data.synthetic"
GENERATOR_VERSION = 2  # bump whenever the drawing or the file layout changes: cached datasets then regenerate

MANIFEST_NAME = "manifest.json"
VIDEOS_DIR = "videos"
FILE_PREFIX = "synth16"  # like "gym99": the number of element classes


# ----------------------------------------------------------------------------------------------------------
# The hierarchy
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Element:
    """One finest-level class: a line of the category file, plus how it is drawn."""

    clabel: int
    set_id: int
    glabel: int
    description: str
    family: str   # motion family of its set: bounce, spin, orbit, travel
    variant: str  # the temporal detail that separates it from its siblings

    @property
    def event_id(self) -> int:
        return self.set_id // 10

    @property
    def event_abbrev(self) -> str:
        return EVENTS[self.event_id][0]


# FineGym's own event ids and abbreviations (labels.FINEGYM_EVENTS): 2 = FX, 3 = BB, 4 = UB.
EVENTS: dict[int, tuple[str, str]] = {2: ("FX", "floor exercise"), 3: ("BB", "balance beam"),
                                      4: ("UB", "uneven bars")}
SETS: dict[int, str] = {21: "FX_leap_jump_hop", 22: "FX_turns", 31: "BB_leap_jump_hop", 32: "BB_turns",
                        41: "UB_circles", 42: "UB_transition_flight"}
SET_FAMILY: dict[int, str] = {21: "bounce", 22: "spin", 31: "bounce", 32: "spin", 41: "orbit", 42: "travel"}

_ELEMENT_TABLE: tuple[tuple[int, str, str], ...] = (
    (21, "jump", "jump, one take-off and landing"),
    (21, "two_hops", "two consecutive hops as high as a jump, in the time of one jump"),
    (21, "tuck_jump", "tuck jump, the body tucked only at the top of the jump"),
    (22, "turn", "1 turn, clockwise"),
    (22, "reverse_turn", "1 turn, counter-clockwise"),
    (22, "turn_with_pause", "1 turn, clockwise, with a brief hold at the half turn"),
    (31, "jump", "jump, one take-off and landing"),
    (31, "tuck_jump", "tuck jump, the body tucked only at the top of the jump"),
    (32, "turn", "1 turn, clockwise"),
    (32, "reverse_turn", "1 turn, counter-clockwise"),
    (41, "circle", "giant circle clockwise"),
    (41, "reverse_circle", "giant circle counter-clockwise"),
    (41, "release_circle", "giant circle clockwise with release and re-grasp at the top"),
    (42, "twist_flight_twist", "clockwise twist in hang, flight to the other bar, clockwise twist in hang"),
    (42, "twist_flight_reverse_twist", "clockwise twist in hang, flight to the other bar, "
                                       "counter-clockwise twist in hang"),
    (42, "reverse_twist_flight_twist", "counter-clockwise twist in hang, flight to the other bar, "
                                       "clockwise twist in hang"),
)

def _build_elements() -> tuple[Element, ...]:
    elements = []
    for clabel, (set_id, variant, text) in enumerate(_ELEMENT_TABLE):
        rank_in_set = sum(1 for e in elements if e.set_id == set_id)
        elements.append(Element(clabel, set_id, glabel=set_id * 10 + rank_in_set,  # unique, like FineGym's
                                description=f"({EVENTS[set_id // 10][0]}) {text}", family=SET_FAMILY[set_id],
                                variant=variant))
    return tuple(elements)


ELEMENTS: tuple[Element, ...] = _build_elements()


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
# Drawing: scene (event), pose over time (set + element), composition
# ----------------------------------------------------------------------------------------------------------

@dataclass
class _Body:
    """Body shape in units of the frame side: shaft length, shaft radius, head radius; colours in 0..255."""

    length: float
    radius: float
    head: float
    colour: np.ndarray
    head_colour: np.ndarray


@dataclass
class _Pose:
    """Per-frame arrays (T,): shaft centre, unit direction centre -> head (image coords, y down), shape scales."""

    cx: np.ndarray
    cy: np.ndarray
    ux: np.ndarray
    uy: np.ndarray
    length_scale: np.ndarray
    radius_scale: np.ndarray


def _jitter(rng: np.random.Generator, colour: Sequence[float], amount: float) -> np.ndarray:
    return np.asarray(colour, np.float32) + rng.uniform(-amount, amount, 3).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int, channels: int) -> np.ndarray:
    """Low-frequency noise: a (cells+1)^2 random grid, bilinearly upsampled (separably) to size x size."""
    grid = rng.normal(size=(cells + 1, cells + 1, channels)).astype(np.float32)
    pos = (np.arange(size, dtype=np.float32) + 0.5) / size * cells
    i0 = np.minimum(pos.astype(np.int64), cells - 1)
    w = pos - i0
    rows = grid[i0] * (1 - w)[:, None, None] + grid[i0 + 1] * w[:, None, None]
    return rows[:, i0] * (1 - w)[None, :, None] + rows[:, i0 + 1] * w[None, :, None]


def _box(xs: np.ndarray, ys: np.ndarray, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """Anti-aliased rectangle coverage in [0, 1]; coordinates in pixels."""
    inside_x = np.clip(np.minimum(xs - x0, x1 - xs) + 0.5, 0, 1)
    inside_y = np.clip(np.minimum(ys - y0, y1 - ys) + 0.5, 0, 1)
    return inside_x * inside_y


def _paint(image: np.ndarray, coverage: np.ndarray, colour: np.ndarray) -> None:
    image += coverage[..., None] * (colour - image)


def _paint_where_covered(frames: np.ndarray, coverage: np.ndarray, colour: np.ndarray) -> None:
    """`_paint` on the few covered pixels only: the body covers ~2 % of a clip, so this is ~10x faster."""
    where = np.nonzero(coverage)
    frames[where] += coverage[where][:, None] * (colour - frames[where])


def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    centres = np.arange(size, dtype=np.float32) + 0.5
    return centres[None, :], centres[:, None]


def _arena(rng: np.random.Generator, size: int, base: Sequence[float]) -> np.ndarray:
    """Background: jittered colour family, a vertical gradient, smooth blotches and fine grain (all static)."""
    colour = _jitter(rng, base, 22) * rng.uniform(0.85, 1.1)
    gradient = np.linspace(1.08, 0.88, size, dtype=np.float32)[:, None, None]
    blotches = _smooth_noise(rng, size, cells=5, channels=3) * rng.uniform(4, 9)
    grain = rng.normal(0, rng.uniform(1.5, 3.5), (size, size, 1)).astype(np.float32)
    return colour * gradient + blotches + grain


def _scene_floor(rng: np.random.Generator, size: int) -> tuple[np.ndarray, dict]:
    image = _arena(rng, size, (165, 92, 62))
    xs, ys = _pixel_grid(size)
    mat_top = rng.uniform(0.76, 0.83)
    _paint(image, _box(xs, ys, -1, size + 1, mat_top * size, size + 1), _jitter(rng, (55, 85, 165), 12))
    _paint(image, _box(xs, ys, -1, size + 1, mat_top * size, (mat_top + 0.025) * size), _jitter(rng, (235,) * 3, 10))
    return image, {"ground": mat_top}


def _scene_beam(rng: np.random.Generator, size: int) -> tuple[np.ndarray, dict]:
    image = _arena(rng, size, (62, 125, 72))
    xs, ys = _pixel_grid(size)
    top, ends = rng.uniform(0.64, 0.69), rng.uniform(-0.03, 0.03, 2)
    _paint(image, _box(xs, ys, -1, size + 1, 0.93 * size, size + 1), _jitter(rng, (45, 70, 50), 8))
    for leg_x in (0.22 + ends[0], 0.78 + ends[1]):
        _paint(image, _box(xs, ys, (leg_x - 0.015) * size, (leg_x + 0.015) * size, top * size, size + 1),
               _jitter(rng, (120, 120, 125), 10))
    _paint(image, _box(xs, ys, (0.08 + ends[0]) * size, (0.92 + ends[1]) * size, top * size, (top + 0.05) * size),
           _jitter(rng, (210, 178, 128), 12))
    return image, {"ground": top}


def _scene_bars(rng: np.random.Generator, size: int) -> tuple[np.ndarray, dict]:
    image = _arena(rng, size, (72, 78, 150))
    xs, ys = _pixel_grid(size)
    high, low = rng.uniform(0.39, 0.42), rng.uniform(0.56, 0.60)
    high_x, low_x = rng.uniform(0.62, 0.70), rng.uniform(0.24, 0.30)
    post, bar = _jitter(rng, (150, 150, 160), 10), _jitter(rng, (228, 228, 228), 10)
    for x in (0.36, 0.96):
        _paint(image, _box(xs, ys, (x - 0.012) * size, (x + 0.012) * size, high * size, size + 1), post)
    for x in (0.04, 0.56):
        _paint(image, _box(xs, ys, (x - 0.012) * size, (x + 0.012) * size, low * size, size + 1), post)
    _paint(image, _box(xs, ys, 0.34 * size, 0.98 * size, (high - 0.015) * size, (high + 0.015) * size), bar)
    _paint(image, _box(xs, ys, 0.02 * size, 0.58 * size, (low - 0.015) * size, (low + 0.015) * size), bar)
    return image, {"high_bar": (high_x, high), "low_bar": (low_x, low)}


_SCENES: dict[int, Callable[[np.random.Generator, int], tuple[np.ndarray, dict]]] = {
    2: _scene_floor, 3: _scene_beam, 4: _scene_bars}


def _draw_body(rng: np.random.Generator) -> _Body:
    length = rng.uniform(0.18, 0.24)
    radius = length * rng.uniform(0.14, 0.18)
    # Bright, saturated leotard of any hue: it never encodes the class and always stands out of the arena.
    colour = np.array(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.55, 0.9), rng.uniform(0.85, 1.0)),
                      np.float32) * 255
    return _Body(length, radius, radius * rng.uniform(1.25, 1.45), colour, _jitter(rng, (238, 198, 165), 14))


@dataclass
class _Timing:
    """The skill window [start, start + length) in clip time u in [0, 1) and the easing exponent."""

    start: float
    length: float
    easing: float
    sway: np.ndarray  # (T,) idle sway angle in radians, present in every frame

    def progress(self, u: np.ndarray) -> np.ndarray:
        """0 before the window, 1 after it, eased in between (speed jitter)."""
        return np.clip((u - self.start) / self.length, 0, 1) ** self.easing


# Skill window length per family, in frames of a 64-frame clip (it scales with the clip). A turn or a circle
# takes 11-18 frames: 20-40 degrees per frame, so frames 2 (or 4) apart resolve its direction, while a glimpse
# every 16 frames lands at an essentially uniform angle whichever way it turns. Travel: three 12-16 frame phases.
_WINDOW_FRAMES = {"bounce": (24, 40), "spin": (11, 18), "orbit": (11, 18), "travel": (36, 48)}
_PAUSE = 0.35  # a paused turn holds for this fraction of its turning time, at the half turn


def _draw_timing(rng: np.random.Generator, u: np.ndarray, family: str) -> _Timing:
    shortest, longest = _WINDOW_FRAMES[family]
    length = rng.uniform(shortest, longest) / 64
    room = length * (1 + _PAUSE if family == "spin" else 1)  # the same draw for every element of a set
    start = rng.uniform(0.04, 0.96 - room)
    amplitude, cycles, phase = np.radians(rng.uniform(0, 4)), rng.uniform(0.5, 2), rng.uniform(0, 2 * np.pi)
    return _Timing(start, length, rng.uniform(0.85, 1.2), amplitude * np.sin(2 * np.pi * cycles * u + phase))


def _ramp(p: np.ndarray, begin: float, end: float) -> np.ndarray:
    return np.clip((p - begin) / (end - begin), 0, 1)


def _bump(p: np.ndarray, centre: float, half_width: float, edge: float) -> np.ndarray:
    """1 within half_width of centre, fading to 0 over `edge`: a brief event."""
    return np.clip((half_width + edge - np.abs(p - centre)) / edge, 0, 1)


def _upright(angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vector centre -> head for an in-plane angle (0 = head up, increasing = clockwise on screen)."""
    return np.sin(angle), -np.cos(angle)


def _pose(cx, cy, angle_or_dir, n: int, length_scale=None, radius_scale=None) -> _Pose:
    ux, uy = angle_or_dir if isinstance(angle_or_dir, tuple) else _upright(angle_or_dir)
    ones = np.ones(n, np.float32)
    scales = [ones if s is None else s for s in (length_scale, radius_scale)]
    return _Pose(*(np.asarray(a * ones, np.float32) for a in (cx, cy, ux, uy, *scales)))


def _standing_centre(body: _Body, ground: float) -> float:
    return ground - body.radius * 0.6 - body.length / 2


def _motion_spin(variant, rng, u, timing, body, anchors) -> _Pose:
    x = rng.uniform(0.3, 0.7)
    if variant == "turn_with_pause":  # same turning speed, plus a brief hold upside down at the half turn
        timing = _Timing(timing.start, timing.length * (1 + _PAUSE), timing.easing, timing.sway)
        p = timing.progress(u)
        turned = 0.5 * _ramp(p, 0, 0.5 / (1 + _PAUSE)) + 0.5 * _ramp(p, (0.5 + _PAUSE) / (1 + _PAUSE), 1)
    else:
        turned = timing.progress(u) * (-1.0 if variant == "reverse_turn" else 1.0)
    return _pose(x, _standing_centre(body, anchors["ground"]), timing.sway + 2 * np.pi * turned, len(u))


def _motion_bounce(variant, rng, u, timing, body, anchors) -> _Pose:
    x, drift, height = rng.uniform(0.3, 0.7), rng.uniform(-0.12, 0.12), rng.uniform(0.16, 0.24)
    p = timing.progress(u)
    hops = 2 if variant == "two_hops" else 1
    q = (p * hops) % 1.0  # phase within the current hop; every hop reaches the same height
    y = _standing_centre(body, anchors["ground"]) - height * 4 * q * (1 - q)
    tuck = _bump(p, 0.5, 0.06, 0.03) if variant == "tuck_jump" else np.zeros_like(p)
    return _pose(x + drift * p, y, timing.sway, len(u), 1 - 0.5 * tuck, 1 + 0.45 * tuck)


def _hang_distance(body: _Body) -> float:
    """Bar to shaft centre when hanging: the head (hands) overlaps the bar."""
    return body.length / 2 + body.head * 1.3


def _motion_orbit(variant, rng, u, timing, body, anchors) -> _Pose:
    bar_x, bar_y = anchors["high_bar"]
    release_height = rng.uniform(0.045, 0.065)
    p = timing.progress(u)
    direction = -1.0 if variant == "reverse_circle" else 1.0
    around = timing.sway * 3 + direction * 2 * np.pi * p  # 0 = hanging below the bar
    release = _bump(p, 0.5, 0.1, 0.05) if variant == "release_circle" else np.zeros_like(p)
    distance = _hang_distance(body) + release_height * release
    rx, ry = -np.sin(around), np.cos(around)  # bar -> body; clockwise on screen for increasing `around`
    return _pose(bar_x + distance * rx, bar_y + distance * ry, (-rx, -ry), len(u))


def _motion_travel(variant, rng, u, timing, body, anchors) -> _Pose:
    arc, low_to_high = rng.uniform(0.08, 0.14), bool(rng.integers(2))
    (x0, y0), (x1, y1) = anchors["low_bar"], anchors["high_bar"]
    if not low_to_high:  # a random flight direction: which bar sees the reversed twist reveals nothing
        (x0, y0), (x1, y1) = (x1, y1), (x0, y0)
    p = timing.progress(u)
    first, second = {"twist_flight_twist": (1, 1), "twist_flight_reverse_twist": (1, -1),
                     "reverse_twist_flight_twist": (-1, 1)}[variant]
    # thirds: twist in hang at the start bar, flight, twist in hang at the end bar; each twist is one full turn
    # of 12-16 frames, so a glimpse every 16 frames sees at most one moment of it, at a uniform angle
    flight = _ramp(p, 1 / 3, 2 / 3)
    twist = first * _ramp(p, 0, 1 / 3) + second * _ramp(p, 2 / 3, 1)
    hang = _hang_distance(body)
    x = x0 + (x1 - x0) * flight
    y = y0 + (y1 - y0) * flight + hang - arc * 4 * flight * (1 - flight)
    return _pose(x, y, timing.sway + 2 * np.pi * twist, len(u))


_MOTIONS = {"spin": _motion_spin, "bounce": _motion_bounce, "orbit": _motion_orbit, "travel": _motion_travel}


def _capsule_coverage(pose: _Pose, body: _Body, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Anti-aliased coverage (T, S, S) of the body shaft (a capsule) and of the head, all frames at once."""
    xs, ys = _pixel_grid(size)
    cx, cy = pose.cx[:, None, None] * size, pose.cy[:, None, None] * size
    ux, uy = pose.ux[:, None, None], pose.uy[:, None, None]
    half = (body.length * size / 2) * pose.length_scale[:, None, None]
    radius = body.radius * size * pose.radius_scale[:, None, None]
    # distance to the shaft segment: project onto the axis, clamp to the segment, measure the remainder
    dx, dy = xs - cx, ys - cy
    along = np.clip(dx * ux + dy * uy, -half, half)
    shaft = np.clip(radius - np.hypot(dx - along * ux, dy - along * uy) + 0.5, 0, 1)
    head_r = body.head * size
    hx, hy = cx + ux * (half + head_r * 0.9), cy + uy * (half + head_r * 0.9)
    head = np.clip(head_r - np.hypot(xs - hx, ys - hy) + 0.5, 0, 1)
    return shaft, head


def render_clip(label: int, seed: int | Sequence[int], *, size: int = 64, num_frames: int = 64) -> np.ndarray:
    """The frames (T, S, S, 3) uint8 RGB of one clip of element `label`.

    The draws do not depend on the label within a set: two elements of one set rendered from the same seed
    share scene, body, timing and position, and differ only in their temporal detail.
    """
    element = ELEMENTS[label]
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    u = ((np.arange(num_frames) + 0.5) / num_frames).astype(np.float32)
    background, anchors = _SCENES[element.event_id](rng, size)
    body = _draw_body(rng)
    timing = _draw_timing(rng, u, element.family)
    flicker = 1 + rng.uniform(0, 0.04) * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * u + rng.uniform(0, 2 * np.pi))
    pose = _MOTIONS[element.family](element.variant, rng, u, timing, body, anchors)
    shaft, head = _capsule_coverage(pose, body, size)
    frames = background[None] * flicker.astype(np.float32)[:, None, None, None]
    _paint_where_covered(frames, shaft, body.colour)
    _paint_where_covered(frames, head, body.head_colour)
    np.clip(frames, 0, 255, out=frames)
    frames += 0.5
    return frames.astype(np.uint8)


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


def describe() -> str:
    """The dataset's design: what decides each level, and the element table."""
    design = (__doc__ or "").split("\n\n", 2)[-1].split("\nNuisances")[0].strip()  # no docstrings under -OO
    lines = [design, "", "Elements (Clabel, set, family, description):"]
    for e in ELEMENTS:
        lines.append(f"  {e.clabel:2d}  set {e.set_id} {SETS[e.set_id]:<21s} {e.family:<7s} {e.description}")
    return "\n".join(lines)


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


__all__ = ["ELEMENTS", "EVENTS", "SETS", "SET_FAMILY", "Element", "PlannedClip", "SyntheticDataset",
           "category_lines", "default_demo_params", "describe", "encode_clip", "ensure_dataset",
           "generate_dataset", "plan_dataset", "render_clip", "set_lines", "split_lines"]
