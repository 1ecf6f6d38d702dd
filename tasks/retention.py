"""Retention: delete biometric rows and their thumbnails past their period, unless held.

A hold (``holds`` table) keeps every row of one track (``track_id``) for a case, e.g.
a sighting that became evidence. Rows are deleted from LanceDB, old table versions
are cleaned up (so the bytes are really gone), and thumbnails are removed from storage.
Footage files are deleted after ``retention_footage_days`` (when set) unless a case
holds the segment: every export holds its source segments (``segment_holds``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from citywatch.errors import NotFoundError
from citywatch.filters import all_of, compare, eq, is_in, not_in
from citywatch.governance.audit_log import AuditLog
from citywatch.governance.auth import Action, GovernedRun
from citywatch.schemas import (
    FaceRow,
    HoldRow,
    PlateRow,
    SegmentHoldRow,
    SegmentRow,
    SweepStateRow,
    arrow_to_rows,
    rows_to_arrow,
    utcnow,
)
from citywatch.shards import index_tables, shard_day, utc_day
from citywatch.storage import Storage
from citywatch.tables import has_table, open_table, upsert

CLEANUP_GRACE_MIN = 10


def add_hold(storage: Storage, case_id: str, track_id: str, user: str, note: str) -> HoldRow:
    """Hold a face or plate track for a case (the track must exist)."""
    found = False
    names = index_tables(storage.db, FaceRow.TABLE) + index_tables(storage.db, PlateRow.TABLE)
    for table_name in names:
        found = found or storage.db.open_table(table_name).count_rows(eq("track_id", track_id)) > 0
    if not found:
        raise NotFoundError(f"track {track_id!r}: no face or plate rows with that track id")
    row = HoldRow(f"{case_id}|{track_id}", case_id, track_id, user, utcnow(), note)
    upsert(open_table(storage.db, HoldRow.TABLE, HoldRow.SCHEMA), rows_to_arrow([row], HoldRow.SCHEMA))
    return row


def held_tracks(storage: Storage) -> set[str]:
    if not has_table(storage.db, HoldRow.TABLE):
        return set()
    rows = arrow_to_rows(open_table(storage.db, HoldRow.TABLE, HoldRow.SCHEMA).to_arrow(), HoldRow)
    return {r.track_id for r in rows}


@dataclass(frozen=True, slots=True)
class RetentionCounts:
    table: str
    cutoff: dt.datetime
    deleted_rows: int
    held_rows: int
    deleted_thumbnails: int
    shards_dropped: int = 0  # whole expired day shards dropped (storage.shard_by_day)


def purge_index(storage: Storage, base: str, days: int, now: dt.datetime, held: set[str]) -> RetentionCounts:
    """:func:`purge_table` over ``base`` (``faces``/``plates``) and its day shards: a shard
    whose whole day is past the cutoff and holds nothing is dropped as a whole (with its
    thumbnails and its sweep mark); the rest lose their expired rows one by one."""
    cutoff = now - dt.timedelta(days=days)
    counts = [RetentionCounts(base, cutoff, 0, 0, 0)]
    for name in index_tables(storage.db, base, until=cutoff):
        day = shard_day(name)
        whole_day_expired = day is not None and day < utc_day(cutoff)
        if whole_day_expired and not _holds_any(storage, name, held):
            counts.append(_drop_shard(storage, name, cutoff))
        else:
            counts.append(purge_table(storage, name, days, now, held))
    return RetentionCounts(
        base,
        cutoff,
        sum(c.deleted_rows for c in counts),
        sum(c.held_rows for c in counts),
        sum(c.deleted_thumbnails for c in counts),
        sum(c.shards_dropped for c in counts),
    )


def _holds_any(storage: Storage, name: str, held: set[str]) -> bool:
    return bool(held) and storage.db.open_table(name).count_rows(is_in("track_id", sorted(held))) > 0


def _drop_shard(storage: Storage, name: str, cutoff: dt.datetime) -> RetentionCounts:
    rows = storage.db.open_table(name).search().select(["thumb_uri"]).limit(None).to_arrow()
    storage.db.drop_table(name)  # the rows' bytes go with the table's files
    if has_table(storage.db, SweepStateRow.TABLE):  # a shard made again later starts its own mark
        open_table(storage.db, SweepStateRow.TABLE, SweepStateRow.SCHEMA).delete(eq("id", name))
    removed = _delete_thumbnails(storage, rows.column("thumb_uri").to_pylist())
    return RetentionCounts(name, cutoff, rows.num_rows, 0, removed, 1)


def _delete_thumbnails(storage: Storage, uris: list[str | None]) -> int:
    """Delete the thumbnails that exist; how many were deleted."""
    removed = 0
    for uri in uris:
        if uri and storage.exists(uri):
            storage.delete(uri)
            removed += 1
    return removed


def purge_table(
    storage: Storage, table_name: str, days: int, now: dt.datetime, held: set[str]
) -> RetentionCounts:
    """Delete rows of ``table_name`` with ``ts`` before ``now - days`` not in ``held``."""
    cutoff = now - dt.timedelta(days=days)
    if not has_table(storage.db, table_name):
        return RetentionCounts(table_name, cutoff, 0, 0, 0)
    table = storage.db.open_table(table_name)
    old = compare("ts", "<", cutoff)
    rows = table.search().where(old).select(["id", "track_id", "thumb_uri"]).limit(None).to_list()
    doomed = [r for r in rows if r["track_id"] not in held]
    if doomed:
        table.delete(all_of(old, not_in("track_id", sorted(held))) if held else old)
        # drop old versions too, so the deleted rows' bytes are really gone; keep the
        # last few minutes for readers (index/sweep) that still hold an older version
        table.optimize(cleanup_older_than=dt.timedelta(minutes=CLEANUP_GRACE_MIN))
    removed = _delete_thumbnails(storage, [row["thumb_uri"] for row in doomed])
    return RetentionCounts(table_name, cutoff, len(doomed), len(rows) - len(doomed), removed)


# --- footage: source segments held as evidence --------------------------------------------
def hold_segments(storage: Storage, run: GovernedRun, segment_ids: list[str], export_id: str) -> None:
    """Hold an export's source segments for its case, and audit the hold."""
    now = utcnow()
    rows = [
        SegmentHoldRow(f"{run.case_id}|{seg}", run.case_id, seg, export_id, run.actor.user, now)
        for seg in sorted(set(segment_ids))
    ]
    if rows:
        table = open_table(storage.db, SegmentHoldRow.TABLE, SegmentHoldRow.SCHEMA)
        upsert(table, rows_to_arrow(rows, SegmentHoldRow.SCHEMA))
    AuditLog(storage).record(
        user=run.actor.user,
        role=run.actor.role_text,
        action=Action.CASE_HOLD.value,
        outcome="ok",
        case_id=run.case_id,
        justification=run.justification,
        params={"segments": [r.segment_id for r in rows], "export_id": export_id},
        result_count=len(rows),
        detail=f"source segments of export {export_id} held for the case",
    )


def held_segments(storage: Storage) -> set[str]:
    if not has_table(storage.db, SegmentHoldRow.TABLE):
        return set()
    table = open_table(storage.db, SegmentHoldRow.TABLE, SegmentHoldRow.SCHEMA)
    return {r.segment_id for r in arrow_to_rows(table.to_arrow(), SegmentHoldRow)}


@dataclass(frozen=True, slots=True)
class FootageCounts:
    cutoff: dt.datetime
    deleted_files: int
    held_files: int


def purge_footage(storage: Storage, days: int, now: dt.datetime, held: set[str]) -> FootageCounts:
    """Delete footage files of segments that ended before ``now - days``, unless held.

    The segments rows stay (an export planned over that time reports the footage as
    missing, never silently bridged).
    """
    cutoff = now - dt.timedelta(days=days)
    if not has_table(storage.db, SegmentRow.TABLE):
        return FootageCounts(cutoff, 0, 0)
    table = storage.db.open_table(SegmentRow.TABLE)
    rows = table.search().where(compare("start", "<", cutoff)).select(["id", "uri", "end"]).limit(None)
    deleted = held_count = 0
    for row in rows.to_list():
        if row["end"] is not None and row["end"] >= cutoff:
            continue
        if row["id"] in held:
            held_count += 1
        elif storage.exists(row["uri"]):
            storage.delete(row["uri"])
            deleted += 1
    return FootageCounts(cutoff, deleted, held_count)
