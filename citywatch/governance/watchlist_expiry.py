"""Expired watchlist entries forget their template: the daily retention run's step.

An entry stops matching at ``expires_at`` (``active_entries``); from then on nothing
needs its template, so keeping the embeddings (a person's biometric template), the plate
and the face crops would only keep biometric data longer than the approval covered.
``forget_expired`` clears them as ``remove`` does (the row, its history of approval and
its alerts stay; the template is purged from the table's history too) and deletes the
crops. Renewing an expired entry means enrolling it again, with a new approval.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from citywatch.governance.enrolment_crops import delete_crops
from citywatch.governance.watchlist import list_entries, purge_history, watchlist_table
from citywatch.schemas import WatchlistRow, rows_to_arrow
from citywatch.storage import Storage
from citywatch.tables import has_table, upsert


def still_holds_template(row: WatchlistRow) -> bool:
    return bool(row.embeddings) or bool(row.plate_query)


def forget_expired(storage: Storage, now: dt.datetime) -> list[str]:
    """Clear the template and crops of every entry past its expiry; the ids cleared."""
    if not has_table(storage.db, WatchlistRow.TABLE):
        return []
    expired = [r for r in list_entries(storage) if r.expires_at <= now and still_holds_template(r)]
    if not expired:
        return []
    table = watchlist_table(storage.db)
    cleared = [replace(r, embeddings=[], plate_query="", updated_at=now) for r in expired]
    upsert(table, rows_to_arrow(cleared, WatchlistRow.SCHEMA))
    for row in expired:
        delete_crops(storage, row)
    purge_history(table)
    return [r.id for r in expired]
