"""Where and when a plate pass must be to count: cameras, a time window, ``--near``.

One :class:`PlateWindow` gives both a LanceDB filter (:meth:`PlateWindow.where`) and
the same test on passes already read (:meth:`PlateWindow.keep`), so a search can read
the passes of a few texts by the text index alone and apply the window in Arrow (a
time range covering most of the table is costly as an index query).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from citywatch.errors import BadInputError
from citywatch.filters import all_of, compare, where_clause

EARTH_RADIUS_M = 6_371_000.0


@dataclass(frozen=True, slots=True)
class Near:
    lat: float
    lon: float
    radius_m: float

    def box(self) -> tuple[float, float, float, float]:
        """(lat_min, lat_max, lon_min, lon_max) around the circle: the index-friendly prefilter."""
        dlat = self.radius_m / 111_320.0
        dlon = dlat / max(0.01, math.cos(math.radians(self.lat)))
        return self.lat - dlat, self.lat + dlat, self.lon - dlon, self.lon + dlon


def parse_near(text: str) -> Near:
    """``LAT,LON,RADIUS_M`` from the CLI."""
    parts = text.split(",")
    try:
        lat, lon, radius = (float(p) for p in parts)
    except ValueError as exc:
        raise BadInputError(f"--near {text!r}: expected LAT,LON,RADIUS_M (e.g. 22.28,114.15,500)") from exc
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or not 0 < radius <= 100_000:
        raise BadInputError(f"--near {text!r}: position out of range or radius not in (0, 100 km]")
    return Near(lat, lon, radius)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def near_clause(near: Near) -> str:
    lat_min, lat_max, lon_min, lon_max = near.box()
    return all_of(
        compare("lat", ">=", lat_min),
        compare("lat", "<=", lat_max),
        compare("lon", ">=", lon_min),
        compare("lon", "<=", lon_max),
    )


def within(near: Near, lats: pa.ChunkedArray | pa.Array, lons: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Which positions lie within ``near`` (great-circle distance; no position: no)."""
    lat = lats.to_numpy(zero_copy_only=False).astype(float)
    lon = lons.to_numpy(zero_copy_only=False).astype(float)
    p1, p2 = math.radians(near.lat), np.radians(lat)
    dp, dl = p2 - p1, np.radians(lon - near.lon)
    h = np.sin(dp / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    with np.errstate(invalid="ignore"):
        metres = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(h))
    return np.nan_to_num(metres, nan=np.inf) <= near.radius_m


def day_of(ts: dt.datetime) -> dt.datetime:
    """00:00 UTC of ``ts``'s UTC day."""
    return ts.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class PlateWindow:
    """The cameras (none: all), times (inclusive; None: open) and place a pass must match."""

    camera_ids: tuple[str, ...] = ()
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    near: Near | None = None

    def where(self) -> str | None:
        """The window as a LanceDB filter (the near circle's box; :func:`within` decides)."""
        return all_of(
            where_clause(camera_ids=self.camera_ids, since=self.since, until=self.until),
            near_clause(self.near) if self.near else None,
        )

    def columns(self) -> list[str]:
        """What :meth:`keep` reads of a pass."""
        return (["camera_id"] if self.camera_ids else []) + (["lat", "lon"] if self.near else [])

    def keep(self, passes: pa.Table) -> pa.Table:
        """The passes (with ``ts`` and :meth:`columns`) inside the window: :meth:`where`,
        then :func:`within`, in Arrow (null values fail every test, as in SQL)."""
        tests: list[pa.ChunkedArray] = []
        ts_type = passes.schema.field("ts").type
        if self.camera_ids:
            tests.append(pc.is_in(passes["camera_id"], value_set=pa.array(self.camera_ids, pa.string())))
        if self.since is not None:
            tests.append(pc.greater_equal(passes["ts"], pa.scalar(self.since, ts_type)))
        if self.until is not None:
            tests.append(pc.less_equal(passes["ts"], pa.scalar(self.until, ts_type)))
        if self.near:
            lat_min, lat_max, lon_min, lon_max = self.near.box()
            lat, lon = passes["lat"], passes["lon"]
            tests += [pc.greater_equal(lat, lat_min), pc.less_equal(lat, lat_max)]
            tests += [pc.greater_equal(lon, lon_min), pc.less_equal(lon, lon_max)]
        if tests:
            mask = tests[0]
            for test in tests[1:]:
                mask = pc.and_(mask, test)
            passes = passes.filter(pc.fill_null(mask, False))
        if self.near:
            passes = passes.filter(pa.array(within(self.near, passes["lat"], passes["lon"])))
        return passes

    def covers_day(self, day: dt.date) -> bool:
        """Whether the window's times take in all of UTC ``day``."""
        start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        end = start + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
        return (self.since is None or self.since <= start) and (self.until is None or self.until >= end)

    def on_day(self, day: dt.date) -> PlateWindow:
        """The part of the window inside UTC ``day`` (what one day shard can hold)."""
        start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        end = start + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
        since = start if self.since is None else max(self.since, start)
        until = end if self.until is None else min(self.until, end)
        return PlateWindow(self.camera_ids, since, until, self.near)

    def days_clause(self) -> str | None:
        """The UTC days the window touches, as a filter on ``plate_texts.day``."""
        return all_of(
            compare("day", ">=", day_of(self.since)) if self.since is not None else None,
            compare("day", "<=", day_of(self.until)) if self.until is not None else None,
        )
