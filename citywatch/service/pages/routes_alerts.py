"""The alert review queue: new alerts with the captured face or plate (beside the enrolled face
for a face entry), confirm or dismiss with a required note (the API's own review code:
supervisors only, audited); refreshed by polling."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from citywatch.errors import BadInputError, NotFoundError
from citywatch.governance.alerts import AlertRow, AlertState, get_alert, list_alerts
from citywatch.governance.auth import Action, governed
from citywatch.governance.enrolment_crops import first_crop, has_crop
from citywatch.governance.watchlist import get_entry
from citywatch.service.deps import acting
from citywatch.service.pages.render import HEADERS, render
from citywatch.service.pages.routes_play import play_url
from citywatch.service.routes_governed import _review as review_alert

router = APIRouter()
POLL_S = 5
DECISIONS = {"confirm": AlertState.CONFIRMED, "dismiss": AlertState.DISMISSED}


def _queue(request: Request, state: str) -> tuple[list[AlertRow], set[str]]:
    """The alerts in ``state`` and the watchlist entries among theirs with an enrolled face to show."""
    with acting(request) as (settings, storage):
        params = {"state": state, "via_console": True}
        with governed(settings, storage, Action.ALERT_READ, None, None, params) as run:
            rows = list_alerts(storage, state=state, limit=200)
            run.result_count = len(rows)
        entries = {a.watchlist_id for a in rows if a.kind == "face"}
        enrolled = {e for e in entries if _has_enrolled_face(storage, e)}
    return rows, enrolled


def _has_enrolled_face(storage, entry_id: str) -> bool:  # noqa: ANN001 - Storage
    try:
        return has_crop(storage, get_entry(storage, entry_id))
    except NotFoundError:
        return False


@router.get("/alerts")
def alerts_page(request: Request, state: str = "new") -> HTMLResponse:
    state = state if state in {s.value for s in AlertState} else "new"
    alerts, enrolled = _queue(request, state)
    return render(
        request, "alerts.html", alerts=alerts, enrolled=enrolled, state=state, poll_s=POLL_S, play=play_url
    )


@router.get("/alerts/queue")
def alerts_queue(request: Request, state: str = "new") -> HTMLResponse:
    """The queue alone, for console.js to poll (new alerts appear without a reload)."""
    state = state if state in {s.value for s in AlertState} else "new"
    alerts, enrolled = _queue(request, state)
    return render(
        request,
        "alerts_queue.html",
        alerts=alerts,
        enrolled=enrolled,
        state=state,
        poll_s=POLL_S,
        play=play_url,
    )


@router.post("/alerts/review")
def review(
    request: Request,
    alert_id: Annotated[str, Form(max_length=200)],
    decision: Annotated[str, Form(max_length=20)],
    note: Annotated[str, Form(max_length=1000)] = "",
) -> HTMLResponse:
    """Confirm or dismiss an alert; a note saying why is required either way."""
    if decision not in DECISIONS:
        raise BadInputError(f"decision {decision[:20]!r} must be confirm or dismiss")
    if len(note.strip()) < 3:
        raise BadInputError("write a note saying why you confirm or dismiss this alert")
    review_alert(alert_id, DECISIONS[decision], note, request)
    with acting(request) as (_settings, storage):
        row = get_alert(storage, alert_id)
    return render(request, "alert_reviewed.html", alert=row)


@router.get("/media/alert")
def alert_thumb(request: Request, id: str = "") -> Response:  # noqa: A002
    """The face or plate an alert captured (audited as ``alert_read``; never a storage path)."""
    with acting(request) as (settings, storage):
        params = {"alert": id[:200], "media": "thumbnail"}
        with governed(settings, storage, Action.ALERT_READ, None, None, params) as run:
            data = storage.read_bytes(get_alert(storage, id).thumb_uri)
            run.result_count = 1
    return Response(data, media_type="image/jpeg", headers={**HEADERS, "Cache-Control": "private, no-store"})


@router.get("/media/enrolled")
def enrolled_face(request: Request, id: str = "") -> Response:  # noqa: A002
    """The enrolled face of the entry an alert matched (its crop, never the photo; audited as
    ``alert_read`` like the capture)."""
    with acting(request) as (settings, storage):
        params = {"alert": id[:200], "media": "enrolled face"}
        with governed(settings, storage, Action.ALERT_READ, None, None, params) as run:
            data = first_crop(storage, get_entry(storage, get_alert(storage, id).watchlist_id))
            run.result_count = 1
    return Response(data, media_type="image/jpeg", headers={**HEADERS, "Cache-Control": "private, no-store"})
