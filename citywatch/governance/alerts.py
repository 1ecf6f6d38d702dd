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
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

import pyarrow as pa

from citywatch.errors import BadInputError, NotFoundError
from citywatch.filters import compare, eq, is_in
from citywatch.schemas import TS, arrow_to_rows, rows_to_arrow, utcnow
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


@dataclass(frozen=True, slots=True)
class AlertRow:
    """A watchlist entry seen by a camera in one track (best sighting of the track)."""

    id: str
    watchlist_id: str
    kind: str  # face | plate
    label: str
    reason: str
    case_id: str
    sighting_id: str  # the faces/plates row with the best score
    segment_id: str
    camera_id: str
    track_id: str
    ts: dt.datetime  # capture time of the best sighting
    track_start: dt.datetime
    track_end: dt.datetime
    score: float  # distance to the entry (lower is closer)
    threshold: float
    thumb_uri: str
    lat: float | None
    lon: float | None
    plate_text: str  # plates: the read text; faces: ""
    model: str
    state: str  # AlertState
    reviewed_by: str
    reviewed_at: dt.datetime | None
    note: str
    created_at: dt.datetime

    TABLE: ClassVar[str] = "alerts"
    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("watchlist_id", pa.string()),
            pa.field("kind", pa.string()),
            pa.field("label", pa.string()),
            pa.field("reason", pa.string()),
            pa.field("case_id", pa.string()),
            pa.field("sighting_id", pa.string()),
            pa.field("segment_id", pa.string()),
            pa.field("camera_id", pa.string()),
            pa.field("track_id", pa.string()),
            pa.field("ts", TS),
            pa.field("track_start", TS),
            pa.field("track_end", TS),
            pa.field("score", pa.float64()),
            pa.field("threshold", pa.float64()),
            pa.field("thumb_uri", pa.string()),
            pa.field("lat", pa.float64()),
            pa.field("lon", pa.float64()),
            pa.field("plate_text", pa.string()),
            pa.field("model", pa.string()),
            pa.field("state", pa.string()),
            pa.field("reviewed_by", pa.string()),
            pa.field("reviewed_at", TS),
            pa.field("note", pa.string()),
            pa.field("created_at", TS),
        ]
    )


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One alert to one sink."""

    id: str
    alert_id: str
    sink: str
    state: str  # DeliveryState
    attempts: int
    last_error: str
    next_attempt_at: dt.datetime | None  # None: delivered or given up
    claim: str  # token of the sweep run that holds the current attempt
    delivered_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    TABLE: ClassVar[str] = "deliveries"
    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("alert_id", pa.string()),
            pa.field("sink", pa.string()),
            pa.field("state", pa.string()),
            pa.field("attempts", pa.int32()),
            pa.field("last_error", pa.string()),
            pa.field("next_attempt_at", TS),
            pa.field("claim", pa.string()),
            pa.field("delivered_at", TS),
            pa.field("created_at", TS),
            pa.field("updated_at", TS),
        ]
    )


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
