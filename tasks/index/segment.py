"""Index footage segments: decode -> gate -> faces + plates -> rows (one commit per table
for a batch of a camera's segments). Plain functions + task shim."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from citywatch.errors import BadInputError, TransientError
from citywatch.filters import eq
from citywatch.footage import SegmentRef
from citywatch.models.loaders import face_model_for, plate_reader_for
from citywatch.schemas import CameraRow, FaceRow, PlateRow, SegmentRow, rows_to_arrow
from citywatch.settings import Settings
from citywatch.shards import days_between, replace_segment_rows
from citywatch.storage import STORAGE_IO_ERRORS, Storage
from citywatch.tables import segments_table, upsert
from citywatch.tasks.index.decode import DecodeStats, MotionGate, sample_frames
from citywatch.tasks.index.faces import SegmentFaces, apply_privacy_masks
from citywatch.tasks.index.leases import Heartbeat, Lease, claim, release
from citywatch.tasks.index.locate import segment_locator
from citywatch.tasks.index.plate_frames import PlateFrames
from citywatch.tasks.index.plates import SegmentPlates
from citywatch.tasks.index.rows import face_rows, plate_rows, segment_row
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


@dataclass
class Analysed:
    """One segment indexed but not yet committed (see :func:`commit_segments`)."""

    ref: SegmentRef
    segment: SegmentRow  # done or failed
    faces: pa.Table | None  # None: failed (its old rows, if any, are left alone)
    plates: pa.Table | None  # None: failed, or plates off
    plate_count: int
    stats: DecodeStats
    clock: StageClock
    started: float  # perf_counter at the start

    def outcome(self, write_cpu_s: float, write_wall_s: float) -> SegmentOutcome:
        self.clock.lap("other")
        self.clock.cpu.write += write_cpu_s
        stats, row = self.stats, self.segment
        return SegmentOutcome(
            self.ref.id,
            self.ref.uri,
            row.state,
            row.error,
            row.faces,
            self.plate_count,
            stats.frames_decoded,
            stats.frames_moving,
            stats.duration_s,
            time.perf_counter() - self.started + write_wall_s,
            self.clock.cpu if row.state == "done" else StageCpu(),
            peak_rss_mb() if row.state == "done" else 0.0,
        )


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


def analyse_segment(ref: SegmentRef, camera: CameraRow, settings: Settings, storage: Storage) -> Analysed:
    """Decode one segment and find its faces and plates (thumbnails written, rows not yet):
    bad input makes it a failed segment, recorded at commit."""
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
        plate_frames = PlateFrames(settings.plates.first_frame_waits)
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
                plate_frames.still()
                continue
            masked = apply_privacy_masks(frame.image, camera.privacy_masks)
            faces.add_frame(frame.offset_s, masked)
            clock.lap("face_detect")
            if plates is not None:
                for ready in plate_frames.moving(frame.offset_s, masked, gate.regions, gate.mask):
                    plates.add_frame(ready.offset_s, ready.image, ready.regions, ready.motion)
                clock.lap("plate_other")  # the reader's detection and reading are moved out below
        if plates is not None:
            for ready in plate_frames.end():
                plates.add_frame(ready.offset_s, ready.image, ready.regions, ready.motion)
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
        row = segment_row(
            ref, state="failed", error=str(exc), sha=sha, model=model_name, stats=stats, faces=0
        )
        return Analysed(ref, row, None, None, 0, stats, clock, started)
    clock.lap("other")
    faces_found = face_rows(ref, locator, embedded, storage, model.name)
    face_schema = FaceRow.schema(model.embedder.dim)
    passes_found = plate_rows(ref, locator, passes, storage, reader.name) if reader else []
    if locator.warning:
        log.warning("segment %s: %s", ref.uri, locator.warning)
    row = segment_row(
        ref,
        state="done",
        error=locator.warning,
        sha=sha,
        model=model_name,
        stats=stats,
        faces=len(faces_found),
        plates_rejected_text=plates.rejected_text if plates is not None else 0,
    )
    return Analysed(
        ref,
        row,
        rows_to_arrow(faces_found, face_schema),
        rows_to_arrow(passes_found, PlateRow.SCHEMA) if reader is not None else None,
        len(passes_found),
        stats,
        clock,
        started,
    )


def commit_segments(storage: Storage, settings: Settings, analysed: Sequence[Analysed]) -> None:
    """Write the rows of ``analysed`` segments: one commit per table for all of them.

    Each done segment's rows replace its old ones as a whole (every day it spans, with
    day shards); plate texts go first (a pass is never searchable without its text); the
    ``segments`` rows go last, so a segment is "done" only once its rows are in. A failed
    segment writes only its ``segments`` row.
    """
    done = [a for a in analysed if a.faces is not None]
    if done:
        ids = [a.ref.id for a in done]
        sharded = settings.storage.shard_by_day
        days = sorted({day for a in done for day in days_between(a.ref.start, a.segment.end)})
        faces = pa.concat_tables([a.faces for a in done if a.faces is not None])
        replace_segment_rows(storage.db, FaceRow.TABLE, faces.schema, ids, faces, sharded=sharded, days=days)
        plate_parts = [a.plates for a in done if a.plates is not None]
        if plate_parts:
            plates = pa.concat_tables(plate_parts)
            write_plate_texts(storage.db, plates)
            replace_segment_rows(
                storage.db, PlateRow.TABLE, PlateRow.SCHEMA, ids, plates, sharded=sharded, days=days
            )
    if analysed:
        rows = [a.segment for a in analysed]
        upsert(segments_table(storage.db), rows_to_arrow(rows, SegmentRow.SCHEMA))


def index_segments(
    refs: Sequence[SegmentRef], camera: CameraRow, settings: Settings, run_token: str
) -> list[SegmentOutcome]:
    """Index consecutive segments of one camera, each under its own lease (concurrent runs
    never index one twice), and write their rows in one commit per table
    (``index.segments_per_task``; one segment: one commit per table per segment), or
    every ``index.commit_after_s`` seconds if that comes first."""
    storage = Storage(settings)
    outcomes: dict[str, SegmentOutcome] = {}
    heartbeats: list[Heartbeat] = []
    try:
        for ref in refs:
            lease = claim(storage, ref.id, run_token, settings.index.lease_s)
            if lease is None:
                outcomes[ref.id] = _skipped(ref, "another index run holds this segment")
            else:
                heartbeats.append(
                    Heartbeat(storage, lease, settings.index.lease_s, settings.index.lease_heartbeat_s)
                )
        with ExitStack() as renewing:  # renewed while this runs: a long batch never loses its leases
            for heartbeat in heartbeats:
                renewing.enter_context(heartbeat)
            claimed = {heartbeat.lease.segment_id for heartbeat in heartbeats}
            analysed: list[Analysed] = []
            bound = settings.index.commit_after_s
            last_commit = time.monotonic()
            for ref in refs:
                if ref.id not in claimed:
                    continue
                if _already_done(storage, ref):  # finished by another run since we planned
                    outcomes[ref.id] = _skipped(ref, "already indexed by another run")
                    continue
                analysed.append(analyse_segment(ref, camera, settings, storage))
                if bound > 0 and time.monotonic() - last_commit >= bound:  # index.commit_after_s
                    outcomes.update(_commit(storage, settings, analysed))
                    analysed, last_commit = [], time.monotonic()
            outcomes.update(_commit(storage, settings, analysed))
    except BaseException:
        for heartbeat in heartbeats:
            _release_quietly(storage, heartbeat.lease, settings)
        raise
    # the rows are written: a lease that cannot be released now (storage hiccup) must
    # not fail the task, or its retry would count the segment as someone else's
    for heartbeat in heartbeats:
        _release_quietly(storage, heartbeat.lease, settings)
    return [outcomes[ref.id] for ref in refs]


def _commit(storage: Storage, settings: Settings, analysed: list[Analysed]) -> dict[str, SegmentOutcome]:
    """Commit ``analysed`` (one commit per table) and their outcomes, the write shared out."""
    if not analysed:
        return {}
    writing = StageClock()
    wrote = time.perf_counter()
    commit_segments(storage, settings, analysed)
    writing.lap("write")
    share = (time.perf_counter() - wrote) / len(analysed)
    return {item.ref.id: item.outcome(writing.cpu.write / len(analysed), share) for item in analysed}


def index_segment(ref: SegmentRef, camera: CameraRow, settings: Settings, run_token: str) -> SegmentOutcome:
    """Index one segment under a lease (:func:`index_segments` of one)."""
    return index_segments([ref], camera, settings, run_token)[0]


def _skipped(ref: SegmentRef, why: str) -> SegmentOutcome:
    return SegmentOutcome(ref.id, ref.uri, "skipped", why, 0, 0, 0, 0, 0.0, 0.0)


def index_batch(
    refs: list[SegmentRef], camera: CameraRow, settings: Settings, run_token: str, label: str
) -> list[SegmentOutcome]:
    """Task body: :func:`index_segments` (``label`` names the task run)."""
    return index_segments(refs, camera, settings, run_token)


index_segments_task = task(
    name="index-segment",
    retries=2,
    retry_delay_seconds=[2, 10],
    cache_policy=NO_CACHE,
    task_run_name="index {label}",
)(index_batch)
