"""Plate search in a case: patterns (``AB12*``), confusable-aware fuzzy matches shown as such,
a radius around a position; the API's own governed search, thumbnails through the audited
media endpoint, and keep-as-evidence like faces."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from citywatch.errors import BadInputError
from citywatch.governance.cases import get_case
from citywatch.service.deps import acting
from citywatch.service.models import PlateSearch
from citywatch.service.pages.maps import Located, map_view
from citywatch.service.pages.render import from_local, render, zone_named
from citywatch.service.pages.routes_cases import case_url
from citywatch.service.pages.routes_face import (
    all_cameras,
    cameras_by_district,
    marks,
    thumb_url,
    time_window,
)
from citywatch.service.routes_search import run_plate_search
from citywatch.tasks.search.plates import parse_near
from citywatch.times import format_utc

router = APIRouter()


@router.get("/search/plate")
def plate_page(request: Request, case: str = "") -> HTMLResponse:
    with acting(request) as (settings, storage):
        row = get_case(storage, case)
        cameras = cameras_by_district(storage)
    area_map = map_view(settings, all_cameras(cameras))
    return render(
        request, "plate_search.html", case=row, cameras=cameras, area_map=area_map, case_url=case_url
    )


@router.post("/search/plate")
def plate_search(
    request: Request,
    case_id: Annotated[str, Form(max_length=200)],
    text: Annotated[str, Form(max_length=40)] = "",
    max_edits: Annotated[float, Form(ge=0, le=3)] = 1.0,
    camera: Annotated[list[str] | None, Form()] = None,
    since: Annotated[str, Form(max_length=40)] = "",
    until: Annotated[str, Form(max_length=40)] = "",
    tz: Annotated[str, Form(max_length=64)] = "",
    near_lat: Annotated[str, Form(max_length=20)] = "",
    near_lon: Annotated[str, Form(max_length=20)] = "",
    near_m: Annotated[str, Form(max_length=20)] = "",
) -> HTMLResponse:
    zone = zone_named(tz)
    start, end = from_local(since, zone, "from"), from_local(until, zone, "to")
    if start and end and end <= start:
        raise BadInputError("the time window's end must be after its start")
    near_parts = [near_lat.strip(), near_lon.strip(), near_m.strip()]
    if any(near_parts) and not all(near_parts):
        raise BadInputError("near a position needs latitude, longitude and a radius in metres")
    with acting(request) as (settings, storage):
        row = get_case(storage, case_id)
        located = all_cameras(cameras_by_district(storage))
    try:
        body = PlateSearch(
            text=text.strip(),
            max_edits=max_edits,
            cameras=[c for c in (camera or []) if c],
            since=format_utc(start) if start else None,
            until=format_utc(end) if end else None,
            near=",".join(near_parts) if all(near_parts) else None,
            top_k=48,
            case_id=row.id,
            justification=row.legal_basis,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise BadInputError(f"plate search: {problems}") from exc
    result = run_plate_search(request, body)
    sightings = sorted(result.sightings, key=lambda s: s.rank)
    window = time_window(start, end, [s.plate.ts for s in sightings])
    points = [(s.plate.ts, s.rank, f"{s.plate.text} at {s.camera_name}") for s in sightings]
    return render(
        request,
        "plate_results.html",
        case=row,
        query=result.query,
        sightings=sightings,
        window=window,
        marks=marks(window, points),
        zone=zone,
        thumb=thumb_url,
        area_map=map_view(
            settings,
            located,
            [Located(s.plate.camera_id, s.plate.lat, s.plate.lon, s.plate.text) for s in sightings],
            near=_near(body.near),
            what="pass",
        ),
    )


def _near(text: str | None) -> tuple[float, float, float] | None:
    """The search's "near" (lat, lon, metres) for the map; the search itself checked it."""
    if not text:
        return None
    where = parse_near(text)
    return where.lat, where.lon, where.radius_m
