"""Plate search: exact first, then OCR-aware fuzzy matches and partial patterns."""

from __future__ import annotations

import math
from dataclasses import dataclass

from citywatch.errors import BadInputError
from citywatch.filters import all_of, compare, where_clause
from citywatch.plates import PlateQuery, match_score
from citywatch.schemas import CameraRow, PlateRow, arrow_to_rows
from citywatch.sightings import PlateSighting
from citywatch.storage import Storage
from citywatch.tables import cameras_table, has_table
from citywatch.tasks.search.faces import SearchFilters, camera_filter_ids, segment_uris

EARTH_RADIUS_M = 6_371_000.0


@dataclass(frozen=True, slots=True)
class Near:
    lat: float
    lon: float
    radius_m: float


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


def _near_clause(near: Near) -> str:
    dlat = near.radius_m / 111_320.0
    dlon = dlat / max(0.01, math.cos(math.radians(near.lat)))
    return " AND ".join(
        [
            compare("lat", ">=", near.lat - dlat),
            compare("lat", "<=", near.lat + dlat),
            compare("lon", ">=", near.lon - dlon),
            compare("lon", "<=", near.lon + dlon),
        ]
    )


def search_plates(
    storage: Storage, query: PlateQuery, filters: SearchFilters, *, near: Near | None = None, top_k: int = 50
) -> list[PlateSighting]:
    """Plate passes matching ``query`` under the filters, exact matches first."""
    if not has_table(storage.db, PlateRow.TABLE):
        return []
    cameras = {c.id: c for c in arrow_to_rows(cameras_table(storage.db).to_arrow(), CameraRow)}
    ids = camera_filter_ids(cameras, filters)
    where = all_of(
        where_clause(camera_ids=ids, since=filters.since, until=filters.until),
        _near_clause(near) if near else None,
    )
    table = storage.db.open_table(PlateRow.TABLE)
    scan = table.search().where(where) if where else table.search()
    rows = arrow_to_rows(scan.limit(None).to_arrow(), PlateRow)
    scored: list[tuple[float, PlateRow]] = []
    for row in rows:
        score = match_score(query, row.text)
        if score is None:
            continue
        if near and (
            row.lat is None
            or row.lon is None
            or distance_m(near.lat, near.lon, row.lat, row.lon) > near.radius_m
        ):
            continue
        scored.append((score, row))
    scored.sort(key=lambda item: (item[0], -item[1].confidence, item[1].ts))
    scored = scored[:top_k]
    uris = segment_uris(storage, {row.segment_id for _, row in scored})
    return [
        PlateSighting(
            i + 1,
            row,
            cameras[row.camera_id].name if row.camera_id in cameras else "",
            score,
            uris.get(row.segment_id, ""),
        )
        for i, (score, row) in enumerate(scored)
    ]
