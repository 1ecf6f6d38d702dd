"""Face and plate searches and evidence exports: Prefect flow runs tagged with the caller and case."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from prefect import tags

from citywatch.filters import parse_time
from citywatch.governance.auth import Action, governed
from citywatch.governance.export_verify import export_trusted_keys, verify_export
from citywatch.service.deps import acting, service_of
from citywatch.service.models import CaseId, Export, ExportVerify, Id, PlateSearch, Short, Time, Why
from citywatch.service.uploads import read_image_upload

if TYPE_CHECKING:
    from citywatch.flows.redact_export import ExportResult
    from citywatch.flows.search import FaceSearchResult, PlateSearchResult
    from citywatch.governance.export_verify import VerifyReport

router = APIRouter(prefix="/api")


def run_tags(user: str, case_id: str) -> tuple[str, ...]:
    """Tags of a flow run started by the service: who asked, for which case."""
    return ("citywatch-service", f"user:{user}", f"case:{case_id}")


def run_face_search(
    request: Request,
    data: bytes,
    ext: str,
    case_id: str,
    justification: str,
    cameras: list[str],
    district: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    top_k: int | None,
    face: int | None,
) -> FaceSearchResult:
    """The governed face search as the caller (API and console): a Prefect flow run tagged with them."""
    from citywatch.flows.search import search

    with acting(request) as (settings, storage):
        url = storage.write_bytes(f"service/probes/{uuid.uuid4().hex}.{ext}", data)
        try:
            with tags(*run_tags(str(settings.user), case_id)):
                return search(
                    probe=url,
                    camera_ids=cameras,
                    district=district,
                    since=since,
                    until=until,
                    top_k=top_k,
                    face_index=face,
                    case_id=case_id,
                    justification=justification,
                    settings=settings,
                )
        finally:
            storage.delete(url)  # the probe's sha256 is in the audit record, never the photo


@router.post("/search/face")
def search_face(
    request: Request,
    probe: Annotated[UploadFile, File(description="photo of the person (JPEG or PNG)")],
    case_id: Annotated[CaseId, Form()],
    justification: Annotated[Why, Form()],
    camera: Annotated[list[Id] | None, Form()] = None,
    district: Annotated[Short | None, Form()] = None,
    since: Annotated[Time | None, Form()] = None,
    until: Annotated[Time | None, Form()] = None,
    top_k: Annotated[int | None, Form(ge=1, le=1000)] = None,
    face: Annotated[int | None, Form(ge=0, le=100)] = None,
) -> dict[str, object]:
    from citywatch.tasks.search.report import sighting_json

    limit = service_of(request).settings.service.max_upload_bytes
    data, ext = read_image_upload(probe, "probe", limit)
    start = parse_time(since, "since") if since else None
    end = parse_time(until, "until") if until else None
    result = run_face_search(
        request, data, ext, case_id, justification, camera or [], district, start, end, top_k, face
    )
    return {
        "probe_sha256": result.probe_sha256,
        "threshold": result.threshold,
        "model": result.model,
        "report": result.report_uri,
        "sightings": [sighting_json(s) for s in result.sightings],
    }


def run_plate_search(request: Request, body: PlateSearch) -> PlateSearchResult:
    """The governed plate search as the caller (API and console): a flow run tagged with them."""
    from citywatch.flows.search import search_plate as plate_flow
    from citywatch.tasks.search.plates import parse_near

    where = parse_near(body.near) if body.near else None
    start = parse_time(body.since, "since") if body.since else None
    end = parse_time(body.until, "until") if body.until else None
    with acting(request) as (settings, _storage), tags(*run_tags(str(settings.user), body.case_id)):
        return plate_flow(
            query=body.text,
            camera_ids=list(body.cameras),
            district=body.district,
            since=start,
            until=end,
            max_edits=body.max_edits,
            near=(where.lat, where.lon, where.radius_m) if where else None,
            top_k=body.top_k,
            case_id=body.case_id,
            justification=body.justification,
            settings=settings,
        )


@router.post("/search/plate")
def search_plate(body: PlateSearch, request: Request) -> dict[str, object]:
    from citywatch.tasks.search.report import plate_json

    result = run_plate_search(request, body)
    return {
        "query": result.query,
        "report": result.report_uri,
        "sightings": [plate_json(s) for s in result.sightings],
    }


def run_export(request: Request, body: Export) -> ExportResult:
    """The governed, redacted, signed export as the caller (API and console): a tagged flow run."""
    from citywatch.flows.redact_export import redact_export
    from citywatch.tasks.export.request import ExportRequest

    export_request = ExportRequest(
        case_id=body.case_id,
        justification=body.justification,
        sighting_id=body.sighting_id,
        alert_id=body.alert_id,
        camera_id=body.camera_id,
        since=parse_time(body.since, "since") if body.since else None,
        until=parse_time(body.until, "until") if body.until else None,
        pad_s=body.pad_s,
    )
    with acting(request) as (settings, _storage), tags(*run_tags(str(settings.user), body.case_id)):
        return redact_export(request=export_request, settings=settings)


@router.post("/exports")
def export(body: Export, request: Request) -> dict[str, object]:
    return dataclasses.asdict(run_export(request, body))


def run_export_verify(request: Request, body: ExportVerify) -> VerifyReport:
    """Check an export under ``exports/`` of the storage root (never an arbitrary path)."""
    with acting(request) as (settings, storage):
        params = {"command": "export verify", "manifest": body.manifest}
        with governed(settings, storage, Action.EXPORT, body.case_id, body.justification, params) as run:
            report = verify_export(storage, export_trusted_keys(settings, []), storage.url(body.manifest))
            run.result_count = 1
            run.detail = "" if report.ok else "verification failed"
    return report


@router.post("/exports/verify")
def export_verify(body: ExportVerify, request: Request) -> dict[str, object]:
    """Check an export under ``exports/`` of the storage root (never an arbitrary path)."""
    report = run_export_verify(request, body)
    return {
        "manifest": report.manifest_url,
        "ok": report.ok,
        "checks": [dataclasses.asdict(c) for c in report.checks],
    }
