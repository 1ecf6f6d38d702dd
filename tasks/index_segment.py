"""Index one footage segment: decode -> gate -> faces -> rows. Plain function + task shim."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE

from citywatch.errors import BadInputError
from citywatch.footage import SegmentRef, format_stamp
from citywatch.schemas import CameraRow, FaceRow, SegmentRow, rows_to_arrow, utcnow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import faces_table, segments_table, upsert
from models.faces import load_face_model
from tasks.decode import DecodeStats, MotionGate, sample_frames
from tasks.faces import EmbeddedFace, SegmentFaces, apply_privacy_masks

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SegmentOutcome:
    """What indexing one segment did: returned to the flow (small, picklable)."""

    segment_id: str
    uri: str
    state: str  # done | failed
    error: str
    faces: int
    frames_decoded: int
    frames_analysed: int
    footage_s: float
    wall_s: float


def face_model_for(settings: Settings):  # noqa: ANN201 - models.base.FaceModel
    return load_face_model(
        settings.face_backend, det_threshold=settings.face_det_threshold,
        max_side=settings.face_max_side, min_face_px=settings.face_min_px,
        insightface_dir=settings.insightface_dir,
    )


def file_sha256(storage: Storage, uri: str) -> str:
    fs, path = storage.fs(uri)
    digest = hashlib.sha256()
    with fs.open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _face_rows(ref: SegmentRef, camera: CameraRow, faces: list[EmbeddedFace],
               storage: Storage, model_name: str) -> list[FaceRow]:
    rows: list[FaceRow] = []
    stamp = format_stamp(ref.start)
    for face in faces:
        cand = face.candidate
        offset_ms = int(round(cand.offset_s * 1000))
        face_id = f"{ref.id}#t{face.track_index:04d}@{offset_ms:07d}"
        thumb_key = f"thumbs/{ref.camera_id}/{stamp}/t{face.track_index:04d}_{offset_ms:07d}.jpg"
        thumb_uri = storage.write_bytes(thumb_key, face.thumbnail_jpeg)
        rows.append(FaceRow(
            id=face_id, segment_id=ref.id, camera_id=ref.camera_id,
            ts=ref.start + dt.timedelta(seconds=cand.offset_s),
            bbox=tuple(float(v) for v in cand.bbox),  # type: ignore[arg-type]
            det_score=cand.det_score, quality=cand.quality, embedding=face.embedding,
            track_id=f"{ref.id}#t{face.track_index:04d}",
            track_start=ref.start + dt.timedelta(seconds=face.track_start_s),
            track_end=ref.start + dt.timedelta(seconds=face.track_end_s),
            thumb_uri=thumb_uri, lat=camera.lat, lon=camera.lon, model=model_name,
        ))
    return rows


def _segment_row(ref: SegmentRef, *, state: str, error: str, sha: str, model: str,
                 stats: DecodeStats, faces: int) -> SegmentRow:
    end = ref.start + dt.timedelta(seconds=stats.duration_s) if stats.frames_decoded else None
    return SegmentRow(
        id=ref.id, camera_id=ref.camera_id, uri=ref.uri, start=ref.start, end=end,
        size_bytes=ref.size_bytes, sha256=sha, state=state, error=error, model=model,
        frames_decoded=stats.frames_decoded, frames_analysed=stats.frames_moving,
        faces=faces, updated_at=utcnow(),
    )


def index_segment(ref: SegmentRef, camera: CameraRow, settings: Settings) -> SegmentOutcome:
    """Index one segment end to end. Bad input is recorded as a failed segment."""
    started = time.perf_counter()
    storage = Storage(settings)
    stats = DecodeStats()
    model = face_model_for(settings)
    sha = ""
    try:
        if ref.size_bytes == 0:
            raise BadInputError(f"segment {ref.uri} is empty (0 bytes)")
        sha = file_sha256(storage, ref.uri)
        collector = SegmentFaces(model, settings, camera.privacy_masks)
        gate = MotionGate(settings.motion_pixel_delta, settings.motion_min_fraction)
        for frame in sample_frames(storage, ref.uri, sample_fps=settings.sample_fps,
                                   gate=gate, stats=stats):
            if frame.moving:
                collector.add_frame(frame.offset_s, apply_privacy_masks(frame.image, camera.privacy_masks))
        embedded = collector.embed_best()
    except BadInputError as exc:
        log.warning("segment %s failed: %s", ref.uri, exc)
        row = _segment_row(ref, state="failed", error=str(exc), sha=sha, model=model.name,
                           stats=stats, faces=0)
        upsert(segments_table(storage.db), rows_to_arrow([row], SegmentRow.SCHEMA))
        return SegmentOutcome(ref.id, ref.uri, "failed", str(exc), 0, stats.frames_decoded,
                              stats.frames_moving, stats.duration_s, time.perf_counter() - started)
    rows = _face_rows(ref, camera, embedded, storage, model.name)
    table = faces_table(storage.db, model.embedder.dim)
    # Replace this segment's rows: a re-run (or a crash before "done") never duplicates.
    table.delete(f"segment_id = '{ref.id}'")
    upsert(table, rows_to_arrow(rows, FaceRow.schema(model.embedder.dim)))
    row = _segment_row(ref, state="done", error="", sha=sha, model=model.name, stats=stats,
                       faces=len(rows))
    upsert(segments_table(storage.db), rows_to_arrow([row], SegmentRow.SCHEMA))
    return SegmentOutcome(ref.id, ref.uri, "done", "", len(rows), stats.frames_decoded,
                          stats.frames_moving, stats.duration_s, time.perf_counter() - started)


index_segment_task = task(
    index_segment, name="index-segment", retries=2, retry_delay_seconds=[2, 10],
    cache_policy=NO_CACHE, task_run_name="index {ref.id}",
)
