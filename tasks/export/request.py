"""What an export is about: a sighting, an alert, or a camera and time range (+ probe).

``resolve_request`` turns the user's request into a camera, a time range and, when
the export has a subject, what identifies the subject in the clip (the indexed
track's embeddings, or a probe photo's, plus the indexed box as a fallback).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from citywatch.cameras import check_camera_id
from citywatch.errors import BadInputError, NotFoundError
from citywatch.filters import eq
from citywatch.models.base import FaceModel
from citywatch.schemas import FaceRow, arrow_to_rows
from citywatch.settings import Settings
from citywatch.shards import read_index
from citywatch.storage import Storage
from citywatch.tables import has_table
from citywatch.tasks.search.faces import embed_probe

ALERTS_TABLE = "alerts"


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """One export as asked for (CLI, Prefect UI, notebook). Exactly one of
    ``sighting_id``, ``alert_id`` or ``camera_id`` + ``since`` + ``until``."""

    case_id: str
    justification: str
    sighting_id: str | None = None
    alert_id: str | None = None
    camera_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    probe: str | None = None  # photo (path/URL) of the subject, camera+range mode only
    probe_face: int | None = None
    pad_s: float | None = None  # default Settings.export.pad_s

    @property
    def kind(self) -> str:
        if self.alert_id is not None:
            return "alert"
        if self.sighting_id is not None:
            return "sighting"
        return "probe" if self.probe else "range"


@dataclass(frozen=True, slots=True)
class SubjectRef:
    """What identifies the subject: embeddings and/or the indexed face at a time."""

    embeddings: np.ndarray  # (k, dim) float32; (0, dim) if none
    threshold: float
    face_id: str | None = None
    track_id: str | None = None
    ts: dt.datetime | None = None
    bbox: tuple[float, float, float, float] | None = None
    probe_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class ResolvedRequest:
    request: ExportRequest
    camera_id: str
    start: dt.datetime
    end: dt.datetime
    subject: SubjectRef | None
    sighting_id: str | None  # the faces (or plates, for a plate alert) row exported around


def _check_shape(request: ExportRequest) -> None:
    modes = [request.sighting_id is not None, request.alert_id is not None, request.camera_id is not None]
    if sum(modes) != 1:
        raise BadInputError(
            "say what to export: exactly one of --alert ID, --sighting ID, or --camera ID --since T --until T"
        )
    ranged = request.since is not None or request.until is not None
    if request.camera_id is None and (ranged or request.probe):
        raise BadInputError(
            "--since/--until/--probe go with --camera; an alert or sighting "
            "sets its own time range (use --pad to widen it)"
        )
    if request.camera_id is not None:
        check_camera_id(request.camera_id)
        if request.since is None or request.until is None:
            raise BadInputError(f"--camera {request.camera_id} needs both --since and --until")
        for name, value in (("--since", request.since), ("--until", request.until)):
            if value.tzinfo is None:
                raise BadInputError(f"{name} {value.isoformat()} must carry a time zone")
    if request.pad_s is not None and not 0 <= request.pad_s <= 600:
        raise BadInputError(f"--pad {request.pad_s} s must be between 0 and 600 seconds")


def _face_row(storage: Storage, face_id: str) -> FaceRow:
    found = read_index(storage.db, FaceRow.TABLE, eq("id", face_id), limit=1)
    if found is None:
        raise NotFoundError(f"sighting {face_id!r}: no faces are indexed yet")
    rows = arrow_to_rows(found, FaceRow)
    if not rows:
        raise NotFoundError(
            f"sighting {face_id!r} does not exist (a faces row id, as shown by "
            "`citywatch search face --json`)"
        )
    return rows[0]


def _track_embeddings(storage: Storage, row: FaceRow) -> np.ndarray:
    found = read_index(storage.db, FaceRow.TABLE, eq("track_id", row.track_id), limit=1000)
    rows = arrow_to_rows(found, FaceRow) if found is not None else []
    return np.vstack([r.embedding for r in rows] or [row.embedding]).astype(np.float32)


@dataclass(frozen=True, slots=True)
class AlertRef:
    """What an export needs from an ``alerts`` row."""

    id: str
    sighting_id: str  # a faces row id (kind face) or a plates row id (kind plate)
    kind: str
    camera_id: str | None
    track_start: dt.datetime | None
    track_end: dt.datetime | None


def load_alert(storage: Storage, alert_id: str) -> AlertRef:
    """The alert's sighting (table ``alerts``: ``id``, ``sighting_id``; ``kind``,
    ``camera_id``, ``track_start``, ``track_end`` when present)."""
    if not has_table(storage.db, ALERTS_TABLE):
        raise NotFoundError(
            f"alert {alert_id!r}: no alerts table yet (the watchlist sweep "
            "creates it); export by --sighting instead"
        )
    table = storage.db.open_table(ALERTS_TABLE)
    names = set(table.schema.names)
    missing = {"id", "sighting_id"} - names
    if missing:
        raise BadInputError(f"table {ALERTS_TABLE!r} lacks columns {sorted(missing)}")
    wanted = [c for c in ("id", "sighting_id", "kind", "camera_id", "track_start", "track_end") if c in names]
    hits = table.search().where(eq("id", alert_id)).select(wanted).limit(1).to_arrow().to_pylist()
    if not hits:
        raise NotFoundError(f"alert {alert_id!r} does not exist")
    hit = hits[0]
    if not hit["sighting_id"]:
        raise BadInputError(f"alert {alert_id!r} has no sighting to export")
    return AlertRef(
        str(hit["id"]),
        str(hit["sighting_id"]),
        str(hit.get("kind") or "face"),
        hit.get("camera_id"),
        hit.get("track_start"),
        hit.get("track_end"),
    )


def _plate_alert(request: ExportRequest, alert: AlertRef, pad: dt.timedelta) -> ResolvedRequest:
    """A plate alert: the vehicle's pass, every face blurred (no face subject)."""
    if alert.camera_id is None or alert.track_start is None or alert.track_end is None:
        raise BadInputError(f"plate alert {alert.id!r} lacks camera_id/track_start/track_end")
    return ResolvedRequest(
        request, alert.camera_id, alert.track_start - pad, alert.track_end + pad, None, alert.sighting_id
    )


def resolve_request(
    storage: Storage, settings: Settings, request: ExportRequest, model: FaceModel
) -> ResolvedRequest:
    """Camera, time range and subject of ``request``; raises on a malformed request."""
    _check_shape(request)
    threshold = settings.faces.match_threshold or model.embedder.default_threshold
    pad = dt.timedelta(seconds=settings.export.pad_s if request.pad_s is None else request.pad_s)
    if request.camera_id is not None and request.since is not None and request.until is not None:
        subject = None
        if request.probe:
            probe = embed_probe(
                storage.read_bytes(storage.resolve(request.probe, "--probe")),
                request.probe,
                model,
                request.probe_face,
                max_pixels=settings.search.probe_max_pixels,
            )
            subject = SubjectRef(probe.embedding[None, :], threshold, probe_sha256=probe.sha256)
        return ResolvedRequest(request, request.camera_id, request.since, request.until, subject, None)
    face_id = str(request.sighting_id)
    if request.alert_id is not None:
        alert = load_alert(storage, request.alert_id)
        if alert.kind == "plate":
            return _plate_alert(request, alert, pad)
        face_id = alert.sighting_id
    row = _face_row(storage, face_id)
    same_model = row.model == model.name and row.embedding.shape[0] == model.embedder.dim
    embeddings = (
        _track_embeddings(storage, row) if same_model else np.zeros((0, model.embedder.dim), np.float32)
    )
    subject = SubjectRef(
        embeddings, threshold, face_id=row.id, track_id=row.track_id, ts=row.ts, bbox=row.bbox
    )
    return ResolvedRequest(
        request, row.camera_id, row.track_start - pad, row.track_end + pad, subject, row.id
    )
