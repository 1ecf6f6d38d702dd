"""Alerts (list, show, confirm, dismiss), the audit log (list, verify) and case holds."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Query, Request

from citywatch.governance.alerts import AlertState, deliveries_by_alert, get_alert, list_alerts, review
from citywatch.governance.audit_log import AuditLog
from citywatch.governance.auth import Action, governed
from citywatch.service.deps import acting
from citywatch.service.models import AuditVerify, Hold, Note

router = APIRouter(prefix="/api")
_ANCHOR_HELP = "SEQ:HASH from an earlier verify"


@router.get("/alerts")
def alerts(
    request: Request,
    state: AlertState | None = None,
    entry: str | None = Query(None, max_length=100),
    limit: int = Query(50, ge=1, le=1000),
) -> list[dict[str, object]]:
    with acting(request) as (settings, storage):
        params = {"state": state.value if state else None, "entry": entry}
        with governed(settings, storage, Action.ALERT_READ, None, None, params) as run:
            rows = list_alerts(storage, state=state.value if state else None, entry_id=entry, limit=limit)
            run.result_count = len(rows)
        deliveries = deliveries_by_alert(storage, [a.id for a in rows])
    return [
        {**dataclasses.asdict(a), "deliveries": [dataclasses.asdict(d) for d in deliveries.get(a.id, [])]}
        for a in rows
    ]


@router.get("/alerts/{alert_id}")
def alert(alert_id: str, request: Request) -> dict[str, object]:
    with acting(request) as (settings, storage):
        with governed(settings, storage, Action.ALERT_READ, None, None, {"alert": alert_id[:100]}) as run:
            row = get_alert(storage, alert_id)
            run.result_count = 1
    return dataclasses.asdict(row)


def _review(alert_id: str, decision: AlertState, note: str, request: Request) -> dict[str, object]:
    with acting(request) as (settings, storage):
        params = {"alert": alert_id[:100], "decision": decision.value}
        with governed(settings, storage, Action.ALERT_REVIEW, None, note or None, params) as run:
            row = review(storage, alert_id, decision, run.actor.user, note)
            run.result_count = 1
    return dataclasses.asdict(row)


@router.post("/alerts/{alert_id}/confirm")
def confirm(alert_id: str, body: Note, request: Request) -> dict[str, object]:
    return _review(alert_id, AlertState.CONFIRMED, body.note, request)


@router.post("/alerts/{alert_id}/dismiss")
def dismiss(alert_id: str, body: Note, request: Request) -> dict[str, object]:
    return _review(alert_id, AlertState.DISMISSED, body.note, request)


@router.get("/audit")
def audit(
    request: Request,
    case: str | None = Query(None, max_length=64),
    user: str | None = Query(None, max_length=64),
    action: str | None = Query(None, max_length=64),
    limit: int = Query(100, ge=1, le=10000),
) -> list[dict[str, object]]:
    with acting(request) as (settings, storage):
        params = {"command": "audit list", "case": case, "user": user, "action": action, "limit": limit}
        with governed(settings, storage, Action.AUDIT_READ, None, None, params) as run:
            rows = AuditLog(storage).list(case_id=case, user=user, action=action, limit=limit)
            run.result_count = len(rows)
    return [r.fields_json() for r in rows]


@router.post("/audit/verify")
def audit_verify(body: AuditVerify, request: Request) -> dict[str, object]:
    from citywatch.errors import BadInputError

    anchor = None
    if body.anchor:
        seq, _, digest = body.anchor.partition(":")
        if not (seq.isdigit() and len(digest) == 64):
            raise BadInputError(f"anchor {body.anchor!r} must be {_ANCHOR_HELP}")
        anchor = (int(seq), digest)
    with acting(request) as (settings, storage):
        params = {"command": "audit verify", "anchor": body.anchor or ""}
        with governed(settings, storage, Action.AUDIT_READ, None, None, params) as run:
            verdict = AuditLog(storage).verify(anchor=anchor)
            run.result_count = verdict.checked
            run.detail = "" if verdict.ok else f"verify found: {verdict.reason}"
    return dataclasses.asdict(verdict)


@router.post("/holds")
def hold(body: Hold, request: Request) -> dict[str, object]:
    """Keep a track's rows past retention for a case."""
    from citywatch.tasks.retention import add_hold

    with acting(request) as (settings, storage):
        params = {"track": body.track_id}
        with governed(settings, storage, Action.CASE_HOLD, body.case_id, body.justification, params) as run:
            row = add_hold(storage, run.case_id, body.track_id, run.actor.user, run.justification)
            run.result_count = 1
    return dataclasses.asdict(row)
