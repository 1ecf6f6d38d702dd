"""Index one footage segment: decode -> gate -> faces + plates -> rows. Plain function + task shim."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prefect import task
from prefect.cache_policies import NO_CACHE

from citywatch.errors import BadInputError, TransientError
from citywatch.filters import eq
from citywatch.footage import SegmentRef, format_stamp
from citywatch.models.loaders import face_model_for, plate_reader_for
from citywatch.schemas import CameraRow, FaceRow, PlateRow, SegmentRow, rows_to_arrow, utcnow
from citywatch.settings import Settings
from citywatch.shards import days_between, replace_segment_rows
from citywatch.storage import STORAGE_IO_ERRORS, Storage
from citywatch.tables import segments_table, upsert
from citywatch.tasks.index.decode import DecodeStats, MotionGate, sample_frames
from citywatch.tasks.index.faces import EmbeddedFace, SegmentFaces, apply_privacy_masks
from citywatch.tasks.index.leases import Heartbeat, Lease, claim, release
from citywatch.tasks.index.locate import Locator, segment_locator
from citywatch.tasks.index.plates import PlatePass, SegmentPlates
from citywatch.tasks.index.stages import StageClock, StageCpu, peak_rss_mb
from citywatch.tasks.plate_texts import write_plate_texts

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SegmentOutcome:
    """What indexing one segment did: returned to the flow (small, picklable)."""

    segment_id: str
    uri: str
    state: str  # done | failed | skipped (another run holds or finished it)
    error: str  # the failure reason, or a warning for a done segment (e.g. no GPS)
    faces: int
    plates: int
    frames_decoded: int
    frames_analysed: int
    footage_s: float
    wall_s: float
    stages: StageCpu = field(default_factory=StageCpu)  # CPU seconds per stage
    peak_rss_mb: float = 0.0  # the worker process's peak memory after this segment


def file_sha256(storage: Storage, uri: str) -> str:
    fs, path = storage.fs(uri)
    digest = hashlib.sha256()
    try:
        with fs.open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except FileNotFoundError as exc:
        raise BadInputError(f"segment {uri} does not exist") from exc
    except STORAGE_IO_ERRORS as exc:
        raise TransientError(f"could not read segment {uri}: {exc}") from exc
    return digest.hexdigest()


def _face_rows(
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


def _plate_rows(
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


def _segment_row(
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


def _already_done(storage: Storage, ref: SegmentRef) -> bool:
    try:
        rows = (
            segments_table(storage.db)
            .search()
            .where(eq("id", ref.id))
            .select(["state", "size_bytes"])
            .limit(1)
            .to_list()
        )
    except (OSError, RuntimeError) as exc:
        raise TransientError(f"could not read the state of segment {ref.id}: {exc}") from exc
    return bool(rows) and rows[0]["state"] == "done" and rows[0]["size_bytes"] == ref.size_bytes


def index_segment(ref: SegmentRef, camera: CameraRow, settings: Settings, run_token: str) -> SegmentOutcome:
    """Index one segment under a lease, so concurrent runs never index it twice."""
    storage = Storage(settings)
    lease = claim(storage, ref.id, run_token, settings.index.lease_s)
    if lease is None:
        return SegmentOutcome(
            ref.id, ref.uri, "skipped", "another index run holds this segment", 0, 0, 0, 0, 0.0, 0.0
        )
    heartbeat = Heartbeat(storage, lease, settings.index.lease_s, settings.index.lease_heartbeat_s)
    try:
        with heartbeat:  # renewed while this runs: a long segment never loses its lease
            if _already_done(storage, ref):  # finished by another run since we planned
                outcome = SegmentOutcome(
                    ref.id, ref.uri, "skipped", "already indexed by another run", 0, 0, 0, 0, 0.0, 0.0
                )
            else:
                outcome = _index_claimed(ref, camera, settings, storage)
    except BaseException:
        _release_quietly(storage, heartbeat.lease, settings)
        raise
    # the rows are written: a lease that cannot be released now (storage hiccup) must
    # not fail the task, or its retry would count the segment as someone else's
    _release_quietly(storage, heartbeat.lease, settings)
    return outcome


def _release_quietly(storage: Storage, lease: Lease, settings: Settings) -> None:
    try:
        release(storage, lease)
    except TransientError as exc:
        log.warning(
            "segment %s: lease not released (%s); it expires within %.0f s",
            lease.segment_id,
            exc,
            settings.index.lease_s,
        )


def _index_claimed(
    ref: SegmentRef, camera: CameraRow, settings: Settings, storage: Storage
) -> SegmentOutcome:
    """Index one segment end to end. Bad input is recorded as a failed segment."""
    started = time.perf_counter()
    clock = StageClock()
    stats = DecodeStats()
    model = face_model_for(settings)
    reader = plate_reader_for(settings.plates) if settings.plates.enabled else None
    reader_cpu = (reader.cpu_detect_s, reader.cpu_read_s) if reader else (0.0, 0.0)
    model_name = model.name + (f"+{reader.name}" if reader else "")
    sha = ""
    try:
        if ref.size_bytes == 0:
            raise BadInputError(f"segment {ref.uri} is empty (0 bytes)")
        sha = file_sha256(storage, ref.uri)
        locator = segment_locator(storage, ref, camera)
        faces = SegmentFaces(model, settings.faces, settings.tracking, camera.privacy_masks)
        plates = (
            SegmentPlates(reader, settings.plates, settings.tracking, camera.overlay_regions)
            if reader
            else None
        )
        gate = MotionGate(
            settings.decode.motion_pixel_delta,
            settings.decode.motion_min_fraction,
            ignore=camera.overlay_regions,
        )
        clock.lap("other")
        for frame in sample_frames(
            storage,
            ref.uri,
            sample_fps=settings.decode.sample_fps,
            gate=gate,
            stats=stats,
            skip_unsampled=settings.decode.skip_unsampled,
        ):
            clock.lap("decode")  # the gate's share is moved out below
            if not frame.moving:
                continue
            masked = apply_privacy_masks(frame.image, camera.privacy_masks)
            faces.add_frame(frame.offset_s, masked)
            clock.lap("face_detect")
            if plates is not None:
                plates.add_frame(frame.offset_s, masked, gate.regions, gate.mask)
                clock.lap("plate_other")  # the reader's detection and reading are moved out below
        clock.lap("decode")
        embedded = faces.embed_best()
        clock.lap("embed")
        passes = plates.passes() if plates is not None else []
        clock.lap("plate_other")
        clock.charge("decode", "gate", gate.cpu_s)
        if reader is not None:
            clock.charge("plate_other", "plate_detect", reader.cpu_detect_s - reader_cpu[0])
            clock.charge("plate_other", "plate_read", reader.cpu_read_s - reader_cpu[1])
    except BadInputError as exc:
        log.warning("segment %s failed: %s", ref.uri, exc)
        row = _segment_row(
            ref, state="failed", error=str(exc), sha=sha, model=model_name, stats=stats, faces=0
        )
        upsert(segments_table(storage.db), rows_to_arrow([row], SegmentRow.SCHEMA))
        return SegmentOutcome(
            ref.id,
            ref.uri,
            "failed",
            str(exc),
            0,
            0,
            stats.frames_decoded,
            stats.frames_moving,
            stats.duration_s,
            time.perf_counter() - started,
        )
    clock.lap("other")
    face_rows = _face_rows(ref, locator, embedded, storage, model.name)
    sharded = settings.storage.shard_by_day
    days = days_between(ref.start, ref.start + dt.timedelta(seconds=stats.duration_s))
    face_schema = FaceRow.schema(model.embedder.dim)
    replace_segment_rows(
        storage.db,
        FaceRow.TABLE,
        face_schema,
        ref.id,
        rows_to_arrow(face_rows, face_schema),
        sharded=sharded,
        days=days,
    )
    plate_rows = _plate_rows(ref, locator, passes, storage, reader.name) if reader else []
    if reader is not None:
        plates_data = rows_to_arrow(plate_rows, PlateRow.SCHEMA)
        write_plate_texts(storage.db, plates_data)  # first: a pass is never searchable-missing its text
        replace_segment_rows(
            storage.db, PlateRow.TABLE, PlateRow.SCHEMA, ref.id, plates_data, sharded=sharded, days=days
        )
    if locator.warning:
        log.warning("segment %s: %s", ref.uri, locator.warning)
    row = _segment_row(
        ref,
        state="done",
        error=locator.warning,
        sha=sha,
        model=model_name,
        stats=stats,
        faces=len(face_rows),
        plates_rejected_text=plates.rejected_text if plates is not None else 0,
    )
    upsert(segments_table(storage.db), rows_to_arrow([row], SegmentRow.SCHEMA))
    return SegmentOutcome(
        ref.id,
        ref.uri,
        "done",
        locator.warning,
        len(face_rows),
        len(plate_rows),
        stats.frames_decoded,
        stats.frames_moving,
        stats.duration_s,
        time.perf_counter() - started,
        _lapped(clock, "write"),
        peak_rss_mb(),
    )


def _lapped(clock: StageClock, stage: str) -> StageCpu:
    clock.lap(stage)
    return clock.cpu


index_segment_task = task(
    name="index-segment",
    retries=2,
    retry_delay_seconds=[2, 10],
    cache_policy=NO_CACHE,
    task_run_name="index {ref.id}",
)(index_segment)
