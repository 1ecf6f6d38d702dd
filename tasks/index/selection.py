"""Which segments one index run may take: a backfill of some cameras and a time range.

The ``index-footage`` deployment's optional parameters ``cameras``, ``since`` and
``until`` become a :class:`SegmentSelection`; the run indexes only the pending
segments it matches (a segment matches when its camera is listed, or none are, and
its start time is in ``[since, until)``). Everything else stays for later runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace

from citywatch.cameras import CAMERA_ID
from citywatch.errors import BadInputError
from citywatch.footage import SegmentRef
from citywatch.tasks.index.catalog import Plan

MAX_CAMERAS = 10_000


@dataclass(frozen=True, slots=True)
class SegmentSelection:
    cameras: tuple[str, ...] = ()  # empty: every camera
    since: dt.datetime | None = None  # segments starting at or after
    until: dt.datetime | None = None  # segments starting before

    @property
    def everything(self) -> bool:
        return not self.cameras and self.since is None and self.until is None

    def matches(self, ref: SegmentRef) -> bool:
        return (
            (not self.cameras or ref.camera_id in self.cameras)
            and (self.since is None or ref.start >= self.since)
            and (self.until is None or ref.start < self.until)
        )

    def describe(self) -> str:
        cams = ", ".join(self.cameras) if self.cameras else "every camera"
        since = self.since.isoformat() if self.since else "the start"
        until = self.until.isoformat() if self.until else "now"
        return f"{cams}, segments starting from {since} until {until}"


def _aware(value: dt.datetime | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise BadInputError(f"{name} {value.isoformat()} needs a timezone (e.g. 2026-11-20T08:00:00Z)")
    return value.astimezone(dt.UTC)


def segment_selection(
    cameras: Sequence[str] | None, since: dt.datetime | None, until: dt.datetime | None
) -> SegmentSelection:
    """Check the run's parameters: camera ids in full, aware times, ``since`` before ``until``."""
    names = tuple(dict.fromkeys(cameras or ()))
    if len(names) > MAX_CAMERAS:
        raise BadInputError(f"cameras: {len(names)} given, at most {MAX_CAMERAS}")
    for name in names:
        if not isinstance(name, str) or not CAMERA_ID.fullmatch(name):
            raise BadInputError(f"cameras: {name!r} is not a camera id")
    start, end = _aware(since, "since"), _aware(until, "until")
    if start is not None and end is not None and start >= end:
        raise BadInputError(f"since {start.isoformat()} must be before until {end.isoformat()}")
    return SegmentSelection(names, start, end)


def select_pending(plan: Plan, selection: SegmentSelection) -> tuple[Plan, int]:
    """The plan with only the selected pending segments, and how many were left out."""
    if selection.everything:
        return plan, 0
    kept = [ref for ref in plan.pending if selection.matches(ref)]
    return replace(plan, pending=kept), len(plan.pending) - len(kept)
