"""Row types of the governance tables: alerts, their deliveries, and the audit log.

``AuditRow`` carries its own canonical form and hash (see
:mod:`citywatch.governance.audit_records` for the chain and its check).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import pyarrow as pa

from citywatch.errors import BadInputError
from citywatch.schemas.core import TS

SIGNATURE_FIELD = "signature"  # in journal entries only: {"key_id", "value"} over signed_bytes(hash)


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


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audited action. ``hash`` covers every other field (see module doc)."""

    seq: int
    id: str
    ts: dt.datetime
    user: str
    role: str  # the actor's roles, comma-separated ("" when the user is unknown)
    action: str  # an auth.Action value
    outcome: str  # ok | refused | failed
    case_id: str
    justification: str
    params: str  # canonical JSON of the action's parameters (never images or vectors)
    probe_sha256: str  # sha256 of a probe image, "" when none; never the image itself
    result_count: int
    detail: str  # why it was refused or failed; "" when ok
    host: str
    prev_hash: str
    hash: str

    TABLE: ClassVar[str] = "audit"
    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("seq", pa.int64(), nullable=False),
            pa.field("id", pa.string(), nullable=False),
            pa.field("ts", TS),
            pa.field("user", pa.string()),
            pa.field("role", pa.string()),
            pa.field("action", pa.string()),
            pa.field("outcome", pa.string()),
            pa.field("case_id", pa.string()),
            pa.field("justification", pa.string()),
            pa.field("params", pa.string()),
            pa.field("probe_sha256", pa.string()),
            pa.field("result_count", pa.int64()),
            pa.field("detail", pa.string()),
            pa.field("host", pa.string()),
            pa.field("prev_hash", pa.string()),
            pa.field("hash", pa.string()),
        ]
    )

    def fields_json(self) -> dict[str, object]:
        """Every field as JSON values (timestamps as ISO 8601 UTC, microseconds)."""
        out: dict[str, object] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dt.datetime):
                value = iso_utc(value)
            out[f.name] = value
        return out

    def canonical(self) -> str:
        """Canonical JSON of every field but ``hash`` (sorted keys, no spaces)."""
        body = self.fields_json()
        body.pop("hash")
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def compute_hash(self) -> str:
        return hashlib.sha256((self.prev_hash + self.canonical()).encode("utf-8")).hexdigest()

    def to_journal(self, signature: Mapping[str, str] | None = None) -> bytes:
        """The journal entry: every field, plus the writer's signature of the hash."""
        body = self.fields_json()
        if signature is not None:
            body[SIGNATURE_FIELD] = dict(signature)
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_journal(cls, data: bytes, source: str) -> AuditRow:
        try:
            body = json.loads(data.decode("utf-8"))
            body.pop(SIGNATURE_FIELD, None)
            body["ts"] = dt.datetime.fromisoformat(body["ts"])
            return cls(**body)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise BadInputError(f"audit journal entry {source} is not a valid record: {exc}") from exc


def iso_utc(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise BadInputError(f"audit time {value!r} must be timezone-aware")
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
