"""GPS sidecars of mobile cameras: ``<segment>.gps.csv`` with rows ``ts,lat,lon``.

``ts`` is an ISO 8601 UTC time, or seconds from the segment start. Locations are
interpolated linearly at a row's time; outside the track (beyond ``max_gap_s``) the
location is unknown (None), never extrapolated or guessed.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import io
from dataclasses import dataclass

from citywatch.errors import BadInputError

LatLon = tuple[float, float]


@dataclass(frozen=True, slots=True)
class GpsTrack:
    times: tuple[float, ...]  # POSIX seconds, increasing
    lats: tuple[float, ...]
    lons: tuple[float, ...]
    max_gap_s: float = 5.0

    def at(self, when: dt.datetime) -> LatLon | None:
        """Interpolated (lat, lon) at ``when``, or None outside the track or across a gap."""
        t = when.timestamp()
        i = bisect.bisect_left(self.times, t)
        if i < len(self.times) and self.times[i] == t:
            return self.lats[i], self.lons[i]
        if i == 0 or i == len(self.times):
            edge = 0 if i == 0 else len(self.times) - 1
            if abs(self.times[edge] - t) <= 1.0:
                return self.lats[edge], self.lons[edge]
            return None
        t0, t1 = self.times[i - 1], self.times[i]
        if t1 - t0 > self.max_gap_s:
            return None
        w = (t - t0) / (t1 - t0)
        return (
            self.lats[i - 1] + w * (self.lats[i] - self.lats[i - 1]),
            self.lons[i - 1] + w * (self.lons[i] - self.lons[i - 1]),
        )


def _time(text: str, start: dt.datetime, where: str) -> float:
    try:
        return start.timestamp() + float(text)
    except ValueError:
        pass
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadInputError(f"{where}: ts {text!r} is neither ISO 8601 nor seconds") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def parse_gps_csv(text: str, source: str, segment_start: dt.datetime) -> GpsTrack:
    """Parse a sidecar; any malformed row makes the whole file invalid (BadInputError)."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header] != ["ts", "lat", "lon"]:
        raise BadInputError(f"{source}: first line must be the header 'ts,lat,lon', got {header}")
    times: list[float] = []
    lats: list[float] = []
    lons: list[float] = []
    for line_no, row in enumerate(reader, start=2):
        where = f"{source} line {line_no}"
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 3:
            raise BadInputError(f"{where}: expected 3 fields ts,lat,lon, got {len(row)}")
        t = _time(row[0].strip(), segment_start, where)
        try:
            lat, lon = float(row[1]), float(row[2])
        except ValueError as exc:
            raise BadInputError(f"{where}: lat/lon {row[1]!r},{row[2]!r} are not numbers") from exc
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise BadInputError(f"{where}: ({lat}, {lon}) is not a valid position")
        if times and t <= times[-1]:
            raise BadInputError(f"{where}: times must increase")
        times.append(t)
        lats.append(lat)
        lons.append(lon)
    if len(times) < 1:
        raise BadInputError(f"{source}: no positions")
    return GpsTrack(tuple(times), tuple(lats), tuple(lons))
