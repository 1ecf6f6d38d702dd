"""Self-contained HTML reports (thumbnails inlined, so they work for s3 roots too).

The pages are Jinja2 templates in ``tasks/search/templates/`` with autoescape on; the sightings
are also embedded as JSON (see :func:`script_json`)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import jinja2

from citywatch.errors import CitywatchError
from citywatch.sightings import PlateSighting, Sighting
from citywatch.storage import Storage
from citywatch.times import format_utc


@dataclass(frozen=True, slots=True)
class ReportHeader:
    title: str
    rows: tuple[tuple[str, str], ...]  # (label, value) shown under the title
    created: dt.datetime


def sighting_json(s: Sighting) -> dict[str, object]:
    """The JSON form of a face sighting (the CLI's --json output)."""
    return {
        "rank": s.rank,
        "face_id": s.face_id,
        "camera_id": s.camera_id,
        "camera_name": s.camera_name,
        "ts": format_utc(s.ts),
        "track_start": format_utc(s.track_start),
        "track_end": format_utc(s.track_end),
        "distance": round(s.distance, 4),
        "similarity": round(s.similarity, 4),
        "bbox": [round(v, 1) for v in s.bbox],
        "segment_uri": s.segment_uri,
        "thumb_uri": s.thumb_uri,
        "lat": s.lat,
        "lon": s.lon,
        "face_px": round(s.face_px, 1),
        "best_face_distance": round(s.best_distance, 4) if s.best_distance is not None else None,
    }


def plate_json(s: PlateSighting) -> dict[str, object]:
    """The JSON form of a plate sighting."""
    p = s.plate
    return {
        "rank": s.rank,
        "plate_id": p.id,
        "text": p.text,
        "score": round(s.score, 3),
        "exact": s.score == 0.0,
        "camera_id": p.camera_id,
        "camera_name": s.camera_name,
        "ts": format_utc(p.ts),
        "first_ts": format_utc(p.first_ts),
        "last_ts": format_utc(p.last_ts),
        "confidence": round(p.confidence, 3),
        "reads": p.reads,
        "low_confidence": p.low_confidence,
        "bbox": [round(v, 1) for v in p.bbox],
        "segment_uri": s.segment_uri,
        "thumb_uri": p.thumb_uri,
        "lat": p.lat,
        "lon": p.lon,
    }


def thumbnail_src(storage: Storage, uri: str) -> str | None:
    """The thumbnail as a ``data:`` URI (inlined, so the report works for s3 roots too),
    or None when it cannot be read."""
    try:
        data = storage.read_bytes(uri)
    except CitywatchError:
        return None
    return f"data:image/jpeg;base64,{base64.b64encode(data).decode()}"


_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def script_json(payload: object) -> str:
    """JSON to embed in ``<script type="application/json">``: ``json.dumps`` with only
    ``<``, ``>`` and ``&`` escaped as ``\\u003c`` etc., so no value can close the element
    and the text still parses as the same JSON."""
    text = json.dumps(payload)
    for char, escaped in _SCRIPT_ESCAPES.items():
        text = text.replace(char, escaped)
    return text


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("citywatch.tasks.search", "templates"),
        autoescape=True,  # every value is text: names, ids, uris from users and footage
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["utc"] = format_utc
    return env


def _render(
    template: str,
    storage: Storage,
    header: ReportHeader,
    columns: Sequence[str],
    sightings: Sequence[Sighting] | Sequence[PlateSighting],
    thumb_uris: Sequence[str],
    payload: list[dict[str, object]],
) -> str:
    rows = [(s, thumbnail_src(storage, uri)) for s, uri in zip(sightings, thumb_uris, strict=True)]
    return (
        _templates()
        .get_template(template)
        .render(header=header, columns=columns, rows=rows, payload_json=script_json(payload))
    )


def render_search_report(storage: Storage, header: ReportHeader, sightings: list[Sighting]) -> str:
    return _render(
        "search_report.html",
        storage,
        header,
        ["#", "thumbnail", "camera", "time (UTC)", "distance", "similarity", "face px", "segment"],
        sightings,
        [s.thumb_uri for s in sightings],
        [sighting_json(s) for s in sightings],
    )


def render_plate_report(storage: Storage, header: ReportHeader, sightings: list[PlateSighting]) -> str:
    return _render(
        "plate_report.html",
        storage,
        header,
        ["#", "thumbnail", "plate", "match", "camera", "time (UTC)", "location"],
        sightings,
        [s.plate.thumb_uri for s in sightings],
        [plate_json(s) for s in sightings],
    )
