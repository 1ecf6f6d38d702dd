"""Activity counts (per camera, district, hour) and a subject's cross-camera timeline.

Counts are of *tracks* (one pass of a face or a plate in front of a camera), not of
rows: the faces table keeps several embedded crops per track.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from citywatch.errors import BadInputError
from citywatch.sightings import Sighting

Dimension = Literal["camera", "district", "hour"]
DIMENSIONS: tuple[Dimension, ...] = ("camera", "district", "hour")
UTC_US = pl.Datetime("us", "UTC")

TRACK_SCHEMA = pl.Schema(
    {
        "camera_id": pl.String(),
        "track_id": pl.String(),
        "start": UTC_US,
        "end": UTC_US,
        "rows": pl.Int64(),
    }
)
SIGHTING_SCHEMA = pl.Schema(
    {
        "rank": pl.Int64(),
        "face_id": pl.String(),
        "camera_id": pl.String(),
        "camera_name": pl.String(),
        "ts": UTC_US,
        "track_start": UTC_US,
        "track_end": UTC_US,
        "distance": pl.Float64(),
        "similarity": pl.Float64(),
        "segment_uri": pl.String(),
        "thumb_uri": pl.String(),
        "lat": pl.Float64(),
        "lon": pl.Float64(),
    }
)
_REQUIRED_SIGHTING = ("face_id", "camera_id", "ts", "track_start", "track_end")
_TIMES = ("ts", "track_start", "track_end")


# --- tracks and counts --------------------------------------------------------------
def tracks(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per track of face rows or plate rows: camera_id, track_id, start, end, rows."""
    if "track_start" in rows.columns:
        first, last = "track_start", "track_end"
    elif "first_ts" in rows.columns:
        first, last = "first_ts", "last_ts"
    else:
        raise BadInputError(
            "rows must be face rows (track_start/track_end) or plate rows "
            f"(first_ts/last_ts); got columns {rows.columns}"
        )
    if rows.is_empty():
        return pl.DataFrame(schema=TRACK_SCHEMA)
    return (
        rows.group_by("camera_id", "track_id")
        .agg(start=pl.col(first).min(), end=pl.col(last).max(), rows=pl.len())
        .cast(TRACK_SCHEMA)
        .sort("start", "camera_id", "track_id")
    )


def _camera_info(cameras: pl.DataFrame) -> pl.DataFrame:
    return cameras.select(camera_id="id", camera_name="name", district="district", lat="lat", lon="lon")


def activity(
    rows: pl.DataFrame,
    cameras: pl.DataFrame,
    by: Sequence[Dimension] = ("camera",),
    *,
    tz: str = "UTC",
    every: str = "1h",
) -> pl.DataFrame:
    """Tracks counted per camera, district and/or hour (``by``), busiest first.

    ``camera`` adds camera_id, camera_name, district, lat, lon; ``hour`` buckets a
    track's start into ``every`` (a Polars duration, "1h" by default) in time zone
    ``tz``. Without ``hour``, cameras and districts with no activity count 0.
    """
    dims = list(dict.fromkeys(by))
    for dim in dims:
        if dim not in DIMENSIONS:
            raise BadInputError(f"activity by {dim!r}: use some of {', '.join(DIMENSIONS)}")
    if not dims:
        raise BadInputError("activity needs at least one of camera, district, hour in `by`")
    keys: list[str] = []
    if "camera" in dims:
        keys += ["camera_id", "camera_name", "district", "lat", "lon"]
    elif "district" in dims:
        keys.append("district")
    info = _camera_info(cameras)
    found = tracks(rows).join(info, on="camera_id", how="left")
    if "hour" in dims:
        found = found.with_columns(hour=pl.col("start").dt.convert_time_zone(tz).dt.truncate(every))
        keys.append("hour")
    counts = found.group_by(keys).agg(tracks=pl.len().cast(pl.Int64))
    if "hour" not in dims:
        every_key = pl.concat([info.select(keys), found.select(keys)]).unique()
        counts = every_key.join(counts, on=keys, how="left", nulls_equal=True).with_columns(
            pl.col("tracks").fill_null(0)
        )
    first = ["hour"] if "hour" in dims else []
    rest = [k for k in keys if k != "hour"]
    return counts.select(*keys, "tracks").sort(
        [*first, "tracks", *rest],
        descending=[False] * len(first) + [True] + [False] * len(rest),
        nulls_last=True,
    )


# --- a subject's timeline from face-search results -----------------------------------
def sightings_frame(sightings: Sequence[Sighting]) -> pl.DataFrame:
    """Face-search results (``FaceSearchResult.sightings``) as a frame, earliest first."""
    records = [{name: getattr(s, name) for name in SIGHTING_SCHEMA} for s in sightings]
    return pl.DataFrame(records, schema=SIGHTING_SCHEMA).sort("track_start")


def read_sightings_json(source: str | Path) -> pl.DataFrame:
    """The JSON of ``citywatch search face --json`` (a path, or the JSON text itself)."""
    if isinstance(source, str) and source.lstrip().startswith(("[", "{")):
        text, where = source, "sightings JSON"
    else:
        where = str(source)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise BadInputError(f"cannot read sightings {where}: {exc}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{where} is not valid JSON: {exc}") from exc
    if not isinstance(doc, list):
        raise BadInputError(f"{where}: expected a list of sightings (search face --json)")
    records = [_sighting_record(entry, f"{where}[{i}]") for i, entry in enumerate(doc)]
    return pl.DataFrame(records, schema=SIGHTING_SCHEMA).sort("track_start")


def _sighting_record(entry: object, where: str) -> dict[str, object]:
    if not isinstance(entry, dict):
        raise BadInputError(f"{where}: each sighting must be an object")
    for name in _REQUIRED_SIGHTING:
        if not isinstance(entry.get(name), str) or not entry[name]:
            raise BadInputError(f"{where}: field {name!r} is missing or not text")
    record = {name: entry.get(name) for name in SIGHTING_SCHEMA}
    for name in _TIMES:
        try:
            value = dt.datetime.fromisoformat(str(entry[name]).replace("Z", "+00:00"))
        except ValueError as exc:
            raise BadInputError(f"{where}: {name} {entry[name]!r} is not an ISO time") from exc
        record[name] = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return record


@dataclass(slots=True)
class _Stop:
    stop: int
    camera_id: str
    camera_name: str | None
    lat: float | None
    lon: float | None
    start: dt.datetime
    end: dt.datetime
    sightings: int
    best_distance: float
    best_similarity: float | None
    best_face_id: str
    thumb_uri: str | None


def subject_timeline(
    sightings: pl.DataFrame,
    cameras: pl.DataFrame | None = None,
    *,
    merge_gap: dt.timedelta = dt.timedelta(seconds=60),
) -> pl.DataFrame:
    """One subject's stops across cameras, in time order.

    Consecutive sightings at one camera less than ``merge_gap`` apart (a track split
    in two, or the same pass seen twice) make one stop. Columns: stop, camera_id,
    camera_name, district, lat, lon, start, end, dwell_s, sightings, best_distance,
    best_similarity, best_face_id, thumb_uri (the best sighting's).
    """
    stops: list[_Stop] = []
    for s in sightings.sort("track_start").iter_rows(named=True):
        distance = s["distance"] if s["distance"] is not None else math.inf
        last = stops[-1] if stops else None
        if last is not None and last.camera_id == s["camera_id"] and s["track_start"] - last.end <= merge_gap:
            last.end = max(last.end, s["track_end"])
            last.sightings += 1
            if distance < last.best_distance:
                last.best_distance, last.best_similarity = distance, s["similarity"]
                last.best_face_id, last.thumb_uri = s["face_id"], s["thumb_uri"]
            continue
        stops.append(
            _Stop(
                len(stops) + 1,
                s["camera_id"],
                s["camera_name"],
                s["lat"],
                s["lon"],
                s["track_start"],
                s["track_end"],
                1,
                distance,
                s["similarity"],
                s["face_id"],
                s["thumb_uri"],
            )
        )
    schema = pl.Schema(
        {
            "stop": pl.Int64(),
            "camera_id": pl.String(),
            "camera_name": pl.String(),
            "lat": pl.Float64(),
            "lon": pl.Float64(),
            "start": UTC_US,
            "end": UTC_US,
            "sightings": pl.Int64(),
            "best_distance": pl.Float64(),
            "best_similarity": pl.Float64(),
            "best_face_id": pl.String(),
            "thumb_uri": pl.String(),
        }
    )
    out = pl.DataFrame(
        [dataclasses.astuple(stop) for stop in stops], schema=schema, orient="row"
    ).with_columns(dwell_s=(pl.col("end") - pl.col("start")).dt.total_microseconds() / 1e6)
    districts = (
        _camera_info(cameras).select("camera_id", "district")
        if cameras is not None
        else pl.DataFrame(schema={"camera_id": pl.String, "district": pl.String})
    )
    out = out.join(districts, on="camera_id", how="left")
    return out.select(
        "stop",
        "camera_id",
        "camera_name",
        "district",
        "lat",
        "lon",
        "start",
        "end",
        "dwell_s",
        "sightings",
        "best_distance",
        "best_similarity",
        "best_face_id",
        "thumb_uri",
    ).sort("stop")


def camera_sequence(timeline: pl.DataFrame) -> list[str]:
    """The cameras a subject passed, in order, repeats in a row collapsed."""
    order = "start" if "start" in timeline.columns else "track_start"
    sequence: list[str] = []
    for camera_id in timeline.sort(order)["camera_id"].to_list():
        if not sequence or sequence[-1] != camera_id:
            sequence.append(camera_id)
    return sequence
