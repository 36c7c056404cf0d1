"""Procedural drawing for the demo clips: plain numpy shapes, no fonts, no assets, deterministic.

Each scene is built by :func:`build_scene` from a name, the clip's anomaly window and a seed, and
returns ``frame(i) -> (H, W, 3) uint8 RGB``. Everything random comes from generators seeded by
(seed, frame index), so a clip renders identically on every machine and in any frame order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

WIDTH, HEIGHT, FPS = 320, 240, 25
GROUND = 200  # y of the street / floor line where feet stand

Color = tuple[int, int, int]
Frame = np.ndarray
SceneFn = Callable[[int], Frame]

SKY_TOP: Color = (120, 170, 225)
SKY_LOW: Color = (200, 220, 240)
SKIN: Color = (225, 185, 150)
DARK: Color = (35, 35, 40)
FLAME: tuple[Color, ...] = ((200, 30, 10), (240, 110, 20), (255, 200, 60))


@dataclass(frozen=True)
class Window:
    """The rendered anomaly, in seconds: it starts at ``start`` and its visible effects end at ``end``."""

    start: float
    end: float


# --- primitives -------------------------------------------------------------------------------


def rect(img: Frame, x0: float, y0: float, x1: float, y1: float, color: Color) -> None:
    """Fill the axis-aligned box [x0, x1) x [y0, y1), clipped to the frame."""
    h, w = img.shape[:2]
    a, b = max(0, int(x0)), min(w, int(x1))
    c, d = max(0, int(y0)), min(h, int(y1))
    if a < b and c < d:
        img[c:d, a:b] = color


def ellipse(
    img: Frame, cx: float, cy: float, rx: float, ry: float, color: Color, alpha: float = 1.0
) -> None:
    """Fill an ellipse, optionally blended (smoke, splashes)."""
    h, w = img.shape[:2]
    x0, x1 = max(0, int(cx - rx)), min(w, int(cx + rx) + 1)
    y0, y1 = max(0, int(cy - ry)), min(h, int(cy + ry) + 1)
    if x0 >= x1 or y0 >= y1 or rx <= 0 or ry <= 0:
        return
    yy, xx = np.ogrid[y0:y1, x0:x1]
    mask = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
    region = img[y0:y1, x0:x1]
    if alpha >= 1.0:
        region[mask] = color
    else:
        blended = region[mask].astype(np.float32) * (1 - alpha) + np.float32(alpha) * np.array(color)
        region[mask] = blended.astype(np.uint8)


def disk(img: Frame, cx: float, cy: float, r: float, color: Color, alpha: float = 1.0) -> None:
    ellipse(img, cx, cy, r, r, color, alpha)


def line(img: Frame, x0: float, y0: float, x1: float, y1: float, color: Color, thick: int = 2) -> None:
    """A thick segment, stamped as small squares along its length (limbs, poles, spray strokes)."""
    steps = max(1, int(max(abs(x1 - x0), abs(y1 - y0))))
    half = thick / 2
    for k in range(steps + 1):
        x = x0 + (x1 - x0) * k / steps
        y = y0 + (y1 - y0) * k / steps
        rect(img, x - half, y - half, x + half + 0.5, y + half + 0.5, color)


def ramp(t: float, t0: float, t1: float) -> float:
    """0 before t0, 1 after t1, linear in between."""
    if t1 <= t0:
        return 1.0 if t >= t1 else 0.0
    return min(1.0, max(0.0, (t - t0) / (t1 - t0)))


def frame_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index])


# --- figures ----------------------------------------------------------------------------------


def person(
    img: Frame,
    x: float,
    ground: float,
    shirt: Color,
    *,
    phase: float = 0.0,
    stride: float = 1.0,
    facing: int = 1,
    tilt: float = 0.0,
    arms: str = "swing",
    scale: float = 1.0,
    pants: Color = (50, 60, 90),
) -> None:
    """A stick figure standing at (x, ground); ``tilt`` (radians) rotates it about the feet (falls)."""
    swing = math.sin(phase) * 8 * stride
    arm_swing = math.sin(phase) * 7 * stride
    hands = {
        "swing": ((arm_swing, 22), (-arm_swing, 22)),
        "up": ((-7, 50), (7, 50)),
        "punch": ((18, 33), (4, 26)),
        "reach": ((16, 14), (6, 22)),
        "hold": ((12, 30), (9, 28)),
    }[arms]
    pts = {
        "foot_a": (swing, 0),
        "foot_b": (-swing, 0),
        "hip": (0, 20),
        "neck": (0, 36),
        "shoulder": (0, 33),
        "hand_a": hands[0],
        "hand_b": hands[1],
        "head": (0, 42),
    }
    cos_t, sin_t = math.cos(tilt), math.sin(tilt)

    def at(name: str) -> tuple[float, float]:
        px, py = pts[name]
        rx, ry = px * cos_t + py * sin_t, -px * sin_t + py * cos_t
        return x + facing * rx * scale, ground - ry * scale

    thick = max(2, int(3 * scale))
    for foot in ("foot_a", "foot_b"):
        line(img, *at("hip"), *at(foot), pants, thick)
    line(img, *at("hip"), *at("neck"), shirt, thick + 2)
    for hand in ("hand_a", "hand_b"):
        line(img, *at("shoulder"), *at(hand), shirt, max(2, thick - 1))
    hx, hy = at("head")
    disk(img, hx, hy, 5.5 * scale, SKIN)


def car(img: Frame, x: float, ground: float, body: Color, *, facing: int = 1, crush: float = 0.0) -> None:
    """A side-view car whose front end is at ``x``; ``crush`` in [0, 1] folds the bonnet in."""
    length = 64 - 14 * crush
    back = x - facing * length
    x0, x1 = sorted((back, x))
    rect(img, x0, ground - 22, x1, ground - 8, body)
    cab0 = x - facing * (length * 0.35) if facing > 0 else x + length * 0.15
    cab_x0, cab_x1 = sorted((cab0, cab0 - facing * length * 0.45))
    rect(img, cab_x0, ground - 32, cab_x1, ground - 21, body)
    rect(img, cab_x0 + 3, ground - 30, cab_x1 - 3, ground - 22, (170, 210, 235))
    if crush > 0:
        front = x1 if facing > 0 else x0
        rect(img, front - 8, ground - 21, front + 1, ground - 15, (70, 70, 70))
    for wx in (x0 + 12, x1 - 12):
        disk(img, wx, ground - 7, 7, DARK)
        disk(img, wx, ground - 7, 3, (150, 150, 150))


def dog(img: Frame, x: float, ground: float, phase: float, *, facing: int = 1, leap: float = 0.0) -> None:
    """A brown four-legged animal; ``leap`` lifts it (the jump of an attack)."""
    base = ground - 12 - leap
    fur = (120, 75, 40)
    ellipse(img, x, base, 14, 6, fur)
    for k, off in enumerate((-9, -4, 5, 10)):
        swing = math.sin(phase + k * math.pi / 2) * 4
        line(img, x + off, base + 3, x + off + swing, base + 12, fur, 2)
    disk(img, x + facing * 15, base - 5, 5, fur)
    rect(img, x + facing * 18, base - 4, x + facing * 18 + 5, base - 1, (90, 50, 30))
    line(img, x - facing * 13, base - 2, x - facing * 19, base - 8, fur, 2)


def flames(img: Frame, cx: float, base: float, size: float, rng: np.random.Generator) -> None:
    """Flickering fire: stacked ellipses from red to yellow with jittered sizes."""
    if size <= 0.5:
        return
    for color, shrink in zip(FLAME, (1.0, 0.7, 0.4), strict=True):
        for _ in range(3):
            jx = rng.uniform(-0.35, 0.35) * size
            h = size * shrink * rng.uniform(0.8, 1.25)
            ellipse(img, cx + jx, base - h, size * shrink * 0.55, h, color)


def smoke(img: Frame, cx: float, base: float, t: float, strength: float, height: float = 120) -> None:
    """Grey puffs that rise and grow; deterministic in ``t``."""
    if strength <= 0:
        return
    for k in range(8):
        age = (t * 0.35 + k / 8) % 1.0
        r = 6 + 22 * age * strength
        x = cx + math.sin(k * 1.7 + t) * 10 + age * 25
        y = base - age * height * strength
        disk(img, x, y, r, (90, 90, 95), alpha=0.55 * (1 - age) * min(1.0, strength * 1.5))


def particles(
    img: Frame, origin: tuple[float, float], velocities: np.ndarray, dt: float, colors: list[Color], floor: float
) -> None:
    """Ballistic debris (or sparks) thrown from ``origin`` ``dt`` seconds ago, resting on ``floor``."""
    if dt < 0:
        return
    ox, oy = origin
    for (vx, vy), color in zip(velocities, colors, strict=False):
        x = ox + vx * dt
        y = min(floor, oy - vy * dt + 120 * dt * dt)
        if y >= floor:
            x = ox + vx * min(dt, _landing_time(oy, vy, floor))
        rect(img, x - 2, y - 2, x + 2, y + 1, color)


def _landing_time(oy: float, vy: float, floor: float) -> float:
    # solve oy - vy t + 120 t^2 = floor for the positive root
    a, b, c = 120.0, -vy, oy - floor
    disc = max(0.0, b * b - 4 * a * c)
    return (-b + math.sqrt(disc)) / (2 * a)


# --- backgrounds ------------------------------------------------------------------------------


def _sky(horizon: int) -> Frame:
    img = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    ramp_ = np.linspace(0, 1, horizon)[:, None]
    img[:horizon] = (np.array(SKY_TOP) * (1 - ramp_) + np.array(SKY_LOW) * ramp_)[:, None, :].astype(np.uint8)
    return img


def street_bg(seed: int, *, with_light: bool = False) -> Frame:
    """Sky, a row of buildings with windows, sidewalk, road with lane dashes."""
    rng = np.random.default_rng(seed)
    img = _sky(150)
    x = 0
    while x < WIDTH:
        w, h = int(rng.integers(40, 70)), int(rng.integers(50, 110))
        tone = int(rng.integers(130, 190))
        rect(img, x, 150 - h, x + w - 2, 150, (tone, tone - 15, tone - 30))
        for wy in range(150 - h + 8, 140, 16):
            for wx in range(x + 6, x + w - 10, 14):
                rect(img, wx, wy, wx + 7, wy + 8, (90, 110, 140))
        x += w
    rect(img, 0, 150, WIDTH, 170, (160, 160, 155))
    rect(img, 0, 170, WIDTH, HEIGHT, (75, 75, 80))
    for dx in range(0, WIDTH, 40):
        rect(img, dx, 213, dx + 20, 216, (230, 230, 230))
    if with_light:
        rect(img, 236, 90, 240, 170, DARK)
        rect(img, 230, 70, 246, 110, DARK)
    return img


def park_bg(seed: int) -> Frame:
    """Sky, trees, grass, a path and a bench."""
    rng = np.random.default_rng(seed)
    img = _sky(140)
    rect(img, 0, 140, WIDTH, HEIGHT, (90, 150, 70))
    rect(img, 0, 185, WIDTH, 215, (190, 170, 130))
    for tx in rng.integers(10, WIDTH - 10, 5):
        rect(img, tx - 3, 100, tx + 3, 145, (100, 70, 40))
        disk(img, tx, 95, 20, (50, 120, 50))
    rect(img, 60, 170, 120, 175, (120, 80, 45))
    rect(img, 62, 175, 66, 186, DARK)
    rect(img, 114, 175, 118, 186, DARK)
    return img


def shop_bg(seed: int) -> Frame:
    """Inside a small shop: wall, shelves with goods, floor, the counter."""
    rng = np.random.default_rng(seed)
    img = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    img[:] = (215, 205, 180)
    rect(img, 0, GROUND, WIDTH, HEIGHT, (150, 130, 110))
    for sy in (60, 100, 140):
        rect(img, 190, sy, 310, sy + 4, (110, 80, 50))
        for gx in range(194, 306, 10):
            rect(img, gx, sy - 14, gx + 7, sy, tuple(int(c) for c in rng.integers(60, 230, 3)))
    rect(img, 20, 40, 60, GROUND, (120, 150, 170))
    rect(img, 120, 165, 190, GROUND, (130, 90, 55))
    return img


def water_bg(seed: int) -> Frame:
    """Sky, a far shore, open water."""
    img = _sky(110)
    rect(img, 0, 100, WIDTH, 112, (80, 120, 70))
    rect(img, 0, 112, WIDTH, HEIGHT, (40, 100, 160))
    rng = np.random.default_rng(seed)
    for _ in range(40):
        x, y = rng.integers(0, WIDTH), rng.integers(118, HEIGHT)
        rect(img, x, y, x + 10, y + 1, (90, 150, 200))
    return img


def forest_bg(seed: int) -> tuple[Frame, list[int]]:
    """Hills covered with trees; returns the tree positions so fire can spread along them."""
    img = _sky(150)
    rect(img, 0, 150, WIDTH, HEIGHT, (70, 120, 50))
    xs = list(range(20, WIDTH, 34))
    rng = np.random.default_rng(seed)
    for tx in xs:
        top = 90 + int(rng.integers(-8, 8))
        rect(img, tx - 3, top + 40, tx + 3, 170, (90, 60, 35))
        for k in range(3):
            ellipse(img, tx, top + 12 * k + 8, 10 + 4 * k, 12, (30, 100 + 10 * k, 40))
    return img, xs


# --- scenes -----------------------------------------------------------------------------------


def _walk_phase(t: float, speed: float) -> float:
    return t * speed * 0.18


def scene_collision(w: Window, seed: int) -> SceneFn:
    """Two cars drive head-on in one lane and crash; debris and smoke after impact."""
    bg = street_bg(seed)
    rng = np.random.default_rng(seed)
    vel = rng.uniform([-60, 40], [60, 110], (14, 2))
    colors = [(200, 200, 210), (60, 60, 60), (200, 40, 40), (40, 70, 190)] * 4
    impact_x = 165

    def frame(i: int) -> Frame:
        t = i / FPS
        img = bg.copy()
        hit = t >= w.start
        speed = 75.0
        a = impact_x - speed * (w.start - t) if not hit else impact_x - 6 * ramp(t, w.start, w.start + 0.4)
        b = impact_x + speed * (w.start - t) if not hit else impact_x + 6 * ramp(t, w.start, w.start + 0.4)
        crush = ramp(t, w.start, w.start + 0.2)
        person(img, 40 + t * 6, 165, (60, 140, 60), phase=_walk_phase(t, 6), scale=0.8)
        car(img, a - 2, 205, (200, 40, 40), facing=1, crush=crush)
        car(img, b + 2, 205, (40, 70, 190), facing=-1, crush=crush)
        particles(img, (impact_x, 180), vel, t - w.start, colors, 206)
        smoke(img, impact_x, 180, t, 0.7 * ramp(t, w.start, w.end), 90)
        if hit and int(t * 4) % 2 == 0:
            disk(img, a - 62, 190, 3, (255, 170, 0))
            disk(img, b + 62, 190, 3, (255, 170, 0))
        return img

    return frame


def scene_fall(w: Window, seed: int) -> SceneFn:
    """A pedestrian walks along the sidewalk, trips and lies on the ground."""
    bg = street_bg(seed)
    rect(bg, 150, 162, 160, 167, (110, 100, 90))

    def frame(i: int) -> Frame:
        t = i / FPS
        img = bg.copy()
        car(img, (t * 90) % 520 - 80, 230, (230, 200, 40))
        walk_t = min(t, w.start)
        x = 40 + 28 * walk_t
        fall = ramp(t, w.start, w.start + 0.7)
        tilt = fall * 1.45 - 0.15 * ramp(t, w.end - 1.5, w.end) * math.sin(t * 6) ** 2
        person(img, x + 8 * fall, 165, (180, 60, 140), phase=_walk_phase(walk_t, 28),
               stride=1 - fall, tilt=tilt, arms="up" if 0 < fall < 1 else "swing")
        return img

    return frame


def scene_building_fire(w: Window, seed: int) -> SceneFn:
    """Flames start in a house window and grow; smoke rises; a passer-by stops and stares."""
    bg = street_bg(seed)
    rect(bg, 120, 70, 210, 150, (170, 140, 110))
    rect(bg, 150, 90, 175, 115, (90, 110, 140))

    def frame(i: int) -> Frame:
        t = i / FPS
        img = bg.copy()
        grow = ramp(t, w.start, w.end - 2)
        flames(img, 162, 118, (6 + 26 * grow) if t >= w.start else 0.0, frame_rng(seed, i))
        flames(img, 140, 150, 22 * ramp(t, w.start + 2.5, w.end), frame_rng(seed + 1, i))
        smoke(img, 162, 90, t, grow)
        px = 20 + 25 * min(t, w.start + 1)
        person(img, px, 168, (60, 90, 170), phase=_walk_phase(min(t, w.start + 1), 25),
               arms="up" if t > w.start + 1.5 else "swing", scale=0.9)
        return img

    return frame


def scene_theft(w: Window, seed: int, grab: float) -> SceneFn:
    """A bag rests on a bench next to its owner; a passer-by snatches it and runs off."""
    bg = park_bg(seed)

    def frame(i: int) -> Frame:
        t = i / FPS
        img = bg.copy()
        person(img, 75, 186, (200, 80, 80), arms="hold" if t < grab + 0.8 else "up", scale=0.9,
               tilt=-0.25 if t > grab + 0.8 else 0.0)
        stop = 112.0
        thief_x = 300 - (300 - stop) * t / grab if t < grab else stop + 95 * (t - grab)
        if t < grab:
            rect(img, 98, 162, 112, 170, (150, 90, 30))
        if t < w.end + 1:
            holding = t >= grab
            person(img, thief_x, 200, (40, 40, 45), phase=_walk_phase(t, 40 if t < grab else 95),
                   stride=1.0 if t < grab else 1.6, facing=-1 if t < grab else 1,
                   arms="hold" if holding else "swing")
            if holding:
                rect(img, thief_x + 8, 168, thief_x + 22, 176, (150, 90, 30))
        return img

    return frame


def scene_fight(w: Window, seed: int) -> SceneFn:
    """Two people meet on the sidewalk, trade punches, and one of them falls."""
    bg = street_bg(seed)
    meet = w.start
    knock = w.end - 1

    def frame(i: int) -> Frame:
        t = i / FPS
        img = bg.copy()
        d = max(0.0, (meet - t)) * 30
        fighting = meet <= t < knock
        jab = int(t * 5) % 2 == 0
        xa, xb = 145 - d, 175 + d
        if fighting:
            xa += 4 * jab
            xb -= 4 * (not jab)
        person(img, xa, 168, (200, 60, 50), phase=_walk_phase(t, 30), stride=1.0 if d else 0.2,
               arms="punch" if fighting and jab else "swing")
        fall = ramp(t, knock, knock + 0.6)
        person(img, xb + 10 * fall, 168, (60, 120, 200), facing=-1, phase=_walk_phase(t, 30),
               stride=1.0 if d else 0.2, arms="punch" if fighting and not jab else "swing",
               tilt=-1.4 * fall)
        return img

    return frame


def scene_graffiti(w: Window, seed: int) -> SceneFn:
    """A person walks up to a clean wall and sprays paint over it, then leaves."""
    bg = street_bg(seed)
    rect(bg, 60, 95, 260, 160, (200, 195, 185))
    rng = np.random.default_rng(seed)
    path = np.cumsum(rng.uniform([-4, -6], [10, 6], (60, 2)), axis=0) + np.array([90, 125])
    path[:, 1] = np.clip(path[:, 1], 100, 155)

    def frame(i: int) -> Frame:
        t = i / FPS
        img = bg.copy()
        done = int(len(path) * ramp(t, w.start, w.end))
        for k in range(1, done):
            line(img, *path[k - 1], *path[k], (230, 30, 160) if k < 35 else (30, 200, 60), 4)
        if t < w.start:
            x = 10 + (path[0, 0] - 22) * t / w.start
        elif t < w.end:
            x = path[max(0, done - 1), 0] - 12
        else:
            x = path[-1, 0] - 12 + 60 * (t - w.end)
        spraying = w.start <= t < w.end
        person(img, x, 168, (240, 140, 30), phase=_walk_phase(t, 25), stride=0.2 if spraying else 1.0,
               arms="reach" if spraying else "swing")
        return img

    return frame


def scene_dog_attack(w: Window, seed: int) -> SceneFn:
    """A dog runs up to a walker, jumps at them and knocks them down."""
    bg = park_bg(seed)

    def frame(i: int) -> Frame:
        t = i / FPS
        img = bg.copy()
        px = 170 + 12 * min(t, w.start)
        fall = ramp(t, w.start + 2, w.start + 2.6)
        person(img, px, 205, (90, 160, 200), phase=_walk_phase(min(t, w.start), 12),
               stride=1 - fall, arms="up" if t > w.start else "swing", tilt=1.4 * fall)
        dx = min(px - 15, -30 + 55 * t)
        leap = 14 * abs(math.sin(t * 8)) if w.start <= t < w.end else 0.0
        dog(img, dx, 208, t * 14, leap=leap)
        return img

    return frame


def scene_drowning(w: Window, seed: int) -> SceneFn:
    """A swimmer crosses the water, then struggles and goes under; a ring buoy is thrown in."""
    bg = water_bg(seed)

    def frame(i: int) -> Frame:
        t = i / FPS
        img = bg.copy()
        x = 60 + 12 * min(t, w.start)
        struggle = w.start <= t
        bob = 6 * math.sin(t * 7) if struggle else 1.5 * math.sin(t * 3)
        sink = 10 * ramp(t, w.start + 2, w.end - 1)
        y = 160 + bob + sink
        if struggle:
            for k in range(5):
                disk(img, x + 14 * math.cos(k * 1.3 + t * 5), y + 2 + 3 * math.sin(k), 3, (235, 245, 250),
                     alpha=0.8)
            line(img, x - 4, y, x - 10, y - 18 - 4 * math.sin(t * 9), SKIN, 3)
            line(img, x + 4, y, x + 10, y - 18 - 4 * math.cos(t * 9), SKIN, 3)
        else:
            line(img, x - 12, y + 2, x + 12, y + 2 + 3 * math.sin(t * 6), SKIN, 3)
        disk(img, x, y - 4, 6, SKIN)
        rect(img, x - 20, y + 2, x + 20, y + 12, (40, 100, 160))
        if t > w.end - 1.5:
            ring_x = 300 - 150 * ramp(t, w.end - 1.5, w.end - 0.5)
            disk(img, ring_x, y - 2, 8, (250, 120, 20))
            disk(img, ring_x, y - 2, 4, (40, 100, 160))
        return img

    return frame


def scene_robbery(w: Window, seed: int) -> SceneFn:
    """A masked customer threatens the clerk, takes the cash box and runs out of the shop."""
    bg = shop_bg(seed)

    def frame(i: int) -> Frame:
        t = i / FPS
        img = bg.copy()
        threat = w.start <= t
        leave = w.end - 1.5
        person(img, 160, 168, (70, 160, 90), facing=-1, arms="up" if threat else "swing", stride=0.0)
        has_cash = t >= leave
        if not has_cash:
            rect(img, 125, 155, 145, 165, (230, 200, 40))
        x = 25 + 75 * ramp(t, 1.0, w.start) if t < leave else 100 - 110 * (t - leave)
        person(img, x, GROUND, DARK, phase=_walk_phase(t, 40), stride=0 if threat and t < leave else 1.3,
               facing=1 if t < leave else -1, arms="punch" if threat and t < leave else "hold")
        disk(img, x, GROUND - 42, 5.5, (20, 20, 20))
        if threat and t < leave:
            rect(img, x + 16, GROUND - 36, x + 25, GROUND - 32, (10, 10, 10))
        if has_cash:
            rect(img, x - 22, GROUND - 32, x - 8, GROUND - 24, (230, 200, 40))
        return img

    return frame


def scene_red_light(w: Window, seed: int) -> SceneFn:
    """Traffic waits at a red light; one car speeds through it past a crossing pedestrian."""
    bg = street_bg(seed, with_light=True)

    def frame(i: int) -> Frame:
        t = i / FPS
        img = bg.copy()
        disk(img, 238, 80, 5, (255, 30, 30))
        disk(img, 238, 100, 5, (40, 60, 40))
        car(img, min(215, -10 + 60 * t), 205, (230, 230, 230))
        speeder = -80 + 260 * max(0.0, t - (w.start - 1))
        car(img, speeder, 232, (220, 120, 20))
        walker_y = 226 - 8 * ramp(t, w.start, w.start + 0.6)
        person(img, 262 + 2 * min(t, w.start), walker_y, (120, 60, 160), phase=_walk_phase(t, 10),
               arms="up" if w.start <= t < w.end else "swing", stride=0.5, scale=0.8)
        return img

    return frame


def scene_forest_fire(w: Window, seed: int) -> SceneFn:
    """Fire starts at one tree and spreads along the ridge under a thickening smoke cloud."""
    bg, xs = forest_bg(seed)

    def frame(i: int) -> Frame:
        t = i / FPS
        img = bg.copy()
        for k, tx in enumerate(xs):
            lit = w.start + 0.8 * k
            size = 24 * ramp(t, lit, lit + 2)
            flames(img, tx, 160, size, frame_rng(seed + k, i))
            smoke(img, tx, 110, t + k, ramp(t, lit + 1, lit + 4) * 0.8, 100)
        return img

    return frame


def scene_boat(w: Window, seed: int, flip_at: float) -> SceneFn:
    """A small boat rocks harder and harder in the waves and capsizes at ``flip_at``; its crew ends in the water."""
    bg = water_bg(seed)
    w = Window(flip_at, w.end)

    def frame(i: int) -> Frame:
        t = i / FPS
        img = bg.copy()
        x = 60 + 15 * t
        flip = ramp(t, w.start, w.start + 1)
        roll = (0.1 + 0.3 * ramp(t, w.start - 2, w.start)) * math.sin(t * 4) * (1 - flip)
        if flip < 1:
            angle = roll + flip * 1.4
            dx, dy = 30 * math.cos(angle), 30 * math.sin(angle)
            line(img, x - dx, 156 + dy, x + dx, 156 - dy, (150, 60, 40), 10)
            if flip < 0.5:
                person(img, x - 10, 150 + 10 * roll, (240, 200, 30), scale=0.7, stride=0, tilt=roll)
                person(img, x + 12, 150 - 10 * roll, (240, 60, 30), scale=0.7, stride=0, tilt=roll)
        else:
            ellipse(img, x, 160, 34, 7, (150, 60, 40))
            for k, dx in enumerate((-30, 35)):
                disk(img, x + dx, 168 + 3 * math.sin(t * 6 + k), 5, SKIN)
                line(img, x + dx, 166, x + dx + 6, 150 + 4 * math.sin(t * 8 + k), SKIN, 2)
        for k in range(6):
            wx = (k * 60 + t * 40 * (1 + ramp(t, w.start - 2, w.start))) % 340 - 10
            ellipse(img, wx, 168, 16, 3 + 3 * ramp(t, w.start - 2, w.start), (210, 230, 245), alpha=0.7)
        return img

    return frame


def scene_fireworks(w: Window, seed: int) -> SceneFn:
    """Someone sets off fireworks on a busy street; sparks burst over the road."""
    bg = street_bg(seed)
    rng = np.random.default_rng(seed)
    bursts = [(float(rng.uniform(80, 260)), float(rng.uniform(40, 100)), w.start + 0.5 + 0.6 * k) for k in range(5)]
    palette = [(255, 220, 80), (255, 80, 80), (120, 220, 255), (200, 120, 255)]

    def frame(i: int) -> Frame:
        t = i / FPS
        img = bg.copy()
        person(img, 140 + 20 * min(t, w.start - 1) / max(1.0, w.start - 1), 168, (90, 90, 200),
               arms="reach" if w.start - 1 <= t < w.start else "swing", stride=0.3, phase=t * 3)
        rect(img, 168, 158, 172, 168, (200, 30, 30))
        car(img, (t * 70) % 500 - 90, 220, (80, 180, 120))
        for k, (bx, by, t0) in enumerate(bursts):
            dt = t - t0
            if 0 <= dt < 1.6 and t < w.end:
                for j in range(14):
                    ang = j * 2 * math.pi / 14
                    r = 45 * min(dt, 0.8)
                    disk(img, bx + r * math.cos(ang), by + r * math.sin(ang) + 12 * dt * dt, 3,
                         palette[k % len(palette)])
            elif -0.5 <= dt < 0:
                disk(img, 170 + (bx - 170) * (dt + 0.5) * 2, 160 + (by - 160) * (dt + 0.5) * 2, 2,
                     (255, 240, 200))
        return img

    return frame


def scene_smash(w: Window, seed: int) -> SceneFn:
    """A passer-by kicks over a rubbish bin and smashes a bus-shelter pane; glass scatters."""
    bg = street_bg(seed)
    rng = np.random.default_rng(seed)
    shards = rng.uniform([-50, 20], [50, 90], (16, 2))

    def frame(i: int) -> Frame:
        t = i / FPS
        img = bg.copy()
        broken = t >= w.start + 1
        rect(img, 200, 100, 204, 165, DARK)
        rect(img, 260, 100, 264, 165, DARK)
        rect(img, 198, 96, 266, 101, DARK)
        if not broken:
            rect(img, 205, 104, 259, 160, (180, 215, 230))
        else:
            for k in range(5):
                line(img, 205 + 10 * k, 104, 215 + 6 * k, 160, (180, 215, 230), 2)
        tip = ramp(t, w.start, w.start + 0.3)
        if tip < 1:
            rect(img, 150, 145, 164, 167, (60, 110, 60))
        else:
            rect(img, 146, 158, 170, 167, (60, 110, 60))
            rect(img, 171, 163, 180, 167, (150, 140, 120))
        particles(img, (230, 130), shards, t - (w.start + 1), [(210, 235, 245)] * 16, 168)
        x = 30 + 30 * min(t, w.start) + (70 * (t - w.end) if t > w.end else 0)
        acting = w.start <= t < w.end
        person(img, min(x, 190) if t <= w.end else x, 168, (150, 30, 30), phase=_walk_phase(t, 30),
               arms="punch" if acting else "swing", stride=0.4 if acting else 1.0)
        return img

    return frame


SCENES: dict[str, Callable[..., SceneFn]] = {
    "collision": scene_collision,
    "fall": scene_fall,
    "building_fire": scene_building_fire,
    "theft": scene_theft,
    "fight": scene_fight,
    "graffiti": scene_graffiti,
    "dog_attack": scene_dog_attack,
    "drowning": scene_drowning,
    "robbery": scene_robbery,
    "red_light": scene_red_light,
    "forest_fire": scene_forest_fire,
    "boat": scene_boat,
    "fireworks": scene_fireworks,
    "smash": scene_smash,
}


def build_scene(name: str, window: Window, seed: int, **params: float) -> SceneFn:
    """The frame function for one demo scene (see :data:`SCENES`)."""
    return SCENES[name](window, seed, **params)
