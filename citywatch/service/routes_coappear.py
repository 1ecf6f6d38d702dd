"""Co-appearance and recurring faces (Prefect flow runs tagged with the caller and case), and
promoting a group to a face search or a watchlist request."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prefect import tags

from citywatch.filters import parse_time
from citywatch.service.deps import acting
from citywatch.service.models import ApproveScope, Companions, GroupEntry, GroupSearch, Id, Recurring
from citywatch.service.routes_search import run_tags

router = APIRouter(prefix="/api")


@router.post("/search/companions")
def companions(body: Companions, request: Request) -> dict[str, object]:
    from citywatch.flows.coappear import coappear
    from citywatch.tasks.search.coappear import group_json

    with acting(request) as (settings, _storage), tags(*run_tags(str(settings.user), body.case_id)):
        result = coappear(
            case_id=body.case_id,
            justification=body.justification,
            sightings=list(body.sightings),
            window_s=body.window_s,
            settings=settings,
        )
    return {
        "case_id": result.case_id,
        "subject_tracks": list(result.subject_tracks),
        "window_s": result.window_s,
        "threshold": result.threshold,
        "groups": [group_json(g) for g in result.groups],
    }


@router.post("/search/recurring")
def recurring(body: Recurring, request: Request) -> dict[str, object]:
    from citywatch.flows.coappear import recurring as recurring_flow
    from citywatch.tasks.search.coappear import group_json

    since = parse_time(body.since, "since")
    until = parse_time(body.until, "until")
    with acting(request) as (settings, _storage), tags(*run_tags(str(settings.user), body.case_id)):
        result = recurring_flow(
            camera_ids=list(body.cameras),
            since=since,
            until=until,
            min_count=settings.coappear.recurring_min_count if body.min_count is None else body.min_count,
            case_id=body.case_id,
            justification=body.justification,
            approval=body.approval,
            request_approval=body.request_approval,
            settings=settings,
        )
    return {
        "case_id": result.case_id,
        "pending_request": result.pending_request,
        "approval": result.approval,
        "threshold": result.threshold,
        "groups": [group_json(g) for g in result.groups],
    }


@router.post("/search/recurring/{request_id}/approve")
def approve(request_id: Id, body: ApproveScope, request: Request) -> dict[str, object]:
    """A supervisor (not the requester) approves a recurring-faces request over the limits."""
    from citywatch.flows.coappear import approve_recurring
    from citywatch.times import format_utc

    with acting(request) as (settings, _storage):
        row = approve_recurring(settings, request_id, case_id=body.case_id, justification=body.justification)
    return {
        "id": row.id,
        "case_id": row.case_id,
        "requested_by": row.requested_by,
        "approved_by": row.approved_by,
        "approved_at": format_utc(row.approved_at) if row.approved_at else None,
        "over_limits": row.over_limits,
    }


@router.post("/search/group")
def group_search(body: GroupSearch, request: Request) -> dict[str, object]:
    """A face search with a group's template as the probe."""
    from citywatch.flows.promote import group_search as search_group
    from citywatch.tasks.search.faces import SearchFilters
    from citywatch.tasks.search.report import sighting_json

    start = parse_time(body.since, "since") if body.since else None
    end = parse_time(body.until, "until") if body.until else None
    filters = SearchFilters(tuple(body.cameras), body.district, start, end)
    with acting(request) as (settings, _storage):
        result = search_group(
            settings,
            tuple(body.sightings),
            filters,
            case_id=body.case_id,
            justification=body.justification,
            top_k=body.top_k,
        )
    return {
        "probe_sha256": result.probe_sha256,
        "threshold": result.threshold,
        "report": result.report_uri,
        "sightings": [sighting_json(s) for s in result.sightings],
    }


@router.post("/watchlist/group")
def group_entry(body: GroupEntry, request: Request) -> dict[str, object]:
    """A pending face watchlist entry from a group's template (a second person approves it)."""
    from citywatch.flows.promote import group_watchlist_request

    with acting(request) as (settings, _storage):
        row = group_watchlist_request(
            settings,
            tuple(body.sightings),
            label=body.label,
            reason=body.reason,
            expires=body.expires,
            case_id=body.case_id,
            justification=body.justification,
            threshold=body.threshold,
        )
    return {"id": row.id, "status": row.status, "label": row.label, "case_id": row.case_id}
