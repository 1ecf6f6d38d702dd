"""Watchlist requests and approvals: the API's own endpoints (four eyes: the approver must be
another signed-in supervisor than the requester), from a case or the approval queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from citywatch.errors import BadInputError
from citywatch.governance.cases import get_case
from citywatch.schemas import Reason
from citywatch.service import routes_watchlist
from citywatch.service.deps import acting
from citywatch.service.models import Approve, PlateEntry
from citywatch.service.pages.render import redirect, render
from citywatch.service.pages.routes_cases import case_url

router = APIRouter()


@router.get("/watchlist")
def watchlist_page(request: Request) -> HTMLResponse:
    entries = routes_watchlist.watchlist(request, all=False)
    pending = [e for e in entries if e.get("state") == "pending"]
    others = [e for e in entries if e.get("state") != "pending"]
    return render(request, "watchlist.html", pending=pending, others=others, case_url=case_url)


@router.post("/watchlist/request")
def request_entry(
    request: Request,
    case_id: Annotated[str, Form(max_length=200)],
    kind: Annotated[str, Form(max_length=10)],
    label: Annotated[str, Form(max_length=200)] = "",
    reason: Annotated[str, Form(max_length=40)] = "",
    expires: Annotated[str, Form(max_length=40)] = "7d",
    plate: Annotated[str, Form(max_length=20)] = "",
    photo: Annotated[list[UploadFile] | None, File()] = None,
) -> HTMLResponse:
    """Request a plate or face entry for the case; it waits for a supervisor's approval."""
    if reason not in {r.value for r in Reason}:
        raise BadInputError(f"reason must be one of {', '.join(r.value for r in Reason)}")
    if not label.strip():
        raise BadInputError("give the entry a label (who or what it is)")
    with acting(request) as (_settings, storage):
        row = get_case(storage, case_id)
    if kind == "plate":
        try:
            body = PlateEntry(
                plate=plate.strip(),
                label=label.strip(),
                reason=reason,
                expires=expires,
                case_id=row.id,
                justification=row.legal_basis,
            )
        except ValidationError as exc:
            raise BadInputError("give the plate to watch for (1-20 characters)") from exc
        entry = routes_watchlist.request_plate(body, request)
    elif kind == "face":
        photos = [p for p in (photo or []) if p.filename]
        if not photos:
            raise BadInputError("choose one or more photos of the person (one face each)")
        entry = routes_watchlist.request_face(
            request, photos, label.strip(), reason, expires, row.id, row.legal_basis
        )
    else:
        raise BadInputError(f"kind {kind[:10]!r} must be plate or face")
    return render(request, "entry_requested.html", entry=entry)


@router.post("/watchlist/approve")
def approve(
    request: Request,
    entry_id: Annotated[str, Form(max_length=200)],
    justification: Annotated[str, Form(max_length=1000)] = "",
) -> HTMLResponse:
    """Approve a pending entry (another supervisor than the one who asked; audited)."""
    if len(justification.strip()) < 10:
        raise BadInputError("say why you approve this entry (at least 10 characters)")
    routes_watchlist.approve_entry(entry_id, Approve(justification=justification.strip()), request)
    return redirect("/watchlist")
