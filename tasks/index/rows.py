"""The rows one indexed segment writes: faces, plate passes and its ``segments`` row."""

from __future__ import annotations

import datetime as dt

from citywatch.footage import SegmentRef, format_stamp
from citywatch.schemas import FaceRow, PlateRow, SegmentRow, utcnow
from citywatch.storage import Storage
from citywatch.tasks.index.decode import DecodeStats
from citywatch.tasks.index.faces import EmbeddedFace
from citywatch.tasks.index.locate import Locator
from citywatch.tasks.index.plates import PlatePass


def face_rows(
    ref: SegmentRef, locator: Locator, faces: list[EmbeddedFace], storage: Storage, model_name: str
) -> list[FaceRow]:
    rows: list[FaceRow] = []
    stamp = format_stamp(ref.start)
    for face in faces:
        cand = face.candidate
        offset_ms = int(round(cand.offset_s * 1000))
        thumb_key = f"thumbs/{ref.camera_id}/{stamp}/t{face.track_index:04d}_{offset_ms:07d}.jpg"
        ts = ref.start + dt.timedelta(seconds=cand.offset_s)
        lat, lon = locator.at(ts) or (None, None)
        rows.append(
            FaceRow(
                id=f"{ref.id}#t{face.track_index:04d}@{offset_ms:07d}",
                segment_id=ref.id,
                camera_id=ref.camera_id,
                ts=ts,
                bbox=_plain_box(cand.bbox),
                det_score=cand.det_score,
                quality=cand.quality,
                embedding=face.embedding,
                track_id=f"{ref.id}#t{face.track_index:04d}",
                track_start=ref.start + dt.timedelta(seconds=face.track_start_s),
                track_end=ref.start + dt.timedelta(seconds=face.track_end_s),
                thumb_uri=storage.write_bytes(thumb_key, face.thumbnail_jpeg),
                lat=lat,
                lon=lon,
                model=model_name,
                template=face.template,
            )
        )
    return rows


def plate_rows(
    ref: SegmentRef, locator: Locator, passes: list[PlatePass], storage: Storage, model_name: str
) -> list[PlateRow]:
    rows: list[PlateRow] = []
    stamp = format_stamp(ref.start)
    for p in passes:
        ts = ref.start + dt.timedelta(seconds=p.best.offset_s)
        lat, lon = locator.at(ts) or (None, None)
        track_id = f"{ref.id}#p{p.track_index:04d}"
        rows.append(
            PlateRow(
                id=track_id,
                segment_id=ref.id,
                camera_id=ref.camera_id,
                ts=ts,
                first_ts=ref.start + dt.timedelta(seconds=p.first_s),
                last_ts=ref.start + dt.timedelta(seconds=p.last_s),
                text=p.text,
                confidence=float(min(p.char_confidences, default=0.0)),
                char_confidences=[float(c) for c in p.char_confidences],
                reads=p.reads,
                low_confidence=p.low_confidence,
                bbox=_plain_box(p.best.bbox),
                track_id=track_id,
                thumb_uri=storage.write_bytes(
                    f"thumbs/{ref.camera_id}/{stamp}/p{p.track_index:04d}.jpg", p.best.crop_jpeg
                ),
                lat=lat,
                lon=lon,
                model=model_name,
                gate_score=float(p.gate_score),
            )
        )
    return rows


def segment_row(
    ref: SegmentRef,
    *,
    state: str,
    error: str,
    sha: str,
    model: str,
    stats: DecodeStats,
    faces: int,
    plates_rejected_text: int = 0,
) -> SegmentRow:
    end = ref.start + dt.timedelta(seconds=stats.duration_s) if stats.frames_decoded else None
    return SegmentRow(
        id=ref.id,
        camera_id=ref.camera_id,
        uri=ref.uri,
        start=ref.start,
        end=end,
        size_bytes=ref.size_bytes,
        sha256=sha,
        state=state,
        error=error,
        model=model,
        frames_decoded=stats.frames_decoded,
        frames_analysed=stats.frames_moving,
        faces=faces,
        updated_at=utcnow(),
        plates_rejected_text=plates_rejected_text,
    )


def _plain_box(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Python floats for a row (detectors hand numpy scalars)."""
    x1, y1, x2, y2 = box
    return float(x1), float(y1), float(x2), float(y2)
