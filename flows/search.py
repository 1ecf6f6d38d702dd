"""Deployment ``search``: find where a face was seen (ranked sightings + HTML report)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from prefect import flow, get_run_logger

from citywatch.footage import format_stamp
from citywatch.schemas import utcnow
from citywatch.settings import Settings
from citywatch.storage import Storage
from tasks.index_segment import face_model_for
from tasks.report import SearchHeader, render_search_report
from tasks.search import SearchFilters, Sighting, embed_probe, search_faces


@dataclass(frozen=True)
class FaceSearchResult:
    probe: str
    probe_sha256: str
    threshold: float
    model: str
    sightings: list[Sighting]
    report_uri: str


def describe(filters: SearchFilters) -> str:
    parts = []
    if filters.camera_ids:
        parts.append("cameras " + ", ".join(filters.camera_ids))
    if filters.district:
        parts.append(f"district {filters.district}")
    if filters.since:
        parts.append(f"since {filters.since.isoformat()}")
    if filters.until:
        parts.append(f"until {filters.until.isoformat()}")
    return "; ".join(parts) or "all cameras, all times"


def face_search(probe: str, filters: SearchFilters, settings: Settings, *,
                top_k: int | None = None, face_index: int | None = None) -> FaceSearchResult:
    """Plain function behind the flow (also used by notebooks and tests)."""
    storage = Storage(settings)
    model = face_model_for(settings)
    probe_uri = storage.resolve(probe)
    found = embed_probe(storage.read_bytes(probe_uri), probe, model, face_index)
    threshold = settings.face_match_threshold or model.embedder.default_threshold
    sightings = search_faces(storage, settings, found, filters,
                             top_k=top_k or settings.search_top_k, threshold=threshold)
    created = utcnow()
    header = SearchHeader(title="Face search", probe_source=probe, probe_sha256=found.sha256,
                          filters=describe(filters), threshold=threshold, model=model.name,
                          created=created)
    key = f"reports/search-{format_stamp(created)}-{found.sha256[:8]}.html"
    report_uri = storage.write_bytes(key, render_search_report(storage, header, sightings).encode())
    return FaceSearchResult(probe, found.sha256, threshold, model.name, sightings, report_uri)


@flow(name="search")
def search(probe: str, camera_ids: list[str] | None = None, district: str | None = None,
           since: dt.datetime | None = None, until: dt.datetime | None = None,
           top_k: int | None = None, face_index: int | None = None,
           settings: Settings | None = None) -> FaceSearchResult:
    """Face search as a flow run (visible in the Prefect UI)."""
    settings = settings or Settings()
    filters = SearchFilters(tuple(camera_ids or ()), district, since, until)
    result = face_search(probe, filters, settings, top_k=top_k, face_index=face_index)
    get_run_logger().info("%d sightings under %.3f; report %s", len(result.sightings),
                          result.threshold, result.report_uri)
    return result
