"""Car sprites for the sample footage: a car drawn front or rear view with its plate.

The body, windows, lights and wheels are simple shapes; the plate comes from
``citywatch.sample.plate_render`` (degraded with mild blur, noise and JPEG artefacts). A car is
drawn once at the largest size it will be shown and scaled per frame by
``citywatch.sample.vehicles.VehicleTrack``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from citywatch.sample.plate_render import PLATE_MM, PlateStyle, degrade_plate, render_plate

PLATE_SHARE = 0.28  # plate width / car width (520 mm on a ~1.85 m wide car)
CAR_ASPECT = 0.8  # car height / width, front or rear view
_PLATE_Y = 0.77  # plate centre, fraction of the car height from its top
ImageU8 = np.ndarray


@dataclass(frozen=True)
class CarSprite:
    """A car drawn at its largest size: premultiplied BGR, alpha, where its plate is."""

    premult: ImageU8  # BGR * alpha, uint8
    alpha: np.ndarray  # float32 0..1, same height and width
    plate_box: tuple[float, float, float, float]  # x1, y1, x2, y2 in sprite pixels
    plate_px: float  # plate width at this size

    @classmethod
    def outline(cls, plate_px: float) -> CarSprite:
        """The geometry of ``render_car(..., plate_px, ...)`` without drawing it (planning)."""
        width, height, box = _car_geometry(plate_px)
        return cls(
            np.zeros((1, 1, 3), np.uint8), np.zeros((height, width), np.float32), box, float(round(plate_px))
        )


# --- drawing -------------------------------------------------------------------------


def _fill(
    canvas: np.ndarray, mask: np.ndarray, points: list[tuple[float, float]], colour: tuple[int, int, int]
) -> None:
    h, w = mask.shape
    poly = np.round(np.array([(x * w, y * h) for x, y in points]) * 16).astype(np.int32)
    cv2.fillPoly(canvas, [poly], colour, lineType=cv2.LINE_AA, shift=4)
    cv2.fillPoly(mask, [poly], 255, lineType=cv2.LINE_AA, shift=4)


def _rounded(
    x1: float, y1: float, x2: float, y2: float, r: float, aspect: float
) -> list[tuple[float, float]]:
    """A rounded rectangle in fractions of the car (``r`` of the width)."""
    ry = r / aspect
    corners = ((x2 - r, y1 + ry, -90), (x2 - r, y2 - ry, 0), (x1 + r, y2 - ry, 90), (x1 + r, y1 + ry, 180))
    return [
        (cx + r * math.cos(math.radians(a0 + d)), cy + ry * math.sin(math.radians(a0 + d)))
        for cx, cy, a0 in corners
        for d in range(0, 91, 15)
    ]


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    r, g, b = (int(min(255, c * factor)) for c in colour)
    return r, g, b


def _car_geometry(plate_px: float) -> tuple[int, int, tuple[float, float, float, float]]:
    """Sprite width, height and plate box of a car whose plate is ``plate_px`` wide."""
    width = max(16, round(plate_px / PLATE_SHARE))
    height = round(width * CAR_ASPECT)
    plate_w = round(plate_px)
    plate_h = max(4, round(plate_w * PLATE_MM[1] / PLATE_MM[0]))  # as render_plate sizes it
    cx, cy = width / 2, _PLATE_Y * height
    return width, height, (cx - plate_w / 2, cy - plate_h / 2, cx + plate_w / 2, cy + plate_h / 2)


def _draw_body(canvas: ImageU8, mask: np.ndarray, style: PlateStyle, body: tuple[int, int, int]) -> None:
    """Wheels, cabin, windscreen (or rear window), mirrors, lamps, grille, bumper."""
    tyre, glass = (28, 28, 30), (70, 62, 58)
    for x1 in (0.07, 0.75):
        _fill(canvas, mask, _rounded(x1, 0.78, x1 + 0.18, 1.0, 0.03, CAR_ASPECT), tyre)
    cabin = [(0.17, 0.03), (0.83, 0.03), (0.96, 0.46), (0.04, 0.46)]
    _fill(canvas, mask, cabin, _shade(body, 0.92))
    _fill(canvas, mask, _rounded(0.0, 0.42, 1.0, 0.92, 0.06, CAR_ASPECT), body)
    _fill(canvas, mask, [(0.21, 0.08), (0.79, 0.08), (0.9, 0.41), (0.1, 0.41)], glass)
    glare = [(0.55, 0.08), (0.63, 0.08), (0.45, 0.41), (0.37, 0.41)]
    _fill(canvas, mask, glare, _shade(glass, 1.35))
    for x1 in (0.0, 0.93):
        _fill(canvas, mask, [(x1, 0.36), (x1 + 0.07, 0.36), (x1 + 0.07, 0.44), (x1, 0.44)], _shade(body, 0.7))
    lamp = (225, 232, 235) if style == "front" else (45, 40, 205)
    for x1 in (0.05, 0.74):
        _fill(canvas, mask, _rounded(x1, 0.48, x1 + 0.21, 0.58, 0.025, CAR_ASPECT), lamp)
    if style == "front":
        _fill(canvas, mask, _rounded(0.33, 0.5, 0.67, 0.61, 0.02, CAR_ASPECT), (38, 38, 40))
    else:
        _fill(canvas, mask, [(0.08, 0.62), (0.92, 0.62), (0.92, 0.635), (0.08, 0.635)], _shade(body, 0.6))
    _fill(canvas, mask, _rounded(0.02, 0.66, 0.98, 0.9, 0.04, CAR_ASPECT), _shade(body, 0.8))


def _paste_plate(
    canvas: ImageU8,
    plate: str,
    style: PlateStyle,
    box: tuple[float, float, float, float],
    rng: np.random.Generator,
) -> None:
    """The rendered plate, mildly blurred, noisy and JPEG-compressed, centred on ``box``."""
    image = render_plate(plate, style=style, width_px=round(box[2] - box[0]), rng=rng)
    bgra = degrade_plate(
        image,
        rng,
        blur=float(rng.uniform(0.6, 1.4)),
        rotation_deg=float(rng.uniform(-1.0, 1.0)),
        perspective=0.01,
        noise=float(rng.uniform(2.0, 4.0)),
        jpeg_quality=int(rng.integers(55, 81)),
    )
    h, w = bgra.shape[:2]
    x0, y0 = round((box[0] + box[2] - w) / 2), round((box[1] + box[3] - h) / 2)
    alpha = bgra[..., 3:].astype(np.float32) / 255.0
    roi = canvas[y0 : y0 + h, x0 : x0 + w]
    roi[:] = (bgra[..., :3] * alpha + roi * (1.0 - alpha) + 0.5).astype(np.uint8)


def render_car(
    plate: str, style: PlateStyle, plate_px: float, body: tuple[int, int, int], rng: np.random.Generator
) -> CarSprite:
    """A front (``style="front"``) or rear view of a car whose plate is ``plate_px`` wide."""
    width, height, box = _car_geometry(plate_px)
    canvas = np.zeros((height, width, 3), np.uint8)
    mask = np.zeros((height, width), np.uint8)
    _draw_body(canvas, mask, style, body)
    light = np.linspace(1.06, 0.9, height, dtype=np.float32)[:, None, None]  # lit from above
    canvas = (canvas.astype(np.float32) * light).clip(0, 255).astype(np.uint8)
    _paste_plate(canvas, plate, style, box, rng)
    canvas = cv2.GaussianBlur(canvas, (3, 3), 0.6)
    alpha = cv2.GaussianBlur(mask, (3, 3), 0.8).astype(np.float32) / 255.0
    premult = (canvas.astype(np.float32) * alpha[:, :, None] + 0.5).astype(np.uint8)
    return CarSprite(premult, alpha, box, float(round(plate_px)))


# --- plates --------------------------------------------------------------------------
