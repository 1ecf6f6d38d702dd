"""Face search in a case: the form, the governed search (the API's own), thumbnails served
through an audited endpoint (never a storage path), and keeping a sighting as evidence."""

from __future__ import annotations

import base64
import datetime as dt
import io
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from citywatch.errors import BadInputError
from citywatch.governance.auth import Action, governed
from citywatch.governance.cases import find_sighting, get_case, keep_evidence
from citywatch.schemas import CameraRow, arrow_to_rows
from citywatch.service.deps import acting, service_of
from citywatch.service.pages.maps import Located, map_view
from citywatch.service.pages.render import HEADERS, from_local, render, zone_named
from citywatch.service.pages.routes_cases import case_url
from citywatch.service.pages.routes_play import play_url
from citywatch.service.routes_search import run_face_search
from citywatch.service.uploads import read_image_upload
from citywatch.sightings import Sighting
from citywatch.tables import cameras_table, has_table

router = APIRouter()
MAX_FACES_SHOWN = 12
ARRANGEMENTS = {
    "closest": "closest first",
    "camera": "grouped by camera (camera with the closest sighting first), each in time order",
    "time": "ordered by time",
}


@dataclass(frozen=True, slots=True)
class Group:
    """Sightings shown together under one heading ("" when the results are one list)."""

    heading: str
    sightings: list[Sighting]


def arrange(sightings: list[Sighting], how: str) -> list[Group]:
    """The results closest first, grouped by camera, or in time order (``ARRANGEMENTS``)."""
    if how not in ARRANGEMENTS:
        raise BadInputError(f"order {how[:40]!r} must be one of {', '.join(ARRANGEMENTS)}")
    by_rank = sorted(sightings, key=lambda s: s.rank)
    if how == "time":
        return [Group("", sorted(by_rank, key=lambda s: (s.ts, s.rank)))]
    if how == "closest":
        return [Group("", by_rank)]
    cameras: dict[str, list[Sighting]] = {}
    for s in by_rank:  # dicts keep insertion order: the camera of the closest sighting first
        cameras.setdefault(s.camera_id, []).append(s)
    return [
        Group(f"{rows[0].camera_name} ({len(rows)})", sorted(rows, key=lambda s: (s.ts, s.rank)))
        for rows in cameras.values()
    ]


@dataclass(frozen=True, slots=True)
class Mark:
    """A sighting's place on the timeline strip (percent across the window)."""

    x: float
    rank: int
    label: str


def cameras_by_district(storage) -> dict[str, list[CameraRow]]:  # noqa: ANN001 - Storage
    if not has_table(storage.db, CameraRow.TABLE):
        return {}
    rows = arrow_to_rows(cameras_table(storage.db).to_arrow(), CameraRow)
    grouped: dict[str, list[CameraRow]] = {}
    for row in sorted(rows, key=lambda r: (r.district, r.id)):
        grouped.setdefault(row.district or "no district", []).append(row)
    return grouped


def all_cameras(cameras: dict[str, list[CameraRow]]) -> list[CameraRow]:
    return [c for rows in cameras.values() for c in rows]


@router.get("/search/face")
def face_page(request: Request, case: str = "") -> HTMLResponse:
    with acting(request) as (settings, storage):
        row = get_case(storage, case)
        cameras = cameras_by_district(storage)
    area_map = map_view(settings, all_cameras(cameras))
    return render(
        request, "face_search.html", case=row, cameras=cameras, area_map=area_map, case_url=case_url
    )


@router.post("/search/face")
def face_search(
    request: Request,
    probe: Annotated[UploadFile, File()],
    case_id: Annotated[str, Form(max_length=200)],
    camera: Annotated[list[str] | None, Form()] = None,
    since: Annotated[str, Form(max_length=40)] = "",
    until: Annotated[str, Form(max_length=40)] = "",
    tz: Annotated[str, Form(max_length=64)] = "",
    face: Annotated[int | None, Form(ge=0, le=100)] = None,
    top_k: Annotated[int, Form(ge=1, le=200)] = 24,
    order: Annotated[str, Form(max_length=20)] = "closest",
) -> HTMLResponse:
    """Run the governed face search; several faces in the photo: show them to pick one."""
    zone = zone_named(tz)
    start, end = from_local(since, zone, "from"), from_local(until, zone, "to")
    if start and end and end <= start:
        raise BadInputError("the time window's end must be after its start")
    arrange([], order)  # a bad choice is said before anything runs
    data, ext = read_image_upload(probe, "photo", service_of(request).settings.service.max_upload_bytes)
    with acting(request) as (settings, storage):
        row = get_case(storage, case_id)
        located = all_cameras(cameras_by_district(storage))
    if face is None:
        crops = _face_crops(request, data)
        if len(crops) > 1:
            return render(request, "face_picker.html", crops=crops)
    cameras = [c for c in (camera or []) if c]
    why = row.legal_basis
    result = run_face_search(request, data, ext, row.id, why, cameras, None, start, end, top_k, face)
    sightings = sorted(result.sightings, key=lambda s: s.rank)
    window = time_window(start, end, [s.ts for s in sightings])
    return render(
        request,
        "face_results.html",
        case=row,
        sightings=sightings,
        groups=arrange(sightings, order),
        order=ARRANGEMENTS[order],
        marks=marks(window, [(s.ts, s.rank, s.camera_name) for s in sightings]),
        window=window,
        threshold=result.threshold,
        model=result.model,
        zone=zone,
        thumb=thumb_url,
        play=play_url,
        area_map=map_view(
            settings, located, [Located(s.camera_id, s.lat, s.lon, f"#{s.rank}") for s in sightings]
        ),
    )


@router.get("/media/thumb")
def thumbnail(request: Request, case: str = "", kind: str = "face", id: str = "") -> Response:  # noqa: A002
    """One face or plate sighting's thumbnail, viewed for a case (audited as ``media_view``)."""
    with acting(request) as (settings, storage):
        row = get_case(storage, case)
        params = {"kind": kind[:20], "sighting": id[:300]}
        with governed(settings, storage, Action.MEDIA_VIEW, row.id, row.legal_basis, params) as run:
            ref = find_sighting(storage, kind, id)
            data = storage.read_bytes(ref.thumb_uri)
            run.result_count = 1
    return Response(data, media_type="image/jpeg", headers={**HEADERS, "Cache-Control": "private, no-store"})


@router.post("/evidence")
def keep(
    request: Request,
    case_id: Annotated[str, Form(max_length=200)],
    sighting_id: Annotated[str, Form(max_length=300)],
    kind: Annotated[str, Form(max_length=20)] = "face",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> HTMLResponse:
    """Keep a sighting as evidence of the case, with a note (audited as ``evidence_keep``)."""
    with acting(request) as (settings, storage):
        row = get_case(storage, case_id)
        params = {"kind": kind[:20], "sighting": sighting_id[:300], "note": note[:200]}
        with governed(settings, storage, Action.EVIDENCE_KEEP, row.id, row.legal_basis, params) as run:
            seen = find_sighting(storage, kind, sighting_id)
            kept = keep_evidence(storage, row.id, seen, note, run.actor.user)
            run.result_count = 1
    return render(request, "evidence_kept.html", kept=kept, case_url=case_url)


def thumb_url(case_id: str, kind: str, sighting_id: str) -> str:
    """The governed thumbnail URL of a sighting (opaque ids; never a storage path)."""
    return "/media/thumb?" + urlencode({"case": case_id, "kind": kind, "id": sighting_id})


def _face_crops(request: Request, data: bytes) -> list[str]:
    """The faces in the uploaded photo, left to right, as data: URLs (the photo is not kept)."""
    from PIL import Image

    from citywatch.images import decode_image
    from citywatch.models.loaders import face_model_for

    settings = service_of(request).settings
    image = decode_image(data, "photo", max_pixels=settings.search.probe_max_pixels)
    faces = sorted(face_model_for(settings).detector.detect(image), key=lambda f: f.bbox[0])
    crops = []
    for f in faces[:MAX_FACES_SHOWN]:
        x0, y0, x1, y1 = (int(v) for v in f.bbox)
        pad = int(0.2 * max(x1 - x0, y1 - y0))
        h, w = image.shape[:2]
        crop = image[max(0, y0 - pad) : min(h, y1 + pad), max(0, x0 - pad) : min(w, x1 + pad)]
        out = io.BytesIO()
        picture = Image.fromarray(crop[:, :, ::-1].copy())  # BGR -> RGB
        picture.thumbnail((160, 160))
        picture.save(out, format="JPEG", quality=85)
        crops.append("data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode())
    return crops


def time_window(
    start: dt.datetime | None, end: dt.datetime | None, moments: list[dt.datetime]
) -> tuple[dt.datetime, dt.datetime] | None:
    lo = start or (min(moments) if moments else None)
    hi = end or (max(moments) if moments else None)
    if lo is None or hi is None:
        return None
    if hi <= lo:
        lo, hi = lo - dt.timedelta(seconds=30), hi + dt.timedelta(seconds=30)
    return lo, hi


def marks(
    window: tuple[dt.datetime, dt.datetime] | None, points: list[tuple[dt.datetime, int, str]]
) -> list[Mark]:
    """Each (moment, rank, label) placed across ``window`` for the timeline strip."""
    if window is None:
        return []
    lo, hi = window
    span = (hi - lo).total_seconds()
    return [
        Mark(round(100 * min(max((ts - lo).total_seconds() / span, 0), 1), 2), rank, label)
        for ts, rank, label in points
    ]
