"""Watchlist: list, show, request (plate or face), approve (four eyes), remove."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile

from citywatch.governance.alerts import list_alerts
from citywatch.governance.auth import Action, governed
from citywatch.governance.watchlist import (
    EntryRequest,
    WatchlistRow,
    add_plate,
    approve,
    get_entry,
    list_entries,
    parse_expiry,
    remove,
)
from citywatch.governance.watchlist_faces import MAX_ENROL_PHOTOS, enrol_face
from citywatch.schemas import utcnow
from citywatch.service.deps import acting, service_of
from citywatch.service.models import Approve, CaseId, PlateEntry, Removal, Short, Time, Why
from citywatch.service.uploads import read_image_upload

router = APIRouter(prefix="/api/watchlist")


def entry_json(row: WatchlistRow) -> dict[str, object]:
    out = {k: v for k, v in dataclasses.asdict(row).items() if k != "embeddings"}
    out["photos"] = len(row.photo_sha256)
    out["state"] = row.state(utcnow())
    return out


@router.get("")
def watchlist(request: Request, all: bool = False) -> list[dict[str, object]]:  # noqa: A002 - query name
    with acting(request) as (settings, storage):
        with governed(settings, storage, Action.WATCHLIST_READ, None, None, {"all": all}) as run:
            rows = list_entries(storage, include_removed=all)
            run.result_count = len(rows)
    return [entry_json(r) for r in rows]


@router.get("/{entry_id}")
def show(entry_id: str, request: Request) -> dict[str, object]:
    with acting(request) as (settings, storage):
        with governed(settings, storage, Action.WATCHLIST_READ, None, None, {"entry": entry_id[:100]}) as run:
            row = get_entry(storage, entry_id)
            alerts = list_alerts(storage, entry_id=row.id, limit=1000)
            run.result_count = 1
    return {**entry_json(row), "alerts": [a.id for a in alerts]}


def _request(
    label: str,
    reason: str,
    case_id: str,
    why: str,
    user: str,
    expires: str,
    max_days: int,
    threshold: float | None,
) -> EntryRequest:
    return EntryRequest(
        label=label,
        reason=reason,
        case_id=case_id,
        justification=why,
        requested_by=user,
        expires_at=parse_expiry(expires, utcnow(), max_days),
        threshold=threshold,
    )


@router.post("/plate")
def request_plate(body: PlateEntry, request: Request) -> dict[str, object]:
    """Request a plate entry; it waits for another supervisor's approval."""
    with acting(request) as (settings, storage):
        entry = _request(
            body.label,
            body.reason,
            body.case_id,
            body.justification,
            str(settings.user),
            body.expires,
            settings.watchlist.max_days,
            body.threshold,
        )
        params = {"kind": "plate", "label": body.label, "reason": body.reason, "plate": body.plate}
        with governed(
            settings, storage, Action.WATCHLIST_REQUEST, body.case_id, body.justification, params
        ) as run:
            row = add_plate(
                storage,
                body.plate,
                entry,
                max_days=settings.watchlist.max_days,
                default_max_distance=settings.sweep.plate_max_distance,
            )
            run.result_count = 1
            run.detail = f"entry {row.id}"
    return entry_json(row)


@router.post("/face")
def request_face(
    request: Request,
    photo: Annotated[list[UploadFile], File(description="photos with exactly one face each")],
    label: Annotated[Short, Form()],
    reason: Annotated[Short, Form()],
    expires: Annotated[Time, Form()],
    case_id: Annotated[CaseId, Form()],
    justification: Annotated[Why, Form()],
    threshold: Annotated[float | None, Form(gt=0, le=2)] = None,
) -> dict[str, object]:
    """Request a face entry from 1-10 photos; it waits for another supervisor's approval."""
    from citywatch.errors import BadInputError
    from citywatch.tasks.index.segment import face_model_for

    if len(photo) > MAX_ENROL_PHOTOS:
        raise BadInputError(f"{len(photo)} enrolment photos given, at most {MAX_ENROL_PHOTOS}")
    limit = service_of(request).settings.service.max_upload_bytes
    photos = [
        (read_image_upload(p, "photo", limit)[0], p.filename or f"photo {i}") for i, p in enumerate(photo)
    ]
    with acting(request) as (settings, storage):
        entry = _request(
            label,
            reason,
            case_id,
            justification,
            str(settings.user),
            expires,
            settings.watchlist.max_days,
            threshold,
        )
        params = {"kind": "face", "label": label, "reason": reason, "photos": len(photos)}
        with governed(settings, storage, Action.WATCHLIST_REQUEST, case_id, justification, params) as run:
            model = face_model_for(settings)
            row = enrol_face(
                storage,
                model,
                photos,
                entry,
                max_days=settings.watchlist.max_days,
                default_threshold=settings.faces.match_threshold or model.embedder.default_threshold,
            )
            run.result_count = 1
            run.detail = f"entry {row.id}"
    return entry_json(row)


@router.post("/{entry_id}/approve")
def approve_entry(entry_id: str, body: Approve, request: Request) -> dict[str, object]:
    """Approve a pending entry: the approver must be another signed-in person than the requester."""
    with acting(request) as (settings, storage):
        entry = get_entry(storage, entry_id)
        params = {"entry": entry.id, "label": entry.label}
        with governed(
            settings, storage, Action.WATCHLIST_APPROVE, entry.case_id, body.justification, params
        ) as run:
            row = approve(storage, entry.id, run.actor.user)
            run.result_count = 1
    return entry_json(row)


@router.post("/{entry_id}/remove")
def remove_entry(entry_id: str, body: Removal, request: Request) -> dict[str, object]:
    with acting(request) as (settings, storage):
        params = {"entry": entry_id[:100]}
        with governed(settings, storage, Action.WATCHLIST_REMOVE, None, body.note, params) as run:
            row = remove(storage, entry_id, run.actor.user, body.note)
            run.result_count = 1
    return entry_json(row)
