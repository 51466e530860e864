"""Drawing the demo's clips: `render_clip(label, seed)` gives the frames of one clip of an element.

Each clip shows a "gymnast" (a capsule-shaped body with a head) on an apparatus. The three levels are decided
by different kinds of evidence, so a hierarchical model has something real to learn at each level:

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

Anything that changes what is drawn must bump `fineact.demo.dataset.GENERATOR_VERSION`, so that cached datasets
regenerate.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from fineact.demo.classes import ELEMENTS, SETS


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


def render_scene(event_id: int, seed: int | Sequence[int], *, size: int = 64) -> np.ndarray:
    """The empty arena (S, S, 3) uint8 RGB of event `event_id` (2 FX, 3 BB, 4 UB): the scene of `render_clip`
    without the gymnast, e.g. for the frames between the elements of an untrimmed video."""
    if event_id not in _SCENES:
        raise ValueError(f"no scene for event {event_id}: expected one of {sorted(_SCENES)}")
    background, _ = _SCENES[event_id](np.random.default_rng(np.random.SeedSequence(seed)), size)
    return (np.clip(background, 0, 255) + 0.5).astype(np.uint8)


def describe() -> str:
    """The dataset's design: what decides each level, and the element table."""
    design = (__doc__ or "").split("\n\n", 2)[-1].split("\nNuisances")[0].strip()  # no docstrings under -OO
    lines = [design, "", "Elements (Clabel, set, family, description):"]
    for e in ELEMENTS:
        lines.append(f"  {e.clabel:2d}  set {e.set_id} {SETS[e.set_id]:<21s} {e.family:<7s} {e.description}")
    return "\n".join(lines)


__all__ = ["describe", "render_clip", "render_scene"]
