"""Deployment ``retention`` (daily): biometric rows past retention are deleted unless held
(and the plate texts of whole expired days), footage too when ``retention_footage_days``
is set (never a segment a case holds), then the search indexes are built or refreshed
(tasks/search/indexes.py; an older store's plate texts are backfilled there)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from prefect import flow, get_run_logger

from citywatch.governance.auth import Action, governed
from citywatch.governance.watchlist import purge_history, watchlist_table
from citywatch.governance.watchlist_expiry import forget_expired
from citywatch.schemas import FaceRow, PlateRow, WatchlistRow, utcnow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import has_table
from citywatch.tasks.plate_texts import purge_plate_texts
from citywatch.tasks.publish import publish_analytics
from citywatch.tasks.retention import (
    FootageCounts,
    RetentionCounts,
    held_segments,
    held_tracks,
    purge_footage,
    purge_index,
)
from citywatch.tasks.search.indexes import IndexReport, ensure_search_indexes


@dataclass(frozen=True)
class RetentionSummary:
    faces: RetentionCounts
    plates: RetentionCounts
    indexes: IndexReport
    footage: FootageCounts | None = None
    plate_texts: int = 0  # plate_texts rows of whole expired days deleted


def run_retention(settings: Settings, now: dt.datetime | None = None) -> RetentionSummary:
    """Plain function behind the flow; governed (admin) and audited with counts."""
    storage = Storage(settings)
    now = now or utcnow()
    params = {
        "faces_days": settings.retention.faces_days,
        "plates_days": settings.retention.plates_days,
        "footage_days": settings.retention.footage_days,
        "now": now.isoformat(),
    }
    with governed(settings, storage, Action.RETENTION_RUN, None, None, params) as run:
        held = held_tracks(storage)
        faces = purge_index(storage, FaceRow.TABLE, settings.retention.faces_days, now, held)
        plates = purge_index(storage, PlateRow.TABLE, settings.retention.plates_days, now, held)
        texts = purge_plate_texts(storage.db, settings.retention.plates_days, now)  # whole days
        run.result_count = faces.deleted_rows + plates.deleted_rows
        run.detail = (
            f"faces: {faces.deleted_rows} deleted, {faces.held_rows} held, "
            f"{faces.deleted_thumbnails} thumbnails; plates: {plates.deleted_rows} "
            f"deleted, {plates.held_rows} held, {plates.deleted_thumbnails} thumbnails; "
            f"whole day shards dropped: {faces.shards_dropped + plates.shards_dropped}; "
            f"plate texts of expired days: {texts} deleted"
        )
        footage = None
        if settings.retention.footage_days is not None:
            footage = purge_footage(storage, settings.retention.footage_days, now, held_segments(storage))
            run.detail += f"; footage: {footage.deleted_files} files deleted, {footage.held_files} held"
        if has_table(storage.db, WatchlistRow.TABLE):  # removals whose purge did not finish
            purge_history(watchlist_table(storage.db))
        forgotten = forget_expired(storage, now)  # expired entries keep no template
        if forgotten:
            run.detail += (
                f"; watchlist: templates of {len(forgotten)} expired entries purged ({', '.join(forgotten)})"
            )
        # the daily maintenance also keeps the search indexes current
        indexes = ensure_search_indexes(storage, settings)
        run.detail += f"; search indexes: {indexes}"
        # and the analyst dataset forgets what was deleted here
        run.detail += f"; {publish_analytics(storage)}"
    return RetentionSummary(faces, plates, indexes, footage, texts)


@flow(name="retention")
def retention(settings: Settings | None = None) -> RetentionSummary:
    settings = settings or Settings()
    summary = run_retention(settings)
    get_run_logger().info(
        "retention: faces %s; plates %s; search indexes: %s", summary.faces, summary.plates, summary.indexes
    )
    return summary
