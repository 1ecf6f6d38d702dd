"""Where was the camera when a row was captured? Registry for fixed, GPS for mobile."""

from __future__ import annotations

import datetime as dt
import posixpath
from dataclasses import dataclass

from citywatch.errors import BadInputError, NotFoundError
from citywatch.footage import SegmentRef
from citywatch.gps import GpsTrack, LatLon, parse_gps_csv
from citywatch.schemas import CameraRow
from citywatch.storage import Storage


@dataclass(frozen=True, slots=True)
class Locator:
    """Location lookup for one segment; ``warning`` says why locations are missing."""

    fixed: LatLon | None
    track: GpsTrack | None
    warning: str

    def at(self, when: dt.datetime) -> LatLon | None:
        if self.track is not None:
            return self.track.at(when)
        return self.fixed


def sidecar_uri(segment_uri: str) -> str:
    stem, _ = posixpath.splitext(segment_uri)
    return f"{stem}.gps.csv"


def segment_locator(storage: Storage, ref: SegmentRef, camera: CameraRow) -> Locator:
    """Fixed cameras use the registry; mobile ones their segment's GPS sidecar.

    A missing or malformed sidecar is reported in ``warning`` and rows get no
    location rather than a wrong one.
    """
    if camera.kind != "mobile":
        fixed = (camera.lat, camera.lon) if camera.lat is not None and camera.lon is not None else None
        return Locator(fixed, None, "" if fixed or not camera.registered else "camera has no location")
    uri = sidecar_uri(ref.uri)
    try:
        text = storage.read_bytes(uri).decode("utf-8", errors="replace")
        return Locator(None, parse_gps_csv(text, uri, ref.start), "")
    except NotFoundError:
        return Locator(None, None, f"mobile camera without GPS sidecar {uri}: no locations")
    except BadInputError as exc:
        return Locator(None, None, f"GPS sidecar ignored, no locations: {exc}")
