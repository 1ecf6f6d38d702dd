"""The case workspace: list and create cases, and one case's page (its searches, evidence,
alerts, watchlist entries and exports), each view audited as ``case_open``."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from citywatch.governance.alerts import AlertRow, list_alerts
from citywatch.governance.audit_log import AuditLog
from citywatch.governance.auth import Action, governed
from citywatch.governance.cases import CaseRow, EvidenceRow, get_case, list_cases, list_evidence, new_case
from citywatch.governance.watchlist import WatchlistRow, list_entries
from citywatch.schemas import Reason, utcnow
from citywatch.service.deps import acting
from citywatch.service.pages.render import redirect, render

router = APIRouter()
SEARCHES = {
    "search_face": "face",
    "search_plate": "plate",
    "search_coappear": "companions",
    "search_recurring": "recurring faces",
}
OTHER_EXPORT_COMMANDS = {"export verify", "export download"}  # audited as export, but not exports


@dataclass(frozen=True, slots=True)
class ActionLine:
    """One audited search or export of the case, as the case page lists it."""

    ts: dt.datetime
    user: str
    what: str
    outcome: str
    results: int
    detail: str


@dataclass(frozen=True, slots=True)
class CaseView:
    case: CaseRow
    searches: list[ActionLine]
    evidence: list[EvidenceRow]
    alerts: list[AlertRow]
    watchlist: list[WatchlistRow]
    exports: list[ActionLine]


def case_url(case_id: str, page: str = "/case") -> str:
    return f"{page}?case={quote(case_id, safe='')}"


@router.get("/cases")
def cases_page(request: Request) -> HTMLResponse:
    with acting(request) as (_settings, storage):
        rows = list_cases(storage)
    return render(request, "cases.html", cases=rows, case_url=case_url, form={})


@router.post("/cases")
def create_case(
    request: Request,
    case_id: Annotated[str, Form(max_length=200)] = "",
    title: Annotated[str, Form(max_length=1000)] = "",
    legal_basis: Annotated[str, Form(max_length=5000)] = "",
) -> HTMLResponse:
    """A new case; its legal basis is the justification its actions are audited with."""
    case_id = case_id.strip()
    with acting(request) as (settings, storage):
        params = {"command": "case create", "title": title[:200]}
        with governed(settings, storage, Action.CASE_OPEN, case_id, legal_basis, params) as run:
            row = new_case(storage, case_id, title, legal_basis, run.actor.user)
            run.result_count = 1
    return redirect(case_url(row.id))


@router.get("/case")
def case_page(request: Request, case: str = "") -> HTMLResponse:
    with acting(request) as (settings, storage):
        row = get_case(storage, case)
        params = {"command": "case view"}
        with governed(settings, storage, Action.CASE_OPEN, row.id, row.legal_basis, params) as run:
            view = _case_view(storage, row)
            run.result_count = len(view.evidence) + len(view.alerts) + len(view.watchlist)
    from citywatch.service.pages.routes_face import cameras_by_district, thumb_url
    from citywatch.service.pages.routes_play import play_url

    with acting(request) as (_settings, storage):
        cameras = cameras_by_district(storage)

    reasons = [r.value for r in Reason]
    return render(
        request,
        "case.html",
        view=view,
        case=row,
        case_url=case_url,
        now=utcnow(),
        thumb=thumb_url,
        play=play_url,
        reasons=reasons,
        cameras=cameras,
        coappear=settings.coappear,
    )


def _case_view(storage, row: CaseRow) -> CaseView:  # noqa: ANN001 - Storage
    records = AuditLog(storage).list(case_id=row.id, limit=10000)
    searches, exports = [], []
    for r in reversed(records):
        if r.action in SEARCHES:
            searches.append(_line(r.ts, r.user, _search_text(r.action, r.params), r))
        elif r.action == "export" and _params(r.params).get("command") not in OTHER_EXPORT_COMMANDS:
            exports.append(_line(r.ts, r.user, _export_text(r.params), r))
    alerts = [a for a in list_alerts(storage, limit=10000) if a.case_id == row.id]
    entries = [e for e in list_entries(storage, include_removed=True) if e.case_id == row.id]
    return CaseView(row, searches, list_evidence(storage, row.id), alerts, entries, exports)


def _line(ts: dt.datetime, user: str, what: str, record) -> ActionLine:  # noqa: ANN001 - AuditRow
    return ActionLine(ts, user, what, record.outcome, record.result_count, record.detail[:200])


def _params(text: str) -> dict[str, object]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _search_text(action: str, params: str) -> str:
    p = _params(params)
    kind = SEARCHES[action]
    if action == "search_coappear":
        return f"companions (±{p.get('window_s')} s)"
    if action == "search_recurring":
        cameras = p.get("cameras")
        return f"recurring faces ({len(cameras) if isinstance(cameras, list) else 0} cameras)"
    if kind == "plate":
        return f"plate {p.get('query') or p.get('text') or ''}".strip()
    filters = p.get("filters") or "all cameras, any time"
    return f"face ({filters})"


def _export_text(params: str) -> str:
    p = _params(params)
    for key in ("sighting", "sighting_id", "alert", "alert_id", "camera", "camera_id"):
        if p.get(key):
            return f"{key.split('_')[0]} {p[key]}"
    return "export"
