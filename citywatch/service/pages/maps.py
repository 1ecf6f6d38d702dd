"""The console's maps: cameras, where a search's sightings are, and a search radius.

Drawn as SVG on Web Mercator coordinates, north up, one scale for both axes (so a radius
in metres is a circle). Offline by default: plain coordinates, nothing fetched. With
``settings.map.tiles_url`` (an operator's tile server), the 256 px tiles under the view are
drawn beneath; the pages' Content-Security-Policy then allows images from that host only
(render.py). Sightings at a fixed camera are counted on the camera; sightings from a
moving camera (a patrol car) are drawn at the GPS position their row carries.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from citywatch.schemas import CameraRow
from citywatch.settings import Settings

WIDTH, HEIGHT = 400, 220
MARGIN_X, MARGIN_Y = 24, 30
EARTH_M = 40_075_016.686  # the equator's length: metres per 256 world units at latitude 0
MAX_ZOOM = 19


@dataclass(frozen=True, slots=True)
class Located:
    """Something a search found, and where: its camera, and its GPS position if it has one."""

    camera_id: str
    lat: float | None
    lon: float | None
    label: str  # e.g. the plate's text, or "#3"


@dataclass(frozen=True, slots=True)
class Spot:
    """A camera, or a sighting at its GPS position, in SVG units."""

    x: float
    y: float
    label: str
    camera_id: str
    title: str
    anchor: str = "start"  # the label right of the dot ("start"), left of it ("end"), centred ("middle")
    label_dy: float = 4.0  # the label's baseline below the dot's centre
    label_x: float = 0.0
    count: int = 0  # sightings at this camera


@dataclass(frozen=True, slots=True)
class Tile:
    x: float
    y: float
    size: float
    href: str


@dataclass(frozen=True, slots=True)
class Circle:
    x: float
    y: float
    r: float
    radius_m: float


@dataclass(frozen=True, slots=True)
class MapView:
    width: int
    height: int
    cameras: list[Spot]
    sightings: list[Spot]
    circle: Circle | None
    tiles: list[Tile]
    caption: str
    label: str  # for screen readers


def world(lat: float, lon: float) -> tuple[float, float]:
    """Web Mercator at zoom 0: (0..256, 0..256), y down."""
    lat = max(-85.05112878, min(85.05112878, lat))
    x = (lon + 180.0) / 360.0 * 256.0
    y = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * 256.0
    return x, y


@dataclass(frozen=True, slots=True)
class Frame:
    """World units -> SVG units: ``x = ox + scale * wx``."""

    scale: float
    ox: float
    oy: float

    def at(self, lat: float, lon: float) -> tuple[float, float]:
        wx, wy = world(lat, lon)
        return round(self.ox + self.scale * wx, 1), round(self.oy + self.scale * wy, 1)


def fit(points: Sequence[tuple[float, float]]) -> Frame:
    """The frame that shows every (lat, lon) of ``points`` inside the margins."""
    xs, ys = zip(*(world(lat, lon) for lat, lon in points))
    dx = max(max(xs) - min(xs), 2e-4)
    dy = max(max(ys) - min(ys), 2e-4)
    scale = min((WIDTH - 2 * MARGIN_X) / dx, (HEIGHT - 2 * MARGIN_Y) / dy)
    return Frame(
        scale,
        WIDTH / 2 - scale * (min(xs) + max(xs)) / 2,
        HEIGHT / 2 - scale * (min(ys) + max(ys)) / 2,
    )


def tiles_for(frame: Frame, url: str) -> list[Tile]:
    """The tiles of ``url`` under the view, at the zoom whose tiles are 128-256 SVG units wide."""
    if not url:
        return []
    zoom = max(0, min(MAX_ZOOM, math.ceil(math.log2(frame.scale))))
    count = 2**zoom
    size = frame.scale * 256.0 / count
    left, top = -frame.ox / frame.scale, -frame.oy / frame.scale
    right, bottom = (WIDTH - frame.ox) / frame.scale, (HEIGHT - frame.oy) / frame.scale
    first_x, last_x = (max(0, min(count - 1, int(v * count // 256))) for v in (left, right))
    first_y, last_y = (max(0, min(count - 1, int(v * count // 256))) for v in (top, bottom))
    return [
        Tile(
            round(frame.ox + tx * size, 2),
            round(frame.oy + ty * size, 2),
            round(size, 2),
            url.replace("{z}", str(zoom)).replace("{x}", str(tx)).replace("{y}", str(ty)),
        )
        for ty in range(first_y, last_y + 1)
        for tx in range(first_x, last_x + 1)
    ]


def _width(spot: Spot) -> float:
    """About how wide a label is in SVG units (11 px system-ui; bold for a counted camera)."""
    return len(spot.label) * (6.8 if spot.count else 6.2)


def _placed(spots: list[Spot]) -> list[Spot]:
    """Labels beside their dot when nothing is near; a cluster's top dot labelled above,
    its bottom dot below (centred, kept inside the frame), the ones between beside."""
    placed: list[Spot] = []
    for spot in spots:
        width = _width(spot)
        cluster = sorted(
            (o for o in spots if abs(o.y - spot.y) < 18 and abs(o.x - spot.x) < max(width, _width(o)) + 20),
            key=lambda o: (o.y, o.x),
        )
        side = "start" if spot.x + 10 + width <= WIDTH else "end"
        where = "side"
        if len(cluster) > 1 and cluster[0] is spot:
            where = "above"
        elif len(cluster) > 1 and cluster[-1] is spot:
            where = "below"
        elif spot.x + 10 + width > WIDTH and spot.x - 10 - width < 0:
            where = "below"
        if where == "side":
            placed.append(replace(spot, anchor=side, label_x=spot.x + 10 if side == "start" else spot.x - 10))
        else:
            centre = min(max(spot.x, width / 2 + 2), WIDTH - width / 2 - 2)
            dy = -11.0 if where == "above" else 20.0
            placed.append(replace(spot, anchor="middle", label_x=round(centre, 1), label_dy=dy))
    return placed


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}{'es' if word.endswith('s') else 's'}"


def map_view(
    settings: Settings,
    cameras: Iterable[CameraRow],
    found: Sequence[Located] = (),
    near: tuple[float, float, float] | None = None,
    what: str = "sighting",
) -> MapView | None:
    """The map of ``cameras`` with what a search ``found`` and its ``near`` (lat, lon, metres)."""
    located = {c.id: c for c in cameras if c.lat is not None and c.lon is not None}
    counts = Counter(f.camera_id for f in found if f.camera_id in located)
    moving = [f for f in found if f.camera_id not in located and f.lat is not None and f.lon is not None]
    points = [(float(f.lat or 0), float(f.lon or 0)) for f in moving]
    if near is not None:  # frame the radius and what was found in it
        lat, lon, metres = near
        dlat = metres / 111_320.0
        dlon = dlat / max(0.01, math.cos(math.radians(lat)))
        points += [(lat - dlat, lon - dlon), (lat + dlat, lon + dlon)]
        points += [(float(c.lat or 0), float(c.lon or 0)) for c in located.values() if counts.get(c.id)]
    else:  # every camera, for context
        points += [(float(c.lat or 0), float(c.lon or 0)) for c in located.values()]
    if not points:
        return None
    frame = fit(points)
    spots = []
    for c in located.values():
        x, y = frame.at(float(c.lat or 0), float(c.lon or 0))
        if not (0 <= x <= WIDTH and 0 <= y <= HEIGHT):
            continue  # outside a radius's frame
        n = counts.get(c.id, 0)
        title = f"{c.name or c.id} ({c.id})" + (f": {_plural(n, what)}" if n else "")
        spots.append(Spot(x, y, (c.name or c.id) + (f" ({n})" if n else ""), c.id, title, count=n))
    gps = []
    for f in moving:
        x, y = frame.at(float(f.lat or 0), float(f.lon or 0))
        where = f"{f.label} from {f.camera_id} at {f.lat:.5f}, {f.lon:.5f}"
        gps.append(Spot(x, y, f.label, f.camera_id, where))
    circle = None
    if near is not None:
        lat, lon, metres = near
        x, y = frame.at(lat, lon)
        per_unit = EARTH_M * math.cos(math.radians(lat)) / 256.0
        circle = Circle(x, y, round(frame.scale * metres / per_unit, 1), metres)
    tiles = tiles_for(frame, settings.map.tiles_url)
    shown = sum(counts.values()) + len(moving)
    caption = f"Map tiles from {settings.map.tiles_origin}" if tiles else "Plain coordinates (no map tiles)"
    label = f"map of {_plural(len(spots), 'camera')}"
    label += f" and {_plural(shown, what)}" if found else ""
    label += f", search radius {circle.radius_m:.0f} m" if circle else ""
    return MapView(WIDTH, HEIGHT, _placed(spots), _placed(gps), circle, tiles, caption, label)
