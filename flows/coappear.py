"""Deployments ``coappear`` and ``recurring``: who was with the subject; which faces keep coming back.

Both are case-bound and audited (citywatch/governance/auth.py ``governed``). A recurring
search over the default limits runs only with a supervisor's approval of a request
(citywatch/governance/scope_approvals.py); without one it is refused as bad input, or
recorded as a pending request with ``request_approval``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from prefect import flow, get_run_logger

from citywatch.errors import BadInputError, ForbiddenError
from citywatch.filters import is_in
from citywatch.governance.auth import Action, governed
from citywatch.governance.refusals import refusals_on_record
from citywatch.governance.scope_approvals import (
    ScopeRequestRow,
    approve_request,
    approved_request,
    file_request,
)
from citywatch.models.loaders import face_model_for
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tasks.search.coappear import FaceGroup, case_tracks, check_window, find_companions, load_faces
from citywatch.tasks.search.recurring import (
    RecurringScope,
    check_scope,
    over_limits,
    recurring_groups,
    within,
)

MAX_SIGHTINGS = 500


@dataclass(frozen=True)
class CoappearResult:
    case_id: str
    subject_tracks: tuple[str, ...]
    window_s: float
    threshold: float
    groups: list[FaceGroup]


@dataclass(frozen=True)
class RecurringResult:
    case_id: str
    scope: RecurringScope
    threshold: float
    groups: list[FaceGroup]
    pending_request: str = ""  # set when the scope was over the limits and a request was filed
    approval: str = ""  # the approved request the search ran under


def group_threshold(settings: Settings) -> float:
    """The face match threshold (configured, else the embedder's calibrated one)."""
    return settings.faces.match_threshold or face_model_for(settings).embedder.default_threshold


def subject_tracks(storage: Storage, case_id: str, sightings: tuple[str, ...]) -> list[str]:
    """Tracks of the given face sightings (face ids), or of the case's kept sightings."""
    if not sightings:
        return case_tracks(storage, case_id)
    if len(sightings) > MAX_SIGHTINGS:
        raise BadInputError(f"--sighting: {len(sightings)} given, at most {MAX_SIGHTINGS}")
    found = {f.id: f.track_id for f in load_faces(storage, is_in("id", sorted(set(sightings))))}
    missing = [s for s in sightings if s not in found]
    if missing:
        raise BadInputError(f"--sighting {missing[0]!r}: no such face sighting")
    return sorted(set(found.values()))


def companions_search(
    settings: Settings,
    *,
    case_id: str | None,
    justification: str | None,
    sightings: tuple[str, ...] = (),
    window_s: float | None = None,
) -> CoappearResult:
    """Plain function behind the ``coappear`` flow; governed and audited."""
    storage = Storage(settings)
    window = settings.coappear.window_s if window_s is None else window_s
    finite = isinstance(window, int | float) and math.isfinite(window)
    params = {"sightings": list(sightings[:MAX_SIGHTINGS]), "window_s": window if finite else str(window)}
    with refusals_on_record(settings, storage, Action.SEARCH_COAPPEAR, case_id, justification, params):
        check_window(window)
    with governed(settings, storage, Action.SEARCH_COAPPEAR, case_id, justification, params) as run:
        tracks = subject_tracks(storage, run.case_id, sightings)
        threshold = group_threshold(settings)
        groups = find_companions(
            storage,
            tracks,
            window_s=window,
            threshold=threshold,
            min_quality=settings.coappear.min_track_quality,
        )
        run.result_count = len(groups)
        run.detail = f"{len(tracks)} subject tracks; {sum(g.count for g in groups)} companion sightings"
    return CoappearResult(run.case_id, tuple(tracks), float(window), threshold, groups)


def recurring_search(
    settings: Settings,
    scope: RecurringScope,
    *,
    case_id: str | None,
    justification: str | None,
    approval: str | None = None,
    request_approval: bool = False,
) -> RecurringResult:
    """Plain function behind the ``recurring`` flow; governed, audited, limited."""
    storage = Storage(settings)
    params = {
        "cameras": list(scope.camera_ids[:1000]),
        "since": scope.since.isoformat() if isinstance(scope.since, dt.datetime) else None,
        "until": scope.until.isoformat() if isinstance(scope.until, dt.datetime) else None,
        "min_count": scope.min_count,
        "approval": approval,
    }
    with refusals_on_record(settings, storage, Action.SEARCH_RECURRING, case_id, justification, params):
        scope = check_scope(scope)
    limits = over_limits(
        scope,
        max_cameras=settings.coappear.recurring_max_cameras,
        max_days=settings.coappear.recurring_max_days,
    )
    with governed(settings, storage, Action.SEARCH_RECURRING, case_id, justification, params) as run:
        if limits and approval:
            row = approved_request(
                storage, approval, Action.SEARCH_RECURRING.value, run.case_id, run.actor.user
            )
            if not within(scope, _scope_of(row, scope.min_count)):
                raise ForbiddenError(f"the request goes beyond what {approval} approved ({_describe(row)})")
        elif limits and request_approval:
            row = file_request(
                storage,
                action=Action.SEARCH_RECURRING.value,
                case_id=run.case_id,
                justification=run.justification,
                requested_by=run.actor.user,
                camera_ids=scope.camera_ids,
                since=scope.since,
                until=scope.until,
                over_limits="; ".join(limits),
            )
            run.detail = f"over the limits ({'; '.join(limits)}): request {row.id} waits for a supervisor"
            return RecurringResult(run.case_id, scope, 0.0, [], pending_request=row.id)
        elif limits:
            raise BadInputError(
                f"this recurring-faces search covers {' and '.join(limits)}: beyond the limits a "
                "supervisor must approve it; add --request-approval to ask, then run it again "
                "with --approval REQUEST_ID once approved"
            )
        threshold = group_threshold(settings)
        groups = recurring_groups(
            storage, scope, threshold=threshold, min_quality=settings.coappear.min_track_quality
        )
        run.result_count = len(groups)
    return RecurringResult(run.case_id, scope, threshold, groups, approval=approval or "")


def approve_recurring(
    settings: Settings, request_id: str, *, case_id: str | None, justification: str | None
) -> ScopeRequestRow:
    """A supervisor (not the requester) approves a pending over-the-limits request."""
    storage = Storage(settings)
    params = {"request": request_id[:100]}
    with governed(settings, storage, Action.RECURRING_APPROVE, case_id, justification, params) as run:
        row = approve_request(storage, request_id, run.case_id, run.actor.user)
        run.result_count = 1
        run.detail = f"approved {row.id} of {row.requested_by}: {_describe(row)}"
    return row


def _scope_of(row: ScopeRequestRow, min_count: int) -> RecurringScope:
    return RecurringScope(tuple(row.camera_ids), row.since, row.until, min_count)


def _describe(row: ScopeRequestRow) -> str:
    return f"{len(row.camera_ids)} cameras, {row.since.isoformat()} to {row.until.isoformat()}"


@flow(name="coappear")
def coappear(
    case_id: str | None = None,
    justification: str | None = None,
    sightings: list[str] | None = None,
    window_s: float | None = None,
    settings: Settings | None = None,
) -> CoappearResult:
    """Who was with the subject, as a flow run (visible in the Prefect UI); governed and audited."""
    settings = settings or Settings()
    result = companions_search(
        settings,
        case_id=case_id,
        justification=justification,
        sightings=tuple(sightings or ()),
        window_s=window_s,
    )
    get_run_logger().info(
        "%d companion groups for %d subject tracks", len(result.groups), len(result.subject_tracks)
    )
    return result


@flow(name="recurring")
def recurring(
    camera_ids: list[str],
    since: dt.datetime,
    until: dt.datetime,
    min_count: int,
    case_id: str | None = None,
    justification: str | None = None,
    approval: str | None = None,
    request_approval: bool = False,
    settings: Settings | None = None,
) -> RecurringResult:
    """Recurring unknown faces as a flow run; governed, audited, limited."""
    settings = settings or Settings()
    result = recurring_search(
        settings,
        RecurringScope(tuple(camera_ids), since, until, min_count),
        case_id=case_id,
        justification=justification,
        approval=approval,
        request_approval=request_approval,
    )
    get_run_logger().info("%d recurring groups", len(result.groups))
    return result
