"""Promote a face group to a face search or a watchlist request (governed, audited).

The same governed paths as a photo (``search_face`` / ``watchlist_request``), with the
group recorded as the source: its sightings in the audit params, its template's sha256
as the probe's. A watchlist request made this way is pending until a second person
approves it, like any other.
"""

from __future__ import annotations

from citywatch.flows.coappear import group_threshold
from citywatch.flows.search import FaceSearchResult, describe
from citywatch.footage import format_stamp
from citywatch.governance.auth import Action, governed
from citywatch.governance.refusals import refusals_on_record
from citywatch.governance.watchlist import EntryRequest, parse_expiry
from citywatch.governance.watchlist_faces import enrol_face_template
from citywatch.schemas import WatchlistRow, utcnow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tasks.search.faces import SearchFilters, search_faces
from citywatch.tasks.search.promote import group_template
from citywatch.tasks.search.report import ReportHeader, render_search_report

MAX_LISTED = 50  # sightings named in the audit params (all of them count towards the sha256)


def group_search(
    settings: Settings,
    sightings: tuple[str, ...],
    filters: SearchFilters,
    *,
    case_id: str | None,
    justification: str | None,
    top_k: int | None = None,
) -> FaceSearchResult:
    """A face search with the group's template as the probe."""
    storage = Storage(settings)
    params = {"source": "group", "sightings": list(sightings[:MAX_LISTED]), "filters": describe(filters)}
    with governed(settings, storage, Action.SEARCH_FACE, case_id, justification, params) as run:
        threshold = group_threshold(settings)
        template = group_template(storage, sightings, threshold)
        run.probe_sha256 = template.sha256
        found = search_faces(
            storage,
            settings,
            template.probe(),
            filters,
            top_k=top_k or settings.search.top_k,
            threshold=threshold,
        )
        run.result_count = len(found)
        run.detail = f"probe: {template.source}"
    created = utcnow()
    header = ReportHeader(
        title=f"Face search from a group, case {run.case_id} by {run.actor.user}",
        rows=(
            ("probe", f"{template.source} (sha256 {template.sha256[:16]}...)"),
            ("filters", describe(filters)),
            ("justification", run.justification),
            ("threshold", f"{threshold:.3f} (L2 distance, {template.model})"),
        ),
        created=created,
    )
    key = f"reports/search-{format_stamp(created)}-group-{template.sha256[:8]}.html"
    report_uri = storage.write_bytes(key, render_search_report(storage, header, found).encode())
    return FaceSearchResult(template.source, template.sha256, threshold, template.model, found, report_uri)


def group_watchlist_request(
    settings: Settings,
    sightings: tuple[str, ...],
    *,
    label: str,
    reason: str,
    expires: str,
    case_id: str | None,
    justification: str | None,
    threshold: float | None = None,
) -> WatchlistRow:
    """A pending face watchlist entry from the group's template (a second person approves it)."""
    storage = Storage(settings)
    now = utcnow()
    raw = {"kind": "face", "source": "group", "label": label, "expires": expires}
    with refusals_on_record(settings, storage, Action.WATCHLIST_REQUEST, case_id, justification, raw):
        expires_at = parse_expiry(expires, now, settings.watchlist.max_days)
    params = {
        **raw,
        "reason": reason,
        "expires": expires_at.isoformat(),
        "threshold": threshold,
        "sightings": list(sightings[:MAX_LISTED]),
    }
    with governed(settings, storage, Action.WATCHLIST_REQUEST, case_id, justification, params) as run:
        default = group_threshold(settings)
        template = group_template(storage, sightings, default)
        run.probe_sha256 = template.sha256
        request = EntryRequest(
            label, reason, run.case_id, run.justification, run.actor.user, expires_at, threshold
        )
        row = enrol_face_template(
            storage,
            template.embedding.tolist(),
            template.sha256,
            template.model,
            request,
            default_threshold=default,
            max_days=settings.watchlist.max_days,
            now=now,
        )
        run.result_count = 1
        run.detail = f"entry {row.id} from {template.source}"
    return row
