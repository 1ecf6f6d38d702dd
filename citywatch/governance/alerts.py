"""Alerts raised by the watchlist sweep, their deliveries to sinks, and human review.

One alert per (watchlist entry, camera, track): its id is a hash of the three, so a
re-run or a concurrent sweep can only find it already there. An alert starts ``new``;
a person confirms or dismisses it (who, when, note). A dismissed alert keeps its id,
so the same track never alerts that entry again.

A delivery is one alert to one sink (``log``, ``prefect``, ``webhook:<target name>``):
pending -> sending (claimed by one sweep) -> delivered | failed (retried with backoff
until ``alert_delivery_max_attempts``; ``next_attempt_at`` empty = given up).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from enum import StrEnum
from typing import TYPE_CHECKING

from citywatch.errors import BadInputError, NotFoundError
from citywatch.filters import compare, eq, is_in
from citywatch.schemas import AlertRow, DeliveryRow, arrow_to_rows, rows_to_arrow, utcnow
from citywatch.storage import Storage
from citywatch.tables import has_table
from citywatch.tables import open_table as keyed_table

if TYPE_CHECKING:
    import lancedb
    from lancedb.table import Table


class AlertState(StrEnum):
    NEW = "new"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


def alert_id(entry_id: str, camera_id: str, track_id: str) -> str:
    """Deterministic: the same entry, camera and track always give the same alert."""
    digest = hashlib.sha256(f"{entry_id}\x1f{camera_id}\x1f{track_id}".encode()).hexdigest()
    return f"al-{digest[:24]}"


def delivery_id(alert: str, sink: str) -> str:
    return "dl-" + hashlib.sha256(f"{alert}\x1f{sink}".encode()).hexdigest()[:24]


def new_delivery(alert: str, sink: str, now: dt.datetime) -> DeliveryRow:
    return DeliveryRow(
        id=delivery_id(alert, sink),
        alert_id=alert,
        sink=sink,
        state=DeliveryState.PENDING.value,
        attempts=0,
        last_error="",
        next_attempt_at=now,
        claim="",
        delivered_at=None,
        created_at=now,
        updated_at=now,
    )


def alerts_table(db: lancedb.DBConnection) -> Table:
    return keyed_table(db, AlertRow.TABLE, AlertRow.SCHEMA)


def deliveries_table(db: lancedb.DBConnection) -> Table:
    return keyed_table(db, DeliveryRow.TABLE, DeliveryRow.SCHEMA)


def alerts_by_id(storage: Storage, ids: Sequence[str]) -> dict[str, AlertRow]:
    if not ids or not has_table(storage.db, AlertRow.TABLE):
        return {}
    query = alerts_table(storage.db).search().where(is_in("id", sorted(set(ids))))
    return {row.id: row for row in arrow_to_rows(query.limit(None).to_arrow(), AlertRow)}


def list_alerts(
    storage: Storage,
    *,
    state: str | None = None,
    since: dt.datetime | None = None,
    entry_id: str | None = None,
    limit: int = 100,
) -> list[AlertRow]:
    """Alerts, newest first."""
    if not has_table(storage.db, AlertRow.TABLE):
        return []
    parts = []
    if state is not None:
        try:
            parts.append(eq("state", AlertState(state).value))
        except ValueError as exc:
            raise BadInputError(
                f"--state {state!r}: one of {', '.join(s.value for s in AlertState)}"
            ) from exc
    if since is not None:
        parts.append(compare("created_at", ">=", since))
    if entry_id is not None:
        parts.append(eq("watchlist_id", entry_id))
    query = alerts_table(storage.db).search()
    if parts:
        query = query.where(" AND ".join(parts))
    rows = arrow_to_rows(query.limit(None).to_arrow(), AlertRow)
    return sorted(rows, key=lambda r: (r.created_at, r.ts), reverse=True)[:limit]


def get_alert(storage: Storage, alert: str) -> AlertRow:
    found = alerts_by_id(storage, [alert])
    if alert not in found:
        raise NotFoundError(f"alert {alert!r} does not exist")
    return found[alert]


def deliveries_by_alert(storage: Storage, alert_ids: Sequence[str]) -> dict[str, list[DeliveryRow]]:
    out: dict[str, list[DeliveryRow]] = defaultdict(list)
    if not alert_ids or not has_table(storage.db, DeliveryRow.TABLE):
        return out
    query = deliveries_table(storage.db).search().where(is_in("alert_id", sorted(set(alert_ids))))
    for row in arrow_to_rows(query.limit(None).to_arrow(), DeliveryRow):
        out[row.alert_id].append(row)
    for rows in out.values():
        rows.sort(key=lambda r: r.sink)
    return out


def review(
    storage: Storage, alert: str, decision: AlertState, by: str, note: str, now: dt.datetime | None = None
) -> AlertRow:
    """Confirm or dismiss a new alert (records who, when and why).

    The write only applies while the alert is still ``new``, so two reviewers racing
    cannot both decide: the second gets an error naming the first decision.
    """
    now = now or utcnow()
    if decision not in (AlertState.CONFIRMED, AlertState.DISMISSED):
        raise BadInputError(f"review decision {decision!r}: confirmed or dismissed")
    reviewer = by.strip() if isinstance(by, str) else ""
    if not reviewer:
        raise BadInputError("the reviewing user is required (--user or CITYWATCH_USER)")
    if decision == AlertState.DISMISSED and not note.strip():
        raise BadInputError("dismissing an alert needs a --note saying why")
    row = get_alert(storage, alert)
    if row.state != AlertState.NEW:
        raise BadInputError(
            f"alert {alert} was already {row.state} by {row.reviewed_by} at "
            f"{row.reviewed_at.isoformat() if row.reviewed_at else '?'}"
        )
    updated = replace(row, state=decision.value, reviewed_by=reviewer, reviewed_at=now, note=note.strip())
    result = (
        alerts_table(storage.db)
        .merge_insert("id")
        .when_matched_update_all(where=eq("target.state", AlertState.NEW.value))
        .execute(rows_to_arrow([updated], AlertRow.SCHEMA))
    )
    if int(result.num_updated_rows) != 1:
        latest = get_alert(storage, alert)
        raise BadInputError(f"alert {alert} was already {latest.state} by {latest.reviewed_by}")
    return updated
