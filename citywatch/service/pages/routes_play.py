"""Play the moment: a sighting's footage in a ``<video>``, from a few seconds before it.

``GET /play?case&kind&id`` (a face or plate row id, never a path) is the governed,
audited step (``media_view``, params ``media: play``): the row is found server-side, a
short clip around it is rendered with the camera's privacy masks
(:mod:`citywatch.tasks.export.preview`) and kept in the service's memory, and the page
(or, for console.js, the panel) holds a ``<video>`` whose source is an opaque token.
``GET /media/clip?case&clip`` serves that clip with HTTP range requests (206,
Content-Range) to the user and case the token was made for; it is the same play, so it
is not audited again. No role sees the raw (unmasked) view: masks are always applied.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from citywatch.errors import BadInputError, ForbiddenError, NotFoundError
from citywatch.governance.auth import Action, governed
from citywatch.governance.cases import find_sighting, get_case
from citywatch.governance.roles import PERMISSIONS
from citywatch.service.clips import ClipCache
from citywatch.service.deps import acting, identity_of
from citywatch.service.pages.render import HEADERS, is_fragment, render
from citywatch.service.pages.routes_cases import case_url
from citywatch.service.pages.routes_export import byte_range

router = APIRouter()
SIGHTING_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./:#@-]{0,199}")  # a faces / plates row id
SEARCHED_BY = {"face": Action.SEARCH_FACE, "plate": Action.SEARCH_PLATE}  # who may see such rows


def play_url(case_id: str, kind: str, sighting_id: str) -> str:
    """The player of one sighting (opaque ids; never a storage path)."""
    return "/play?" + urlencode({"case": case_id, "kind": kind, "id": sighting_id})


def clip_url(case_id: str, token: str) -> str:
    return "/media/clip?" + urlencode({"case": case_id, "clip": token})


def clips_of(request: Request) -> ClipCache:
    cache: ClipCache = request.app.state.play_clips  # made by create_app
    return cache


@router.get("/play")
def play(request: Request, case: str = "", kind: str = "face", id: str = "") -> HTMLResponse:  # noqa: A002
    """Render (or reuse) the masked clip around a sighting; audited as ``media_view``."""
    if kind not in SEARCHED_BY:
        raise BadInputError(f"kind {kind[:20]!r} must be one of {', '.join(SEARCHED_BY)}")
    if not SIGHTING_ID.fullmatch(id):
        raise BadInputError(f"sighting id {id[:80]!r} is not a sighting id")
    from citywatch.tasks.export.preview import render_preview

    identity = identity_of(request)
    cache = clips_of(request)
    with acting(request) as (settings, storage):
        row = get_case(storage, case)
        params = {"kind": kind, "sighting": id, "media": "play"}
        with governed(settings, storage, Action.MEDIA_VIEW, row.id, row.legal_basis, params) as run:
            allowed = PERMISSIONS[SEARCHED_BY[kind]]
            if not set(identity.roles) & allowed:
                raise ForbiddenError(
                    f"user {identity.user!r} may not see {kind} sightings: that needs the role "
                    + " or ".join(sorted(r.value for r in allowed))
                )
            seen = find_sighting(storage, kind, id)
            clip = cache.clip(kind, seen.id)
            if clip is None or clip.moment != seen.ts:
                clip = render_preview(storage, settings, seen.camera_id, seen.ts)
            token = cache.keep(kind, seen.id, clip, identity.user, row.id)
            run.result_count = 1
    lead = settings.play.lead_s
    return render(
        request,
        "play_panel.html" if is_fragment(request) else "play.html",
        case=row,
        kind=kind,
        clip=clip,
        src=clip_url(row.id, token),
        start_s=clip.start_s(lead),
        lead_s=lead,
        case_url=case_url,
    )


@router.get("/media/clip")
def media_clip(request: Request, case: str = "", clip: str = "") -> Response:
    """The clip a play made, to the user and case it was made for, with byte ranges."""
    identity = identity_of(request)
    found = clips_of(request).fetch(clip, identity.user, case)
    if found is None:
        raise NotFoundError("this clip is no longer available: click the sighting again to play it")
    data = found.data
    headers = {
        **HEADERS,
        "Content-Disposition": 'inline; filename="sighting.mp4"',
        "Cache-Control": "private, no-store",
        "Accept-Ranges": "bytes",
    }
    wanted = byte_range(request.headers.get("range", ""), len(data))
    if wanted is None:
        return Response(data, media_type="video/mp4", headers=headers)
    first, last = wanted
    headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
    return Response(data[first : last + 1], status_code=206, media_type="video/mp4", headers=headers)
