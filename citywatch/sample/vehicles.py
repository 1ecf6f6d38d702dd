"""Vehicles with licence plates in the sample footage: paths and truth rows (sprites: sample_cars).

A car is drawn once, front or rear view, at the largest size it will be shown (body,
windows, lights, wheels and a plate from ``citywatch.sample.plate_render``, degraded with mild
blur, noise and JPEG artefacts), then scaled per frame. Front plates (white) are on
cars coming nearer, rear plates (yellow) on cars going away. At the fixed cameras a car
crosses the frame from edge to edge in 3-8 s along the camera's road, getting nearer or
further; it never touches a face, a privacy mask or the on-screen display, and its plate
is never hidden by a nearer person. Plates are "readable" (>= 85 px wide all the way)
or "small" (40-75 px).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import cv2
import numpy as np

from citywatch.errors import BadInputError
from citywatch.geometry import PixelBox
from citywatch.plates import DEFAULT_PLATE_GRAMMAR, fix_confusables, plate_distance
from citywatch.sample.cameras import CameraSite
from citywatch.sample.cars import PLATE_SHARE, CarSprite, ImageU8, render_car
from citywatch.sample.plan import Placement, SampleConfig
from citywatch.sample.plate_render import PlateStyle, random_hk_plate
from citywatch.sample.scene import osd_box
from citywatch.sample.truth import FaceBox, VehicleTruth

_FACE_FROM_PLATE = 0.385  # a face (~0.2 m) vs a plate (0.52 m) at the same distance
MIN_DRIVE_S, MAX_DRIVE_S = 3.0, 8.0
READABLE_PX = (85.0, 200.0)
SMALL_PX = (40.0, 75.0)
# most a plate moves between samples 0.5 s apart, in plate widths (the indexer's tracker
# follows a text box that moves up to ~3 box widths; the text is narrower than the plate)
_MAX_STEP = {True: 1.3, False: 2.2}
PERSONALISED = ("MYCAR", "BATMAN", "LUCKY8")  # read the same whatever the confusables
_EXPOSURE_S = 1 / 150  # motion blur: how far a car moves while the shutter is open
_TRIES = 120
_COLOURS = (
    (235, 235, 232),
    (192, 194, 197),
    (32, 32, 34),
    (82, 82, 88),
    (40, 40, 185),
    (110, 60, 25),
    (50, 85, 40),
    (165, 195, 212),
    (150, 95, 40),
    (45, 35, 200),
)


@dataclass(frozen=True)
class VehicleTrack:
    """A car moving on a straight path: (centre x, bottom y, plate width px) from
    ``start`` to ``end`` between ``t_start`` and ``t_end`` (camera time, s)."""

    plate: str
    style: PlateStyle
    car: CarSprite
    t_start: float
    t_end: float
    start: tuple[float, float, float]
    end: tuple[float, float, float]
    blur_px: float  # horizontal motion blur length

    def _state(self, t: float) -> tuple[float, float, float]:
        u = min(1.0, max(0.0, (t - self.t_start) / (self.t_end - self.t_start)))
        x, y, p = (a + (b - a) * u for a, b in zip(self.start, self.end))
        return x, y, p

    def _placement(self, t: float) -> tuple[int, int, int, int]:
        cx, bottom, plate_w = self._state(t)
        h, w = self.car.alpha.shape
        scale = plate_w / self.car.plate_px
        new_w, new_h = max(2, round(w * scale)), max(2, round(h * scale))
        return round(cx - new_w / 2), round(bottom - new_h), new_w, new_h

    def extent(self, t: float) -> PixelBox:
        x0, y0, new_w, new_h = self._placement(t)
        return (x0, y0, x0 + new_w, y0 + new_h)

    def plate_box(self, t: float) -> PixelBox:
        """The plate as composited at ``t`` (not clipped to the frame)."""
        x0, y0, new_w, new_h = self._placement(t)
        h, w = self.car.alpha.shape
        x1, y1, x2, y2 = self.car.plate_box
        rx, ry = new_w / w, new_h / h
        return (round(x0 + x1 * rx), round(y0 + y1 * ry), round(x0 + x2 * rx), round(y0 + y2 * ry))

    def depth(self, t: float) -> float:
        return _FACE_FROM_PLATE * self._state(t)[2]  # comparable with a person's face px

    def draw(self, frame: ImageU8, t: float) -> None:
        x0, y0, new_w, new_h = self._placement(t)
        height, width = frame.shape[:2]
        xa, ya, xb, yb = max(0, x0), max(0, y0), min(width, x0 + new_w), min(height, y0 + new_h)
        if xa >= xb or ya >= yb:
            return
        premult = cv2.resize(self.car.premult, (new_w, new_h), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(self.car.alpha, (new_w, new_h), interpolation=cv2.INTER_AREA)
        k = round(self.blur_px)
        if k >= 2:
            premult, alpha = cv2.blur(premult, (k, 1)), cv2.blur(alpha, (k, 1))
        sub = (slice(ya - y0, yb - y0), slice(xa - x0, xb - x0))
        a = alpha[sub][:, :, None]
        roi = frame[ya:yb, xa:xb]
        roi[:] = (
            (premult[sub].astype(np.float32) + roi.astype(np.float32) * (1.0 - a) + 0.5)
            .clip(0, 255)
            .astype(np.uint8)
        )


def pick_plates(count: int, rng: np.random.Generator, taken: set[str]) -> list[str]:
    """``count`` distinct, standard HK marks, none within one confusable swap of another
    or of ``taken`` (so a search one character off finds exactly one plate)."""
    out: list[str] = []
    while len(out) < count:
        text = random_hk_plate(rng)
        if DEFAULT_PLATE_GRAMMAR.rank(text) != 0 or fix_confusables(text) != text:
            continue
        if all(plate_distance(text, other) > 1.0 for other in (*out, *taken)):
            out.append(text)
    return out


# --- placing cars at the fixed cameras ---------------------------------------------


@dataclass(frozen=True)
class VehiclePlacement:
    camera_index: int
    segment_index: int
    track: VehicleTrack


def _overlaps(a: PixelBox, b: PixelBox, margin: int) -> bool:
    return a[0] - margin < b[2] and b[0] - margin < a[2] and a[1] - margin < b[3] and b[1] - margin < a[3]


def frame_times(t_start: float, t_end: float, fps: int) -> list[float]:
    return [n / fps for n in range(math.ceil(t_start * fps), math.floor(t_end * fps) + 1)]


def _fits(track: VehicleTrack, people: list[Placement], forbidden: list[PixelBox], fps: int) -> bool:
    """Clear of privacy masks and the OSD; a car nearer than a person never covers the
    face, a person nearer than the car never covers the plate."""
    rivals = [p.track for p in people if p.track.t_start <= track.t_end and track.t_start <= p.track.t_end]
    for t in frame_times(track.t_start, track.t_end, fps):
        car, plate = track.extent(t), track.plate_box(t)
        if any(_overlaps(car, box, 4) for box in forbidden):
            return False
        for person in rivals:
            if not person.t_start <= t <= person.t_end:
                continue
            if person.depth(t) >= track.depth(t):
                if _overlaps(plate, person.extent(t), 6):
                    return False
            elif _overlaps(car, person.face_box(t), 8):
                return False
    return True


def car_clear_of(track: VehicleTrack, people: list[Placement], fps: int) -> bool:
    """``track`` never covers a face of ``people`` and they never cover its plate."""
    return _fits(track, people, [], fps)


def _candidate(
    plate: str,
    readable: bool,
    site: CameraSite,
    window: tuple[float, float],
    cfg: SampleConfig,
    rng: np.random.Generator,
) -> VehicleTrack | None:
    """A car crossing the frame within ``window`` (camera time), nearing or receding."""
    k = cfg.height / 720
    lo, hi = READABLE_PX if readable else SMALL_PX
    far = rng.uniform(lo, lo * (1.75 if readable else 1.45))
    near = min(hi, far * rng.uniform(1.1, 1.4))
    approaching = rng.random() < 0.5
    sizes = [k * far, k * near] if approaching else [k * near, k * far]
    road_y, road_rise = site.road
    bottoms = [k * road_y + road_rise * s + rng.uniform(-0.02, 0.02) * cfg.height for s in sizes]
    halves = [s / PLATE_SHARE / 2 + 2 for s in sizes]
    xs = [-halves[0], cfg.width + halves[1]]
    if rng.random() < 0.5:
        xs = [cfg.width + halves[0], -halves[1]]
    distance = abs(xs[1] - xs[0])
    mean_plate = (sizes[0] + sizes[1]) / 2
    shortest = max(MIN_DRIVE_S, distance / (2 * _MAX_STEP[readable] * mean_plate))
    longest = min(MAX_DRIVE_S, window[1] - window[0])
    if shortest > longest:
        return None
    duration = rng.uniform(shortest, longest)
    t0 = math.ceil(rng.uniform(window[0], window[1] - duration) * cfg.fps) / cfg.fps
    t1 = math.floor((t0 + duration) * cfg.fps) / cfg.fps
    style: PlateStyle = "front" if approaching else "rear"
    return VehicleTrack(
        plate,
        style,
        CarSprite.outline(max(sizes)),
        t0,
        t1,
        (xs[0], bottoms[0], sizes[0]),
        (xs[1], bottoms[1], sizes[1]),
        blur_px=distance / duration * _EXPOSURE_S,
    )


def _free_windows(
    segment: int, cfg: SampleConfig, taken: list[VehiclePlacement]
) -> list[tuple[float, float]]:
    seg_len = cfg.segment_seconds
    free = [(segment * seg_len + 1.0, (segment + 1) * seg_len - 0.5)]
    for other in taken:
        a, b = other.track.t_start - 0.5, other.track.t_end + 0.5
        free = [piece for x, y in free for piece in ((x, min(y, a)), (max(x, b), y)) if piece[1] > piece[0]]
    return [(x, y) for x, y in free if y - x >= MIN_DRIVE_S]


def _place_one(
    plate: str,
    readable: bool,
    site: CameraSite,
    segment: int,
    walkers: list[Placement],
    here: list[VehiclePlacement],
    cfg: SampleConfig,
    rng: np.random.Generator,
) -> VehicleTrack | None:
    """A drawn car at ``site`` in ``segment``, clear of the cars already ``here``."""
    forbidden = [*site.mask_boxes(cfg.size), osd_box(cfg.size)]
    for _ in range(_TRIES):
        windows = _free_windows(segment, cfg, here)
        if not windows:
            return None
        lengths = np.array([y - x for x, y in windows])
        window = windows[int(rng.choice(len(windows), p=lengths / lengths.sum()))]
        track = _candidate(plate, readable, site, window, cfg, rng)
        if track is not None and _fits(track, walkers, forbidden, cfg.fps):
            body = _COLOURS[int(rng.integers(len(_COLOURS)))]
            car = render_car(track.plate, track.style, track.car.plate_px, body, rng)
            return dataclasses.replace(track, car=car)
    return None


def plan_vehicles(
    sites: tuple[CameraSite, ...],
    people: list[Placement],
    cfg: SampleConfig,
    rng: np.random.Generator,
    taken: set[str],
) -> list[VehiclePlacement]:
    """Cars at the fixed cameras, one at a time per camera, ~one per 10 s of footage.

    Two in three are readable; the first carries a personalised mark. A slot too busy
    with people to fit a car is left without one.
    """
    per_segment = max(1, int(cfg.segment_seconds // 10))
    slots = [(c, s) for s in range(cfg.segments_per_camera) for c in range(len(sites))]
    plates = pick_plates(len(slots) * per_segment, rng, taken | set(PERSONALISED))
    plates[0] = PERSONALISED[int(rng.integers(len(PERSONALISED)))]
    placed: list[VehiclePlacement] = []
    for camera_index, segment in slots:
        walkers = [p for p in people if (p.camera_index, p.segment_index) == (camera_index, segment)]
        for _ in range(per_segment):
            here = [v for v in placed if (v.camera_index, v.segment_index) == (camera_index, segment)]
            n = len(placed)
            track = _place_one(plates[n], n % 3 != 2, sites[camera_index], segment, walkers, here, cfg, rng)
            if track is not None:
                placed.append(VehiclePlacement(camera_index, segment, track))
    return placed


# --- ground truth ------------------------------------------------------------------------


def vehicle_truth(
    track: VehicleTrack,
    camera_id: str,
    key: str,
    segment_start: datetime,
    first_frame: int,
    cfg: SampleConfig,
    where: tuple[float, float] | None = None,
    locate: Callable[[datetime], tuple[float, float] | None] | None = None,
) -> VehicleTruth:
    """The truth row of one car: when its plate is in view, its widths, boxes every 0.5 s,
    and where it was seen (``where``; or ``locate(best time)`` for a moving camera)."""
    fps = cfg.fps
    sample_frames = {math.floor(j * fps / 2 + 0.5) for j in range(2 * int(cfg.segment_seconds) + 1)}
    visible: list[int] = []
    boxes: list[FaceBox] = []
    full: list[tuple[int, float, int]] = []  # (plate width, -off centre, frame)
    for t in frame_times(track.t_start, track.t_end, fps):
        x1, y1, x2, y2 = track.plate_box(t)
        cx1, cy1, cx2, cy2 = max(0, x1), max(0, y1), min(cfg.width, x2), min(cfg.height, y2)
        if cx1 >= cx2 or cy1 >= cy2:
            continue
        frame = round(t * fps) - first_frame
        if not 0 <= frame < cfg.frames_per_segment:
            continue
        visible.append(frame)
        if (cx1, cy1, cx2, cy2) == (x1, y1, x2, y2):
            full.append((x2 - x1, -abs((x1 + x2) / 2 - cfg.width / 2), frame))
        if frame in sample_frames:
            boxes.append(FaceBox(round(frame / fps, 4), cx1, cy1, cx2, cy2))
    if not full:
        raise BadInputError(f"plate {track.plate} on {camera_id} is never fully in view")
    best_frame = max(full)[2]
    best = segment_start + timedelta(milliseconds=round(best_frame * 1000 / fps))
    if locate is not None:
        where = locate(best)
    widths = [w for w, _, _ in full]
    return VehicleTruth(
        plate=track.plate,
        style=track.style,
        camera_id=camera_id,
        key=key,
        start=segment_start + timedelta(milliseconds=round(visible[0] * 1000 / fps)),
        end=segment_start + timedelta(milliseconds=round(visible[-1] * 1000 / fps)),
        best=best,
        min_plate_px=min(widths),
        max_plate_px=max(widths),
        boxes=tuple(boxes),
        lat=where[0] if where else None,
        lon=where[1] if where else None,
    )
