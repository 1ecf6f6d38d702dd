"""Recurring unknown faces: group every face track on chosen cameras in a bounded window.

The scope (cameras, window, minimum count) is checked here; whether it is within the
limits a request may cover alone (``recurring_max_cameras`` / ``recurring_max_days``)
or needs a supervisor's approval is decided by :func:`over_limits` and enforced by the
governed caller (flows/coappear.py). Groups are not identities: no name, nothing stored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from citywatch.cameras import check_camera_id
from citywatch.errors import BadInputError
from citywatch.filters import where_clause
from citywatch.schemas import CameraRow, arrow_to_rows
from citywatch.storage import Storage
from citywatch.tables import cameras_table, has_table
from citywatch.tasks.search.coappear import FaceGroup, build_groups, load_faces
from citywatch.tasks.search.grouping import group_tracks, groupable, track_templates

MAX_CAMERAS_EVEN_APPROVED = 1000


@dataclass(frozen=True, slots=True)
class RecurringScope:
    """Which cameras, over which window, and how often a face must recur to be listed."""

    camera_ids: tuple[str, ...]
    since: dt.datetime
    until: dt.datetime
    min_count: int

    @property
    def days(self) -> float:
        return (self.until - self.since).total_seconds() / 86400.0


def check_scope(scope: RecurringScope) -> RecurringScope:
    """The scope with cameras deduplicated and sorted; bad input raises BadInputError."""
    cameras = tuple(sorted({check_camera_id(c) for c in scope.camera_ids}))
    if not cameras:
        raise BadInputError("--camera: name at least one camera (repeatable); recurring faces are bounded")
    if len(cameras) > MAX_CAMERAS_EVEN_APPROVED:
        raise BadInputError(f"--camera: {len(cameras)} cameras; at most {MAX_CAMERAS_EVEN_APPROVED}")
    for when, what in ((scope.since, "--since"), (scope.until, "--until")):
        if not isinstance(when, dt.datetime) or when.tzinfo is None:
            raise BadInputError(f"{what} must be a timezone-aware time")
    if scope.since >= scope.until:
        raise BadInputError(
            f"--since {scope.since.isoformat()} must be before --until {scope.until.isoformat()}"
        )
    if isinstance(scope.min_count, bool) or not isinstance(scope.min_count, int) or scope.min_count < 2:
        raise BadInputError(f"--min-count {scope.min_count!r}: a recurring face is seen at least 2 times")
    return RecurringScope(cameras, scope.since, scope.until, scope.min_count)


def over_limits(scope: RecurringScope, *, max_cameras: int, max_days: float) -> list[str]:
    """Why ``scope`` needs a supervisor's approval ([] = within the default limits)."""
    reasons = []
    if len(scope.camera_ids) > max_cameras:
        reasons.append(f"{len(scope.camera_ids)} cameras (the limit is {max_cameras})")
    if scope.days > max_days:
        reasons.append(f"a window of {scope.days:g} days (the limit is {max_days:g})")
    return reasons


def within(scope: RecurringScope, approved: RecurringScope) -> bool:
    """True when ``scope`` asks for no more than ``approved`` covers."""
    return (
        set(scope.camera_ids) <= set(approved.camera_ids)
        and scope.since >= approved.since
        and scope.until <= approved.until
    )


def check_cameras_known(storage: Storage, camera_ids: tuple[str, ...]) -> None:
    known: set[str] = set()
    if has_table(storage.db, CameraRow.TABLE):
        known = {c.id for c in arrow_to_rows(cameras_table(storage.db).to_arrow(), CameraRow)}
    unknown = [c for c in camera_ids if c not in known]
    if unknown:
        raise BadInputError(f"--camera {', '.join(repr(c) for c in unknown[:5])}: no such camera")


def recurring_groups(
    storage: Storage, scope: RecurringScope, *, threshold: float, min_quality: float = 0.0
) -> list[FaceGroup]:
    """Groups of face tracks seen at least ``scope.min_count`` times, most sightings first
    (tracks whose best face is below ``min_quality`` are left out)."""
    scope = check_scope(scope)
    check_cameras_known(storage, scope.camera_ids)
    where = where_clause(camera_ids=scope.camera_ids, since=scope.since, until=scope.until)
    templates = track_templates(load_faces(storage, where or "TRUE"))
    if not templates:
        raise BadInputError(
            f"no faces on {', '.join(scope.camera_ids)} between {scope.since.isoformat()} "
            f"and {scope.until.isoformat()}: choose other cameras or another window"
        )
    grouped = group_tracks(groupable(templates, min_quality), threshold)
    groups = [g for g in grouped if len(g) >= scope.min_count]
    ranked = sorted(groups, key=lambda g: (-len(g), -len({m.face.camera_id for m in g})))
    return build_groups(storage, ranked, threshold)
