"""Rows and frames for the citywatch.analytics tests (test_analytics*.py)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from citywatch.schemas import CameraRow, FaceRow, PlateRow, SegmentRow, rows_to_arrow

T0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)
DIM = 4


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def camera(cid: str, district: str, lat: float = 22.3, lon: float = 114.2) -> CameraRow:
    return CameraRow(cid, cid.upper(), district, lat, lon, "fixed", 5.0, 1280, 720, [], [], True)


def segment(
    cid: str,
    start_s: float,
    *,
    state: str = "done",
    error: str = "",
    indexed_s: float = 600.0,
    length_s: float = 60.0,
) -> SegmentRow:
    stamp = at(start_s).strftime("%Y%m%dT%H%M%SZ")
    uri = f"/data/footage/{cid}/{stamp}.mp4"
    return SegmentRow(
        f"{cid}/{stamp}",
        cid,
        uri,
        at(start_s),
        at(start_s + length_s) if state == "done" else None,
        1000,
        "x",
        state,
        error.replace("{uri}", uri),
        "m",
        120,
        60,
        3,
        at(indexed_s),
    )


def face(cid: str, track: str, start_s: float, end_s: float, n: int) -> FaceRow:
    return FaceRow(
        f"{track}-{n}",
        f"{cid}/seg",
        cid,
        at(start_s + n),
        (0, 0, 10, 10),
        0.9,
        0.5,
        np.ones(DIM, np.float32),
        track,
        at(start_s),
        at(end_s),
        f"/data/thumbs/{track}-{n}.jpg",
        22.3,
        114.2,
        "m",
    )


def plate(
    text: str, cid: str, first_s: float, last_s: float, *, low: bool = False, pid: str | None = None
) -> PlateRow:
    return PlateRow(
        pid or f"{text}@{cid}@{first_s}",
        f"{cid}/seg",
        cid,
        at(first_s),
        at(first_s),
        at(last_s),
        text,
        0.9,
        [0.9] * len(text),
        5,
        low,
        (0, 0, 10, 10),
        f"t-{text}-{first_s}",
        "/data/thumbs/p.jpg",
        22.3,
        114.2,
        "m",
    )


def plates_frame(rows: list[PlateRow]) -> pl.DataFrame:
    return pl.from_arrow(rows_to_arrow(rows, PlateRow.SCHEMA))  # type: ignore[return-value]


PLATES = [
    plate("AB123", "cam-a", 0, 4),
    plate("AB123", "cam-a", 100, 110),
    plate("AB123", "cam-b", 50, 52),
    plate("XY9", "cam-a", 20, 22),
    plate("QQ1", "cam-a", 30, 31, low=True),
]


def sighting_json(
    face_id: str, cid: str, start_s: float, end_s: float, distance: float = 0.4
) -> dict[str, object]:
    """What `citywatch search face --json` writes for one sighting (tasks.report)."""
    iso = lambda t: at(t).isoformat().replace("+00:00", "Z")  # noqa: E731
    return {
        "rank": 1,
        "face_id": face_id,
        "camera_id": cid,
        "camera_name": cid.upper(),
        "ts": iso(start_s),
        "track_start": iso(start_s),
        "track_end": iso(end_s),
        "distance": distance,
        "similarity": 1 - distance,
        "bbox": [0, 0, 1, 1],
        "segment_uri": "",
        "thumb_uri": f"/data/thumbs/{face_id}.jpg",
        "lat": 22.3,
        "lon": 114.2,
    }
