"""Where the pipeline stands: lag per camera, backlog, failures, sweep, deliveries, storage.

One plain function, :func:`pipeline_status`, computes what ``citywatch status``
prints, what the service's ``/metrics`` exposes and what the index run's artifact
shows, so the three always agree. Lag of a camera is the start of its newest footage
segment minus the start of its newest indexed (done) segment: 0 when the camera is
caught up, None when nothing of it is indexed yet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from citywatch.analytics.health import failure_reason
from citywatch.errors import BadInputError, NotFoundError
from citywatch.filters import all_of, eq, is_not_null, ne
from citywatch.footage import parse_stamp
from citywatch.governance.alerts import DeliveryRow, DeliveryState, deliveries_table
from citywatch.schemas import SegmentRow, arrow_to_rows, utcnow
from citywatch.storage import Storage
from citywatch.tables import has_table, segments_table
from citywatch.tasks.index.catalog import Plan, plan_index, read_segments
from citywatch.tasks.index.discovery import known_segments, load_marks
from citywatch.tasks.sweep.watermark import load_watermarks
from citywatch.times import format_utc

STORAGE_AREAS = ("footage", "db", "thumbs", "exports", "reports")
MAX_FAILURES_SHOWN = 100


@dataclass(frozen=True, slots=True)
class CameraLag:
    camera_id: str
    newest_footage: dt.datetime | None  # start of the newest segment file under footage
    newest_indexed: dt.datetime | None  # start of the newest done segment
    lag_s: float | None  # newest_footage - newest_indexed (0: caught up; None: nothing indexed)
    backlog: int  # segments waiting to be indexed
    failed: int  # segments that failed (and wait for --retry-failed or a new file)


@dataclass(frozen=True, slots=True)
class FailedSegment:
    segment_id: str
    camera_id: str
    reason: str  # without the segment's own location (alike failures read alike)
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class StorageUse:
    area: str  # footage, db, thumbs, exports, reports or other
    bytes: int
    files: int


@dataclass(frozen=True)
class PipelineStatus:
    """A snapshot of indexing, sweeping and delivery for one storage root."""

    generated_at: dt.datetime
    cameras: list[CameraLag]
    segments_found: int  # segment files under footage
    segments_done: int
    segments_failed: int
    backlog: int
    failures: list[FailedSegment]  # newest first, at most MAX_FAILURES_SHOWN
    last_sweep: dt.datetime | None  # when the sweep last moved its watermark
    sweep_age_s: float | None
    sweep_rows_seen: int
    deliveries_pending: int  # not delivered yet and still to be tried
    deliveries_failed: int  # given up after alert_delivery_max_attempts
    storage: list[StorageUse] = field(default_factory=list)
    # True: newest footage per camera is from the discovery marks and this run's
    # incremental listing, not from a full listing (segments_found: rows in ``segments``)
    lag_from_marks: bool = False

    @property
    def max_lag_s(self) -> float | None:
        lags = [c.lag_s for c in self.cameras if c.lag_s is not None]
        return max(lags) if lags else None

    @property
    def storage_bytes(self) -> int:
        return sum(s.bytes for s in self.storage)


def camera_lags(plan: Plan | None, segments: dict[str, SegmentRow]) -> list[CameraLag]:
    """Lag, backlog and failures per camera (``plan``: the footage listing, None if none)."""
    newest: dict[str, dt.datetime] = {}
    for ref in plan.discovery.segments if plan else []:
        newest[ref.camera_id] = max(ref.start, newest.get(ref.camera_id, ref.start))
    indexed: dict[str, dt.datetime] = {}
    failed: dict[str, int] = {}
    for row in segments.values():
        if row.state == "done":
            indexed[row.camera_id] = max(row.start, indexed.get(row.camera_id, row.start))
        elif row.state == "failed":
            failed[row.camera_id] = failed.get(row.camera_id, 0) + 1
    backlog: dict[str, int] = {}
    for ref in plan.pending if plan else []:
        backlog[ref.camera_id] = backlog.get(ref.camera_id, 0) + 1
    out = []
    for camera in sorted(set(newest) | set(indexed) | set(failed)):
        footage_at, indexed_at = newest.get(camera), indexed.get(camera)
        lag = None
        if indexed_at is not None:
            lag = max(0.0, ((footage_at or indexed_at) - indexed_at).total_seconds())
        out.append(
            CameraLag(camera, footage_at, indexed_at, lag, backlog.get(camera, 0), failed.get(camera, 0))
        )
    return out


def failed_segments(segments: dict[str, SegmentRow], limit: int = MAX_FAILURES_SHOWN) -> list[FailedSegment]:
    rows = sorted((r for r in segments.values() if r.state == "failed"), key=lambda r: r.updated_at)
    return [
        FailedSegment(r.id, r.camera_id, failure_reason(r.error, r.uri), r.updated_at)
        for r in reversed(rows[-limit:])
    ]


def delivery_counts(storage: Storage) -> tuple[int, int]:
    """(pending, given up) deliveries: not delivered, with a next attempt due / without."""
    if not has_table(storage.db, DeliveryRow.TABLE):
        return 0, 0
    table = deliveries_table(storage.db)
    undelivered = table.count_rows(ne("state", DeliveryState.DELIVERED.value))
    pending = table.count_rows(
        all_of(ne("state", DeliveryState.DELIVERED.value), is_not_null("next_attempt_at"))
    )
    return int(pending), int(undelivered - pending)


def storage_use(storage: Storage) -> list[StorageUse]:
    """Bytes and files under the root, by top-level area (one listing of the root)."""
    try:
        files = storage.list_files(storage.root)
    except NotFoundError:
        return []
    totals: dict[str, list[int]] = {}
    for obj in files:
        top = obj.key.split("/", 1)[0] if "/" in obj.key else ""
        area = top if top in STORAGE_AREAS else "other"
        entry = totals.setdefault(area, [0, 0])
        entry[0] += obj.size
        entry[1] += 1
    return [StorageUse(area, size, count) for area, (size, count) in sorted(totals.items())]


def pipeline_status(
    storage: Storage,
    footage_url: str | None = None,
    *,
    now: dt.datetime | None = None,
    with_storage: bool = True,
) -> PipelineStatus:
    """The snapshot ``citywatch status``, ``/metrics`` and the index artifact show."""
    now = now or utcnow()
    segments = read_segments(storage)
    try:
        plan: Plan | None = plan_index(storage, footage_url or storage.url("footage"), segments=segments)
    except NotFoundError:  # no footage folder yet
        plan = None
    cameras = camera_lags(plan, segments)
    marks = list(load_watermarks(storage).values())
    last_sweep = max((m.updated_at for m in marks), default=None)
    pending, given_up = delivery_counts(storage)
    return PipelineStatus(
        generated_at=now,
        cameras=cameras,
        segments_found=len(plan.discovery.segments) if plan else 0,
        segments_done=sum(1 for r in segments.values() if r.state == "done"),
        segments_failed=sum(1 for r in segments.values() if r.state == "failed"),
        backlog=sum(c.backlog for c in cameras),
        failures=failed_segments(segments),
        last_sweep=last_sweep,
        sweep_age_s=(now - last_sweep).total_seconds() if last_sweep else None,
        sweep_rows_seen=sum(m.rows_seen for m in marks),
        deliveries_pending=pending,
        deliveries_failed=given_up,
        storage=storage_use(storage) if with_storage else [],
    )


LAG_COLUMNS = ["camera_id", "start"]


def run_status(
    storage: Storage,
    footage_url: str,
    newest_listed: Mapping[str, dt.datetime],
    pending_ids: Sequence[str] = (),
    *,
    now: dt.datetime | None = None,
) -> PipelineStatus:
    """The index artifact's snapshot after an incremental run, without a full listing.

    Newest footage per camera: the newest segment this run listed, else the camera's
    discovery mark (where its next listing starts; tasks/index/discovery.py). Newest
    indexed: one read of two columns of the done rows of ``segments``; failures: the
    failed rows only; backlog: the run's pending segments (``pending_ids``) not settled
    after it (looked up by id). Sweep and deliveries as :func:`pipeline_status`; no
    storage use. ``segments_found`` is the done and failed rows (nothing was listed in full).
    """
    now = now or utcnow()
    newest: dict[str, dt.datetime] = {}
    for camera, stamp in load_marks(storage, footage_url).stamps.items():
        try:
            newest[camera] = parse_stamp(stamp)
        except BadInputError:  # an empty or odd mark: the run's own listing, if any, speaks
            continue
    for camera, start in newest_listed.items():
        newest[camera] = max(start, newest.get(camera, start))
    table = segments_table(storage.db)
    done = table.search().where(eq("state", "done")).select(LAG_COLUMNS).limit(None).to_arrow()
    newest_done = done.group_by("camera_id").aggregate([("start", "max")])  # in Arrow, not Python
    indexed: dict[str, dt.datetime] = dict(
        zip(
            newest_done.column("camera_id").to_pylist(),
            newest_done.column("start_max").to_pylist(),
            strict=True,
        )
    )
    failed_arrow = table.search().where(eq("state", "failed")).limit(None).to_arrow()
    failed_rows = arrow_to_rows(failed_arrow, SegmentRow)
    failed: dict[str, int] = {}
    for row in failed_rows:
        failed[row.camera_id] = failed.get(row.camera_id, 0) + 1
    settled = known_segments(storage, list(pending_ids)) if pending_ids else {}
    backlog: dict[str, int] = {}
    for segment_id in pending_ids:
        known = settled.get(segment_id)
        if known is None or known.state not in ("done", "failed"):
            camera = segment_id.partition("/")[0]
            backlog[camera] = backlog.get(camera, 0) + 1
    cameras = []
    for camera in sorted(set(newest) | set(indexed) | set(failed) | set(backlog)):
        footage_at, indexed_at = newest.get(camera), indexed.get(camera)
        lag = None
        if indexed_at is not None:
            lag = max(0.0, ((footage_at or indexed_at) - indexed_at).total_seconds())
        cameras.append(
            CameraLag(camera, footage_at, indexed_at, lag, backlog.get(camera, 0), failed.get(camera, 0))
        )
    marks = list(load_watermarks(storage).values())
    last_sweep = max((m.updated_at for m in marks), default=None)
    pending, given_up = delivery_counts(storage)
    return PipelineStatus(
        generated_at=now,
        cameras=cameras,
        segments_found=done.num_rows + len(failed_rows),
        segments_done=done.num_rows,
        segments_failed=len(failed_rows),
        backlog=sum(backlog.values()),
        failures=failed_segments({r.id: r for r in failed_rows}),
        last_sweep=last_sweep,
        sweep_age_s=(now - last_sweep).total_seconds() if last_sweep else None,
        sweep_rows_seen=sum(m.rows_seen for m in marks),
        deliveries_pending=pending,
        deliveries_failed=given_up,
        lag_from_marks=True,
    )


def status_json(status: PipelineStatus) -> dict[str, object]:
    """The snapshot as JSON-ready values (times as ISO 8601 UTC), as ``status --json`` prints it."""

    def when(moment: dt.datetime | None) -> str | None:
        return format_utc(moment) if moment else None

    return {
        "generated_at": when(status.generated_at),
        "segments": {
            "found": status.segments_found,
            "done": status.segments_done,
            "failed": status.segments_failed,
            "backlog": status.backlog,
        },
        "max_lag_s": status.max_lag_s,
        "cameras": [
            {
                "camera_id": c.camera_id,
                "newest_footage": when(c.newest_footage),
                "newest_indexed": when(c.newest_indexed),
                "lag_s": c.lag_s,
                "backlog": c.backlog,
                "failed": c.failed,
            }
            for c in status.cameras
        ],
        "failures": [
            {
                "segment_id": f.segment_id,
                "camera_id": f.camera_id,
                "reason": f.reason,
                "updated_at": when(f.updated_at),
            }
            for f in status.failures
        ],
        "sweep": {
            "last_sweep": when(status.last_sweep),
            "age_s": status.sweep_age_s,
            "rows_seen": status.sweep_rows_seen,
        },
        "deliveries": {"pending": status.deliveries_pending, "failed": status.deliveries_failed},
        "storage": {
            "bytes": status.storage_bytes,
            "areas": [{"area": s.area, "bytes": s.bytes, "files": s.files} for s in status.storage],
        },
    }
