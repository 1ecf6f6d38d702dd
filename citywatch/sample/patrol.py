"""The sample's patrol car: a mobile camera driving up Nathan Road past parked cars.

Its one segment pans over a strip of street photos (``PanningBackground``) while the
car drives north at a steady speed; parked cars along the kerb slide through the view,
each plate wholly in view for several seconds. ``<stamp>.gps.csv`` beside the segment
gives the car's position once a second (``ts,lat,lon``, ts in ISO UTC), along a
polyline of the real road, far (> 1 km) from the sample's fixed cameras.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np

from citywatch.sample.cameras import CameraSite
from citywatch.sample.cars import PLATE_SHARE, render_car
from citywatch.sample.plan import SampleConfig
from citywatch.sample.plate_render import PlateStyle
from citywatch.sample.vehicles import VehicleTrack, pick_plates
from citywatch.times import format_utc

PATROL = CameraSite(
    "car-patrol-kt3",
    "Patrol car KT-3 (dashboard camera)",
    "Yau Tsim Mong",
    None,
    None,
    1.4,
    "leuvenA.jpg+leuvenB.jpg",
    0.5,
    12,
    0.0,
    0.0,
    (0, 0),
    kind="mobile",
    road=(712.0, 0.0),
    pan_px_per_s=150.0,
)
# Nathan Road northbound, from Salisbury Road towards Jordan Road (lat, lon)
ROUTE: tuple[tuple[float, float], ...] = (
    (22.29520, 114.17212),
    (22.29790, 114.17232),
    (22.30050, 114.17220),
    (22.30290, 114.17196),
    (22.30480, 114.17172),
)
SPEED_M_S = 6.0  # ~22 km/h in traffic
PARKED_PLATE_PX = (105.0, 150.0)
_M_PER_DEG_LAT = 111_320.0
_COLOURS = ((235, 235, 232), (192, 194, 197), (32, 32, 34), (40, 40, 185), (110, 60, 25))


def _leg_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    dy = (b[0] - a[0]) * _M_PER_DEG_LAT
    dx = (b[1] - a[1]) * _M_PER_DEG_LAT * math.cos(math.radians((a[0] + b[0]) / 2))
    return math.hypot(dx, dy)


def position_at(distance_m: float) -> tuple[float, float]:
    """The point ``distance_m`` along ``ROUTE`` (held at its end)."""
    for a, b in zip(ROUTE, ROUTE[1:]):
        leg = _leg_m(a, b)
        if distance_m <= leg:
            u = distance_m / leg
            return (round(a[0] + u * (b[0] - a[0]), 7), round(a[1] + u * (b[1] - a[1]), 7))
        distance_m -= leg
    return ROUTE[-1]


def gps_csv(start: datetime, duration_s: float) -> str:
    """The segment's sidecar: one position a second, from its start to its end."""
    lines = ["ts,lat,lon"]
    for second in range(math.ceil(duration_s) + 1):
        lat, lon = position_at(SPEED_M_S * second)
        lines.append(f"{format_utc(start + timedelta(seconds=second), 'seconds')},{lat:.7f},{lon:.7f}")
    return "\n".join(lines) + "\n"


def plan_patrol(
    site: CameraSite, cfg: SampleConfig, rng: np.random.Generator, taken: set[str]
) -> list[VehicleTrack]:
    """Parked cars the patrol car passes: 2-4 (one per ~7 s), spread over the segment.

    A parked car slides right to left at the pan speed; car ``i`` is centred in view at
    ``(i + 0.5) / n`` of the segment. Its track is clipped to the segment.
    """
    duration = cfg.segment_seconds
    count = min(4, max(2, round(duration / 7)))
    plates = pick_plates(count, rng, taken)
    k = cfg.height / 720
    last = (cfg.frames_per_segment - 1) / cfg.fps
    tracks = []
    for i, plate in enumerate(plates):
        plate_px = k * rng.uniform(*PARKED_PLATE_PX)
        half = plate_px / PLATE_SHARE / 2
        centred = duration * (i + 0.5) / count
        reach = (cfg.width / 2 + half + 2) / site.pan_px_per_s
        t0, t1 = max(0.0, centred - reach), min(last, centred + reach)

        def x_at(t: float, centred: float = centred) -> float:
            return cfg.width / 2 + site.pan_px_per_s * (centred - t)

        bottom = k * site.road[0] + rng.uniform(-0.01, 0.01) * cfg.height
        style: PlateStyle = "rear" if rng.random() < 0.5 else "front"
        car = render_car(plate, style, plate_px, _COLOURS[int(rng.integers(len(_COLOURS)))], rng)
        tracks.append(
            VehicleTrack(
                plate,
                style,
                car,
                t0,
                t1,
                (x_at(t0), bottom, plate_px),
                (x_at(t1), bottom, plate_px),
                blur_px=0.0,
            )
        )
    return tracks
