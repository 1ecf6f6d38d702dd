"""Export from a sighting or of one camera over a time range: the API's own redacted, signed
export (a flow run), verified at once, with the clip and its manifest downloadable by export id
(never a storage path; audited)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from citywatch.errors import BadInputError
from citywatch.governance.auth import Action, governed
from citywatch.governance.cases import CaseRow, get_case
from citywatch.service.deps import acting
from citywatch.service.models import Export, ExportVerify
from citywatch.service.pages.render import HEADERS, from_local, render, zone_named
from citywatch.service.routes_search import run_export, run_export_verify
from citywatch.storage import safe_key

if TYPE_CHECKING:
    from citywatch.flows.redact_export import ExportResult

router = APIRouter()
EXPORT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
PARTS = {"mp4": "video/mp4", "manifest.json": "application/json", "redactions.json": "application/json"}


def export_key(case_id: str, export_id: str, part: str) -> str:
    return safe_key(f"exports/{case_id}/{export_id}") + f".{part}"


def file_url(case_id: str, export_id: str, part: str) -> str:
    return "/exports/file?" + urlencode({"case": case_id, "export": export_id, "part": part})


@router.post("/exports/request")
def request_export(
    request: Request,
    case_id: Annotated[str, Form(max_length=200)],
    sighting_id: Annotated[str, Form(max_length=300)],
) -> HTMLResponse:
    """A redacted, signed clip around one sighting, for the case; verified before it is shown."""
    with acting(request) as (_settings, storage):
        row = get_case(storage, case_id)
    try:
        body = Export(case_id=row.id, justification=row.legal_basis, sighting_id=sighting_id)
    except ValidationError as exc:
        raise BadInputError(f"sighting id {sighting_id[:80]!r} is not a sighting id") from exc
    return _exported(request, row, run_export(request, body))


def _exported(request: Request, row: CaseRow, result: ExportResult) -> HTMLResponse:
    """The export verified at once, then shown with its clip and files."""
    manifest = export_key(row.id, result.export_id, "manifest.json")
    report = run_export_verify(
        request, ExportVerify(manifest=manifest, case_id=row.id, justification=row.legal_basis)
    )
    return render(request, "export_done.html", result=result, report=report, case=row, file_url=file_url)


@router.post("/exports/range")
def request_range_export(
    request: Request,
    case_id: Annotated[str, Form(max_length=200)],
    camera_id: Annotated[str, Form(max_length=200)] = "",
    since: Annotated[str, Form(max_length=40)] = "",
    until: Annotated[str, Form(max_length=40)] = "",
    tz: Annotated[str, Form(max_length=64)] = "",
) -> HTMLResponse:
    """A redacted, signed clip of one camera from ``since`` to ``until`` (the user's time zone),
    through the same governed export as the API's ``camera_id`` + ``since`` + ``until``."""
    zone = zone_named(tz)
    start, end = from_local(since, zone, "from"), from_local(until, zone, "to")
    if not camera_id.strip():
        raise BadInputError("choose the camera to export from")
    if start is None or end is None:
        raise BadInputError("give both the start and the end of the time range to export")
    if end <= start:
        raise BadInputError("the time range's end must be after its start")
    with acting(request) as (_settings, storage):
        row = get_case(storage, case_id)
    try:
        body = Export(
            case_id=row.id,
            justification=row.legal_basis,
            camera_id=camera_id.strip(),
            since=start.isoformat(),
            until=end.isoformat(),
        )
    except ValidationError as exc:
        raise BadInputError(f"camera id {camera_id[:80]!r} is not a camera id") from exc
    return _exported(request, row, run_export(request, body))


@router.get("/exports/file")
def export_file(request: Request, case: str = "", export: str = "", part: str = "mp4") -> Response:
    """One file of an export of the case (audited as ``export``, command ``export download``)."""
    if not EXPORT_ID.fullmatch(export):
        raise BadInputError(f"export id {export[:80]!r} is not an export id")
    if part not in PARTS:
        raise BadInputError(f"part {part[:40]!r} must be one of {', '.join(PARTS)}")
    with acting(request) as (settings, storage):
        row = get_case(storage, case)
        params = {"command": "export download", "export": export, "part": part}
        with governed(settings, storage, Action.EXPORT, row.id, row.legal_basis, params) as run:
            data = storage.read_bytes(storage.url(export_key(row.id, export, part)))
            run.result_count = 1
    name = f"{export}.{part}"
    disposition = "inline" if request.query_params.get("play") == "1" else "attachment"
    headers = {
        **HEADERS,
        "Content-Disposition": f'{disposition}; filename="{name}"',
        "Cache-Control": "private, no-store",
        "Accept-Ranges": "bytes",
    }
    wanted = byte_range(request.headers.get("range", ""), len(data))
    if wanted is None:
        return Response(data, media_type=PARTS[part], headers=headers)
    first, last = wanted
    headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
    return Response(data[first : last + 1], status_code=206, media_type=PARTS[part], headers=headers)


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) of a single ``bytes=A-B`` / ``bytes=A-`` / ``bytes=-N`` range, None for the whole."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if match is None or size == 0 or not (match.group(1) or match.group(2)):
        return None
    if not match.group(1):
        first, last = max(0, size - int(match.group(2))), size - 1
    else:
        first = int(match.group(1))
        last = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
    if first > last or first >= size:
        return None
    return first, last
