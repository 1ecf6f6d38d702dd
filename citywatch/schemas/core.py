"""Row types of the index, watchlist and retention tables, with their Arrow schemas."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")
BBOX = pa.list_(pa.float32(), 4)
POLYGON = pa.list_(pa.list_(pa.float32(), 2))
NO_TEMPLATE = np.empty(0, dtype=np.float32)

SegmentState = Literal["done", "failed"]
CameraKind = Literal["fixed", "mobile"]


@dataclass(frozen=True, slots=True)
class CameraRow:
    id: str
    name: str
    district: str
    lat: float | None
    lon: float | None
    kind: str
    height_m: float | None
    frame_w: int | None
    frame_h: int | None
    privacy_masks: list[list[list[float]]]
    overlay_regions: list[list[int]]
    registered: bool  # False: found in footage but missing from cameras.yaml

    TABLE: ClassVar[str] = "cameras"
    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("name", pa.string()),
            pa.field("district", pa.string()),
            pa.field("lat", pa.float64()),
            pa.field("lon", pa.float64()),
            pa.field("kind", pa.string()),
            pa.field("height_m", pa.float64()),
            pa.field("frame_w", pa.int32()),
            pa.field("frame_h", pa.int32()),
            pa.field("privacy_masks", pa.list_(POLYGON)),
            pa.field("overlay_regions", pa.list_(pa.list_(pa.int32(), 4))),
            pa.field("registered", pa.bool_()),
        ]
    )


@dataclass(frozen=True, slots=True)
class SegmentRow:
    id: str  # "<camera_id>/<YYYYMMDDTHHMMSSZ>"
    camera_id: str
    uri: str
    start: dt.datetime
    end: dt.datetime | None
    size_bytes: int
    sha256: str
    state: str  # SegmentState
    error: str
    model: str
    frames_decoded: int
    frames_analysed: int
    faces: int
    updated_at: dt.datetime
    plates_rejected_text: int = 0  # text lines the plate gate kept out (signs, badges, ...)

    TABLE: ClassVar[str] = "segments"
    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("camera_id", pa.string()),
            pa.field("uri", pa.string()),
            pa.field("start", TS),
            pa.field("end", TS),
            pa.field("size_bytes", pa.int64()),
            pa.field("sha256", pa.string()),
            pa.field("state", pa.string()),
            pa.field("error", pa.string()),
            pa.field("model", pa.string()),
            pa.field("frames_decoded", pa.int32()),
            pa.field("frames_analysed", pa.int32()),
            pa.field("faces", pa.int32()),
            pa.field("updated_at", TS),
            pa.field("plates_rejected_text", pa.int32()),
        ]
    )


@dataclass(frozen=True, slots=True)
class FaceRow:
    id: str
    segment_id: str
    camera_id: str
    ts: dt.datetime
    bbox: tuple[float, float, float, float]
    det_score: float
    quality: float
    embedding: np.ndarray
    track_id: str
    track_start: dt.datetime
    track_end: dt.datetime
    thumb_uri: str
    lat: float | None
    lon: float | None
    model: str
    # The track's template (quality-weighted mean of its embedded faces, renormalised);
    # empty = this face alone (a one-face track). Every row of a track carries it.
    template: np.ndarray = dataclasses.field(default_factory=lambda: NO_TEMPLATE)
    # Face size: the smaller side of ``bbox`` in frame pixels (nan = from bbox).
    face_px: float = float("nan")

    TABLE: ClassVar[str] = "faces"

    def __post_init__(self) -> None:
        if not self.template.size:
            object.__setattr__(self, "template", self.embedding)
        if self.face_px != self.face_px:  # nan
            x1, y1, x2, y2 = self.bbox
            object.__setattr__(self, "face_px", float(min(x2 - x1, y2 - y1)))

    @staticmethod
    def schema(dim: int) -> pa.Schema:
        return pa.schema(
            [
                pa.field("id", pa.string(), nullable=False),
                pa.field("segment_id", pa.string()),
                pa.field("camera_id", pa.string()),
                pa.field("ts", TS),
                pa.field("bbox", BBOX),
                pa.field("det_score", pa.float32()),
                pa.field("quality", pa.float32()),
                pa.field("embedding", pa.list_(pa.float32(), dim)),
                pa.field("track_id", pa.string()),
                pa.field("track_start", TS),
                pa.field("track_end", TS),
                pa.field("thumb_uri", pa.string()),
                pa.field("lat", pa.float64()),
                pa.field("lon", pa.float64()),
                pa.field("model", pa.string()),
                pa.field("template", pa.list_(pa.float32(), dim)),
                pa.field("face_px", pa.float32()),
            ]
        )


@dataclass(frozen=True, slots=True)
class PlateRow:
    """One pass of a plate in front of a camera (a track), with the voted text."""

    id: str
    segment_id: str
    camera_id: str
    ts: dt.datetime  # best read
    first_ts: dt.datetime
    last_ts: dt.datetime
    text: str  # normalised, voted
    confidence: float
    char_confidences: list[float]
    reads: int
    low_confidence: bool  # read once or below the confidence bar: kept but flagged
    bbox: tuple[float, float, float, float]
    track_id: str
    thumb_uri: str
    lat: float | None
    lon: float | None
    model: str
    gate_score: float = 1.0  # the plate acceptance rule's score (citywatch/plate_gate.py)

    TABLE: ClassVar[str] = "plates"
    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("segment_id", pa.string()),
            pa.field("camera_id", pa.string()),
            pa.field("ts", TS),
            pa.field("first_ts", TS),
            pa.field("last_ts", TS),
            pa.field("text", pa.string()),
            pa.field("confidence", pa.float32()),
            pa.field("char_confidences", pa.list_(pa.float32())),
            pa.field("reads", pa.int32()),
            pa.field("low_confidence", pa.bool_()),
            pa.field("bbox", BBOX),
            pa.field("track_id", pa.string()),
            pa.field("thumb_uri", pa.string()),
            pa.field("lat", pa.float64()),
            pa.field("lon", pa.float64()),
            pa.field("model", pa.string()),
            pa.field("gate_score", pa.float32()),
        ]
    )


# --- watchlist, sweep and retention ---------------------------------------------------


class Reason(StrEnum):
    """Why an entry is on the watchlist (the named purposes real-time matching allows)."""

    SUSPECT = "suspect"  # serious crime, named in a case
    MISSING = "missing"
    VULNERABLE = "vulnerable"  # e.g. a person at risk who may need help
    THREAT = "threat"  # imminent threat to life or of a terror attack
    STOLEN_VEHICLE = "stolen_vehicle"


class EntryKind(StrEnum):
    FACE = "face"
    PLATE = "plate"


class EntryStatus(StrEnum):
    PENDING = "pending"  # waiting for a second person's approval
    ACTIVE = "active"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class WatchlistRow:
    """One watchlist entry (face or plate)."""

    id: str
    kind: str  # EntryKind
    label: str
    reason: str  # Reason
    case_id: str
    justification: str
    requested_by: str
    created_at: dt.datetime
    expires_at: dt.datetime
    status: str  # EntryStatus
    approved_by: str  # "" until approved
    approved_at: dt.datetime | None
    threshold: float  # faces: L2 distance; plates: confusion-aware distance
    model: str  # face model the embeddings come from ("" for plates)
    embeddings: list[list[float]]  # one per enrolment photo (cleared on removal)
    photo_sha256: list[str]
    plate_query: str  # normalised plate or pattern ("" for faces)
    removed_by: str
    removed_at: dt.datetime | None
    removal_note: str
    updated_at: dt.datetime

    TABLE: ClassVar[str] = "watchlist"
    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("kind", pa.string()),
            pa.field("label", pa.string()),
            pa.field("reason", pa.string()),
            pa.field("case_id", pa.string()),
            pa.field("justification", pa.string()),
            pa.field("requested_by", pa.string()),
            pa.field("created_at", TS),
            pa.field("expires_at", TS),
            pa.field("status", pa.string()),
            pa.field("approved_by", pa.string()),
            pa.field("approved_at", TS),
            pa.field("threshold", pa.float64()),
            pa.field("model", pa.string()),
            pa.field("embeddings", pa.list_(pa.list_(pa.float32()))),
            pa.field("photo_sha256", pa.list_(pa.string())),
            pa.field("plate_query", pa.string()),
            pa.field("removed_by", pa.string()),
            pa.field("removed_at", TS),
            pa.field("removal_note", pa.string()),
            pa.field("updated_at", TS),
        ]
    )

    def is_active(self, now: dt.datetime) -> bool:
        """Approved, not removed and not expired at ``now``: the only entries that match."""
        return self.status == EntryStatus.ACTIVE and bool(self.approved_by) and now < self.expires_at

    def state(self, now: dt.datetime) -> str:
        """pending | active | expired | removed, as shown to users."""
        if self.status == EntryStatus.REMOVED:
            return "removed"
        if now >= self.expires_at:
            return "expired"
        return self.status


@dataclass(frozen=True, slots=True)
class SweepStateRow:
    """How far the sweep has read one source table (faces, plates)."""

    id: str  # source table name
    after_fragment: int  # rows in fragments with a larger id are new; -1: nothing read
    table_version: int  # the source version last read (for operators)
    rows_seen: int  # rows read so far (cumulative)
    updated_at: dt.datetime

    TABLE: ClassVar[str] = "sweep_state"
    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("after_fragment", pa.int64()),
            pa.field("table_version", pa.int64()),
            pa.field("rows_seen", pa.int64()),
            pa.field("updated_at", TS),
        ]
    )


@dataclass(frozen=True, slots=True)
class SegmentHoldRow:
    """A case keeps one footage segment (an export's source) past footage retention."""

    id: str  # "<case_id>|<segment_id>"
    case_id: str
    segment_id: str
    export_id: str
    created_by: str
    created_at: dt.datetime

    TABLE: ClassVar[str] = "segment_holds"
    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("case_id", pa.string()),
            pa.field("segment_id", pa.string()),
            pa.field("export_id", pa.string()),
            pa.field("created_by", pa.string()),
            pa.field("created_at", TS),
        ]
    )


@dataclass(frozen=True, slots=True)
class HoldRow:
    """A case keeps one track's rows past retention."""

    id: str  # "<case_id>|<track_id>"
    case_id: str
    track_id: str
    created_by: str
    created_at: dt.datetime
    note: str

    TABLE: ClassVar[str] = "holds"
    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("case_id", pa.string()),
            pa.field("track_id", pa.string()),
            pa.field("created_by", pa.string()),
            pa.field("created_at", TS),
            pa.field("note", pa.string()),
        ]
    )
