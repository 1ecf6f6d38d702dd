"""The audit view for supervisors and admins: the API's own audit list (filtered by user, case,
action and a time window in the user's zone) and chain verification."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from citywatch.governance.roles import Action
from citywatch.service import routes_governed
from citywatch.service.models import AuditVerify
from citywatch.service.pages.render import from_local, render, user_zone

router = APIRouter()
LIMIT = 500


@dataclass(frozen=True, slots=True)
class AuditLine:
    seq: int
    ts: dt.datetime
    user: str
    role: str
    action: str
    outcome: str
    case_id: str
    justification: str
    detail: str
    via: str


def _line(record: dict[str, object]) -> AuditLine:
    try:
        params = json.loads(str(record.get("params") or "{}"))
    except ValueError:
        params = {}
    via = params.get("via") if isinstance(params, dict) else None
    via_text = ", ".join(f"{k} {v}" for k, v in via.items()) if isinstance(via, dict) else ""
    return AuditLine(
        int(str(record["seq"])),
        dt.datetime.fromisoformat(str(record["ts"]).replace("Z", "+00:00")),
        str(record["user"]),
        str(record["role"]),
        str(record["action"]),
        str(record["outcome"]),
        str(record["case_id"]),
        str(record["justification"]),
        str(record["detail"]),
        via_text,
    )


@router.get("/audit")
def audit_page(
    request: Request, user: str = "", case: str = "", action: str = "", since: str = "", until: str = ""
) -> HTMLResponse:
    zone = user_zone(request)
    start, end = from_local(since, zone, "from"), from_local(until, zone, "to")
    records = routes_governed.audit(
        request, case=case[:64] or None, user=user[:64] or None, action=action[:64] or None, limit=LIMIT
    )
    lines = [_line(r) for r in reversed(records)]
    lines = [x for x in lines if (start is None or x.ts >= start) and (end is None or x.ts <= end)]
    form = {"user": user, "case": case, "action": action, "since": since, "until": until}
    return render(
        request, "audit.html", lines=lines, form=form, actions=[a.value for a in Action], limit=LIMIT
    )


@router.post("/audit/verify")
def audit_verify(request: Request) -> HTMLResponse:
    verdict = routes_governed.audit_verify(AuditVerify(anchor=None), request)
    return render(request, "audit_verdict.html", verdict=verdict)
