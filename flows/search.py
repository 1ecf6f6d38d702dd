"""Deployment ``search``: find where a face was seen (ranked sightings + HTML report)."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from prefect import flow, get_run_logger

from citywatch.footage import format_stamp
from citywatch.governance.auth import Action, governed
from citywatch.governance.refusals import refusals_on_record
from citywatch.models.loaders import face_model_for
from citywatch.plates import parse_plate_query
from citywatch.schemas import utcnow
from citywatch.settings import Settings
from citywatch.sightings import PlateSighting, Sighting
from citywatch.storage import Storage
from citywatch.tasks.search.faces import SearchFilters, embed_probe, search_faces
from citywatch.tasks.search.plates import Near, search_plates
from citywatch.tasks.search.report import ReportHeader, render_plate_report, render_search_report


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


def face_search(
    probe: str,
    filters: SearchFilters,
    settings: Settings,
    *,
    case_id: str | None,
    justification: str | None,
    top_k: int | None = None,
    face_index: int | None = None,
) -> FaceSearchResult:
    """Plain function behind the flow (also used by notebooks and tests).

    Governed: the acting user (``settings.user``) needs a role allowed to search faces,
    a case id and a justification; the search is audited with the probe's sha256.
    """
    storage = Storage(settings)
    params = {"probe": probe, "filters": describe(filters), "top_k": top_k, "face": face_index}
    with refusals_on_record(settings, storage, Action.SEARCH_FACE, case_id, justification, params):
        data = storage.read_bytes(storage.resolve(probe, "probe"))
    with governed(
        settings,
        storage,
        Action.SEARCH_FACE,
        case_id,
        justification,
        params,
        probe_sha256=hashlib.sha256(data).hexdigest(),
    ) as run:
        model = face_model_for(settings)
        found = embed_probe(data, probe, model, face_index, max_pixels=settings.search.probe_max_pixels)
        threshold = settings.faces.match_threshold or model.embedder.default_threshold
        sightings = search_faces(
            storage, settings, found, filters, top_k=top_k or settings.search.top_k, threshold=threshold
        )
        run.result_count = len(sightings)
    created = utcnow()
    header = ReportHeader(
        title=f"Face search, case {run.case_id} by {run.actor.user}",
        rows=(
            ("probe", f"{probe} (sha256 {found.sha256[:16]}...)"),
            ("filters", describe(filters)),
            ("justification", run.justification),
            ("threshold", f"{threshold:.3f} (L2 distance, {model.name})"),
        ),
        created=created,
    )
    key = f"reports/search-{format_stamp(created)}-{found.sha256[:8]}.html"
    report_uri = storage.write_bytes(key, render_search_report(storage, header, sightings).encode())
    return FaceSearchResult(probe, found.sha256, threshold, model.name, sightings, report_uri)


@flow(name="search")
def search(
    probe: str,
    camera_ids: list[str] | None = None,
    district: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    top_k: int | None = None,
    face_index: int | None = None,
    case_id: str | None = None,
    justification: str | None = None,
    settings: Settings | None = None,
) -> FaceSearchResult:
    """Face search as a flow run (visible in the Prefect UI); governed and audited."""
    settings = settings or Settings()
    filters = SearchFilters(tuple(camera_ids or ()), district, since, until)
    result = face_search(
        probe,
        filters,
        settings,
        case_id=case_id,
        justification=justification,
        top_k=top_k,
        face_index=face_index,
    )
    get_run_logger().info(
        "%d sightings under %.3f; report %s", len(result.sightings), result.threshold, result.report_uri
    )
    return result


@dataclass(frozen=True)
class PlateSearchResult:
    query: str
    sightings: list[PlateSighting]
    report_uri: str


def plate_search(
    query: str,
    filters: SearchFilters,
    settings: Settings,
    *,
    case_id: str | None,
    justification: str | None,
    max_edits: float = 1.0,
    near: Near | None = None,
    top_k: int | None = None,
) -> PlateSearchResult:
    """Plain function behind the plate flow; governed and audited like face search."""
    storage = Storage(settings)
    raw = {"query": query, "max_edits": max_edits, "filters": describe(filters)}
    with refusals_on_record(settings, storage, Action.SEARCH_PLATE, case_id, justification, raw):
        parsed = parse_plate_query(query, settings.plates.plate_grammar(), max_edits=max_edits)
    params = {
        "query": parsed.text,
        "max_edits": max_edits,
        "filters": describe(filters),
        "near": [near.lat, near.lon, near.radius_m] if near else None,
    }
    with governed(settings, storage, Action.SEARCH_PLATE, case_id, justification, params) as run:
        sightings = search_plates(storage, parsed, filters, near=near, top_k=top_k or settings.search.top_k)
        run.result_count = len(sightings)
    created = utcnow()
    header = ReportHeader(
        title=f"Plate search, case {run.case_id} by {run.actor.user}",
        rows=(
            ("query", parsed.text + (" (pattern)" if parsed.is_pattern else "")),
            (
                "max edits",
                f"{max_edits:g} (confusable characters O/0, I/1, B/8, S/5, Z/2, D/0, G/6 cost 0.3)",
            ),
            (
                "filters",
                describe(filters)
                + (f"; within {near.radius_m:g} m of {near.lat}, {near.lon}" if near else ""),
            ),
            ("justification", run.justification),
        ),
        created=created,
    )
    key = f"reports/plates-{format_stamp(created)}-{parsed.text.replace('*', '_').replace('?', '_')}.html"
    report_uri = storage.write_bytes(key, render_plate_report(storage, header, sightings).encode())
    return PlateSearchResult(parsed.text, sightings, report_uri)


@flow(name="search-plate")
def search_plate(
    query: str,
    camera_ids: list[str] | None = None,
    district: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    max_edits: float = 1.0,
    near: tuple[float, float, float] | None = None,
    top_k: int | None = None,
    case_id: str | None = None,
    justification: str | None = None,
    settings: Settings | None = None,
) -> PlateSearchResult:
    """Plate search as a flow run (visible in the Prefect UI); governed and audited."""
    settings = settings or Settings()
    filters = SearchFilters(tuple(camera_ids or ()), district, since, until)
    result = plate_search(
        query,
        filters,
        settings,
        case_id=case_id,
        justification=justification,
        max_edits=max_edits,
        near=Near(*near) if near else None,
        top_k=top_k,
    )
    get_run_logger().info(
        "%d plate sightings for %s; report %s", len(result.sightings), result.query, result.report_uri
    )
    return result
