"""The case workspace's "Who was with them" panel: co-appearance from the case's kept
sightings, recurring unknown faces on chosen cameras, and promoting a group to a face
search or a watchlist request.

Each form runs the governed functions the API's endpoints run (flows/coappear.py,
flows/promote.py): case-bound, justified by the case's legal basis, audited, and refused
to analysts by the governance layer (server side; the page only hides the forms). Groups
are computed per request and never stored. Thumbnails go through ``/media/thumb`` with the
representative sighting's opaque id, never a storage path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from citywatch.errors import BadInputError
from citywatch.filters import is_in
from citywatch.governance.cases import CaseRow, get_case, list_evidence
from citywatch.schemas import Reason
from citywatch.service.deps import acting
from citywatch.service.pages.render import from_local, render, zone_named
from citywatch.service.pages.routes_play import play_url
from citywatch.sightings import Sighting
from citywatch.storage import Storage
from citywatch.tasks.search.coappear import FaceGroup, case_tracks, load_faces

router = APIRouter()
MAX_GROUP_SIGHTINGS = 500  # what the API accepts for a group (service/models.py GroupEntry)
NO_SUBJECT = (
    "case {case} keeps no face sightings yet: run a face search and keep the subject's "
    "sightings as evidence first"
)


@dataclass(frozen=True, slots=True)
class GroupView:
    """A group as the panel shows it: its representative sighting is the thumbnail's id."""

    rank: int
    representative: str  # face id (opaque), for /media/thumb
    count: int
    accompanies: int  # subject sightings it was seen with (0 for recurring groups)
    cameras: tuple[str, ...]  # camera names
    first_ts: dt.datetime
    last_ts: dt.datetime
    sightings: tuple[Sighting, ...]


def group_view(group: FaceGroup) -> GroupView:
    by_distance = sorted(group.sightings, key=lambda s: (s.thumb_uri != group.thumb_uri, s.distance))
    names = {s.camera_id: s.camera_name or s.camera_id for s in group.sightings}
    return GroupView(
        rank=group.rank,
        representative=by_distance[0].face_id,
        count=group.count,
        accompanies=len(group.accompanies),
        cameras=tuple(names.get(c, c) for c in group.cameras),
        first_ts=group.first_ts,
        last_ts=group.last_ts,
        sightings=tuple(group.sightings),
    )


def subject_sightings(storage: Storage, case_id: str) -> tuple[str, ...]:
    """The case's kept face sightings: its face evidence and one face of each held track."""
    kept = [e.sighting_id for e in list_evidence(storage, case_id) if e.kind == "face"]
    try:
        held = case_tracks(storage, case_id)
    except BadInputError:
        held = []
    if held:
        faces = load_faces(storage, is_in("track_id", held[:MAX_GROUP_SIGHTINGS]))
        firsts: dict[str, str] = {}
        for f in sorted(faces, key=lambda f: f.id):
            firsts.setdefault(f.track_id, f.id)
        kept.extend(firsts.values())
    return tuple(dict.fromkeys(kept))[:MAX_GROUP_SIGHTINGS]


def _groups_page(
    request: Request, row: CaseRow, groups: list[FaceGroup], summary: str, kind: str
) -> HTMLResponse:
    from citywatch.service.pages.routes_face import thumb_url

    views = [group_view(g) for g in groups]
    reasons = [r.value for r in Reason]
    return render(
        request,
        "coappear_groups.html",
        case=row,
        groups=views,
        thumb=thumb_url,
        reasons=reasons,
        summary=summary,
        kind=kind,
    )


@router.post("/case/companions")
def companions(
    request: Request,
    case_id: Annotated[str, Form(max_length=200)],
    window_s: Annotated[str, Form(max_length=40)] = "",
) -> HTMLResponse:
    """Who was with the case's subject (same camera within ±window_s), grouped and ranked."""
    from citywatch.flows.coappear import companions_search

    with acting(request) as (settings, storage):
        row = get_case(storage, case_id)
        subject = subject_sightings(storage, row.id)
        try:
            result = companions_search(
                settings,
                case_id=row.id,
                justification=row.legal_basis,
                sightings=subject,
                window_s=_number(window_s, "seconds before and after"),
            )
        except BadInputError as exc:
            if not subject and "keeps no sightings" in str(exc):
                raise BadInputError(NO_SUBJECT.format(case=row.id)) from exc
            raise
    summary = (
        f"{len(result.groups)} group{'' if len(result.groups) == 1 else 's'} seen within "
        f"±{result.window_s:g} s of the subject's {len(result.subject_tracks)} kept sightings"
    )
    return _groups_page(request, row, result.groups, summary, "companions")


@router.post("/case/recurring")
def recurring(
    request: Request,
    case_id: Annotated[str, Form(max_length=200)],
    camera: Annotated[list[str] | None, Form()] = None,
    since: Annotated[str, Form(max_length=40)] = "",
    until: Annotated[str, Form(max_length=40)] = "",
    tz: Annotated[str, Form(max_length=64)] = "",
    min_count: Annotated[str, Form(max_length=20)] = "",
    approval: Annotated[str, Form(max_length=100)] = "",
) -> HTMLResponse:
    """Recurring unknown faces; over the limits, a request is filed for a supervisor."""
    from citywatch.flows.coappear import recurring_search
    from citywatch.governance.scope_approvals import get_request
    from citywatch.tasks.search.recurring import RecurringScope

    zone = zone_named(tz)
    start, end = from_local(since, zone, "from"), from_local(until, zone, "to")
    if start is None or end is None:
        raise BadInputError("give the window's start and end")
    with acting(request) as (settings, storage):
        row = get_case(storage, case_id)
        count = _number(min_count, "seen at least", whole=True)
        at_least = settings.coappear.recurring_min_count if count is None else int(count)
        scope = RecurringScope(tuple(c for c in (camera or []) if c), start, end, at_least)
        result = recurring_search(
            settings,
            scope,
            case_id=row.id,
            justification=row.legal_basis,
            approval=approval.strip() or None,
            request_approval=not approval.strip(),
        )
        if result.pending_request:
            pending = get_request(storage, result.pending_request)
            return render(request, "coappear_pending.html", case=row, pending=pending)
    summary = (
        f"{len(result.groups)} group{'' if len(result.groups) == 1 else 's'} seen at least "
        f"{result.scope.min_count} times on {len(result.scope.camera_ids)} cameras"
        + (f" (approved request {result.approval})" if result.approval else "")
    )
    return _groups_page(request, row, result.groups, summary, "recurring")


@router.post("/case/recurring/approve")
def approve(
    request: Request,
    case_id: Annotated[str, Form(max_length=200)],
    request_id: Annotated[str, Form(max_length=100)],
    justification: Annotated[str, Form(max_length=1000)] = "",
) -> HTMLResponse:
    """A supervisor other than the requester approves a request over the limits (four eyes)."""
    from citywatch.flows.coappear import approve_recurring

    with acting(request) as (settings, storage):
        row = get_case(storage, case_id)
        approved = approve_recurring(
            settings, request_id.strip(), case_id=row.id, justification=justification.strip()
        )
    return render(request, "coappear_pending.html", case=row, pending=approved)


def _number(value: str, what: str, whole: bool = False) -> float | None:
    """A number field of a form (None when empty); anything else is bad input, said in words."""
    if not value.strip():
        return None
    try:
        number = float(value.strip())
    except ValueError as exc:
        raise BadInputError(f"{what} {value[:20]!r} is not a number") from exc
    if whole and not number.is_integer():
        raise BadInputError(f"{what} {value[:20]!r} is not a whole number")
    return number


def _group(sighting: list[str] | None) -> tuple[str, ...]:
    ids = tuple(dict.fromkeys(s for s in (sighting or []) if s))
    if not ids or len(ids) > MAX_GROUP_SIGHTINGS:
        raise BadInputError(f"a group needs 1 to {MAX_GROUP_SIGHTINGS} sightings")
    return ids


@router.post("/case/group/search")
def group_search(
    request: Request,
    case_id: Annotated[str, Form(max_length=200)],
    sighting: Annotated[list[str] | None, Form()] = None,
) -> HTMLResponse:
    """A face search with the group's template as the probe (audited as ``search_face``)."""
    from citywatch.flows.promote import group_search as search_group
    from citywatch.service.pages.routes_face import ARRANGEMENTS, arrange, marks, thumb_url, time_window
    from citywatch.tasks.search.faces import SearchFilters

    ids = _group(sighting)
    with acting(request) as (settings, storage):
        row = get_case(storage, case_id)
        result = search_group(
            settings, ids, SearchFilters((), None, None, None), case_id=row.id, justification=row.legal_basis
        )
    found = sorted(result.sightings, key=lambda s: s.rank)
    window = time_window(None, None, [s.ts for s in found])
    return render(
        request,
        "face_results.html",
        case=row,
        sightings=found,
        groups=arrange(found, "closest"),
        order=ARRANGEMENTS["closest"],
        marks=marks(window, [(s.ts, s.rank, s.camera_name) for s in found]),
        window=window,
        threshold=result.threshold,
        model=result.model,
        thumb=thumb_url,
        play=play_url,
    )


@router.post("/case/group/watchlist")
def group_watchlist(
    request: Request,
    case_id: Annotated[str, Form(max_length=200)],
    sighting: Annotated[list[str] | None, Form()] = None,
    label: Annotated[str, Form(max_length=200)] = "",
    reason: Annotated[str, Form(max_length=40)] = "",
    expires: Annotated[str, Form(max_length=40)] = "7d",
) -> HTMLResponse:
    """A pending face watchlist entry from the group's template (a second person approves)."""
    from citywatch.flows.promote import group_watchlist_request

    ids = _group(sighting)
    if reason not in {r.value for r in Reason}:
        raise BadInputError(f"reason must be one of {', '.join(r.value for r in Reason)}")
    if not label.strip():
        raise BadInputError("give the entry a label (who or what it is)")
    with acting(request) as (settings, storage):
        row = get_case(storage, case_id)
        entry = group_watchlist_request(
            settings,
            ids,
            label=label.strip(),
            reason=reason,
            expires=expires,
            case_id=row.id,
            justification=row.legal_basis,
        )
    shown = {
        "kind": entry.kind,
        "label": entry.label,
        "state": entry.status,
        "requested_by": entry.requested_by,
    }
    return render(request, "entry_requested.html", entry=shown)
