"""Cutting an evidence clip: which segments cover a time range, their frames, encoding.

``plan_clip`` picks the indexed segments of one camera that overlap the range,
checks each file is still there and unchanged since indexing (sha256), and reports
every stretch without usable footage as a ``Gap`` (never bridged silently).
``iter_clip_frames`` yields the clip's frames across segment boundaries;
``render_clip`` redacts and encodes them to H.264 MP4 with PyAV (``encode_frames``,
which the console's player uses too), keeping real timing (a gap shows as a jump in
timestamps).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from citywatch.errors import BadInputError, NotFoundError, TransientError
from citywatch.filters import eq, where_clause
from citywatch.schemas import CameraRow, SegmentRow, arrow_to_rows
from citywatch.storage import STORAGE_IO_ERRORS, Storage
from citywatch.tables import cameras_table, segments_table
from citywatch.tasks.index.decode import open_segment
from citywatch.tasks.index.segment import file_sha256

log = logging.getLogger(__name__)

GAP_TOLERANCE_S = 1.0  # footage closer than this to the next segment counts as contiguous
LONGEST_SEGMENT = dt.timedelta(hours=6)  # how far back a segment covering the range may start
TIME_BASE = Fraction(1, 90000)


@dataclass(frozen=True, slots=True)
class ClipSource:
    """The part of one segment that goes into the clip (both ends inclusive)."""

    segment_id: str
    uri: str
    sha256: str
    size_bytes: int
    segment_start: dt.datetime
    segment_end: dt.datetime
    take_from: dt.datetime
    take_to: dt.datetime


@dataclass(frozen=True, slots=True)
class Gap:
    start: dt.datetime
    end: dt.datetime
    reason: str


@dataclass(frozen=True, slots=True)
class ClipPlan:
    camera: CameraRow
    start: dt.datetime
    end: dt.datetime
    sources: tuple[ClipSource, ...]
    gaps: tuple[Gap, ...]


@dataclass(frozen=True, slots=True)
class ClipFrame:
    index: int  # frame number in the clip
    source: int  # index into ClipPlan.sources
    ts: dt.datetime
    image: np.ndarray  # BGR uint8


def load_camera(storage: Storage, camera_id: str) -> CameraRow:
    rows = arrow_to_rows(
        cameras_table(storage.db).search().where(eq("id", camera_id)).limit(1).to_arrow(),
        CameraRow,
    )
    if not rows:
        raise NotFoundError(f"camera {camera_id!r} is not registered (see cameras.yaml / `citywatch index`)")
    return rows[0]


def _unusable(storage: Storage, row: SegmentRow) -> str:
    """Why a segment cannot go into evidence, or '' if it can."""
    if row.state != "done":
        return f"segment {row.id} was not indexed ({row.state}: {row.error or 'no reason'})"
    if not storage.exists(row.uri):
        return f"segment {row.id} is missing: {row.uri} no longer exists"
    actual = file_sha256(storage, row.uri)
    if actual != row.sha256:
        return (
            f"segment {row.id} changed since it was indexed (sha256 {actual[:12]}..., "
            f"indexed {row.sha256[:12]}...)"
        )
    return ""


def plan_clip(
    storage: Storage, camera_id: str, start: dt.datetime, end: dt.datetime, *, max_s: float
) -> ClipPlan:
    """The segments and gaps of ``camera_id`` between ``start`` and ``end``."""
    if end <= start:
        raise BadInputError(f"time range {start.isoformat()} .. {end.isoformat()} is empty")
    if (end - start).total_seconds() > max_s:
        raise BadInputError(
            f"time range of {(end - start).total_seconds():.0f} s is longer than export_max_s = {max_s:.0f} s"
        )
    camera = load_camera(storage, camera_id)
    where = where_clause(
        camera_ids=[camera_id], since=start - LONGEST_SEGMENT, until=end, time_column="start"
    )
    query = segments_table(storage.db).search()
    if where:
        query = query.where(where)
    rows = arrow_to_rows(query.limit(100_000).to_arrow(), SegmentRow)
    rows = sorted((r for r in rows if (r.end or r.start) >= start), key=lambda r: r.start)
    tolerance = dt.timedelta(seconds=GAP_TOLERANCE_S)
    sources: list[ClipSource] = []
    gaps: list[Gap] = []
    problems: list[tuple[SegmentRow, str]] = []
    cursor = start
    for row in rows:
        reason = _unusable(storage, row)
        if reason:
            problems.append((row, reason))
            continue
        seg_end = row.end or row.start
        if row.start - cursor > tolerance:
            gaps.append(Gap(cursor, row.start, _gap_reason(problems, cursor, row.start)))
        take_from = max(row.start, cursor)
        take_to = min(end, seg_end)
        if take_to >= take_from:
            sources.append(
                ClipSource(
                    row.id, row.uri, row.sha256, row.size_bytes, row.start, seg_end, take_from, take_to
                )
            )
            cursor = max(cursor, take_to + dt.timedelta(microseconds=1))
    if end - cursor > tolerance:
        gaps.append(Gap(cursor, end, _gap_reason(problems, cursor, end)))
    if not sources:
        why = "; ".join(g.reason for g in gaps) or "no footage recorded"
        raise NotFoundError(
            f"camera {camera_id} has no usable footage between "
            f"{start.isoformat()} and {end.isoformat()}: {why}"
        )
    return ClipPlan(camera, start, end, tuple(sources), tuple(gaps))


def _gap_reason(problems: list[tuple[SegmentRow, str]], start: dt.datetime, end: dt.datetime) -> str:
    inside = [why for row, why in problems if row.start < end and (row.end or row.start) > start]
    return "; ".join(inside) or "no footage recorded for this time"


def iter_clip_frames(storage: Storage, plan: ClipPlan) -> Iterator[ClipFrame]:
    """Every frame of the clip in time order, across segment boundaries."""
    index = 0
    size: tuple[int, int] | None = None
    for number, source in enumerate(plan.sources):
        with open_segment(storage, source.uri) as container:
            if not container.streams.video:
                raise BadInputError(f"segment {source.uri} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            first: float | None = None
            try:
                for frame in container.decode(stream):
                    if frame.time is None:
                        continue
                    first = float(frame.time) if first is None else first
                    ts = source.segment_start + dt.timedelta(seconds=float(frame.time) - first)
                    if ts < source.take_from:
                        continue
                    if ts > source.take_to:
                        break
                    if size is None:
                        size = (frame.width, frame.height)
                    elif size != (frame.width, frame.height):
                        raise BadInputError(
                            f"segment {source.uri} is {frame.width}x{frame.height}, the clip "
                            f"so far is {size[0]}x{size[1]}: export the ranges separately"
                        )
                    yield ClipFrame(index, number, ts, frame.to_ndarray(format="bgr24"))
                    index += 1
            except av.error.FFmpegError as exc:
                raise BadInputError(f"segment {source.uri} is corrupt: {exc}") from exc


@dataclass(frozen=True, slots=True)
class RenderedClip:
    uri: str
    sha256: str
    size_bytes: int
    frames: int
    width: int
    height: int
    first_ts: dt.datetime
    last_ts: dt.datetime
    codec: str


@dataclass(frozen=True, slots=True)
class EncodedClip:
    """What ``encode_frames`` wrote to a local MP4."""

    frames: int
    width: int
    height: int
    first_ts: dt.datetime
    last_ts: dt.datetime


def encode_frames(
    frames: Iterable[ClipFrame],
    redact: Callable[[ClipFrame], np.ndarray],
    local: Path,
    *,
    crf: int,
    preset: str,
    fps: float,
    faststart: bool = False,
) -> EncodedClip | None:
    """``redact(frame)`` for every frame, as H.264 (yuv420p) MP4 at ``local``, keeping real
    timing; None when there was no frame. ``faststart`` puts the index first (a browser
    can start playing from the first bytes it gets)."""
    options = {"movflags": "+faststart"} if faststart else {}
    out = av.open(str(local), "w", format="mp4", options=options)
    stream = None
    count, first, last = 0, None, None
    try:
        for frame in frames:
            image = redact(frame)
            if first is None:
                first = frame.ts
            if stream is None:
                stream = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
                stream.width, stream.height = image.shape[1], image.shape[0]
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(crf), "preset": preset}
                stream.codec_context.time_base = TIME_BASE
                stream.time_base = TIME_BASE
            video = av.VideoFrame.from_ndarray(image, format="bgr24")
            video.pts = round((frame.ts - first).total_seconds() / TIME_BASE)
            video.time_base = TIME_BASE
            for packet in stream.encode(video):
                out.mux(packet)
            count, last = count + 1, frame.ts
        if stream is not None:
            for packet in stream.encode():
                out.mux(packet)
    finally:
        out.close()
    if stream is None or first is None or last is None:
        return None
    return EncodedClip(count, stream.width, stream.height, first, last)


def render_clip(
    storage: Storage,
    plan: ClipPlan,
    out_key: str,
    redact: Callable[[ClipFrame], np.ndarray],
    *,
    crf: int,
    preset: str,
    fps: float,
) -> RenderedClip:
    """Encode ``redact(frame)`` for every clip frame to H.264 MP4 at ``out_key``."""
    with tempfile.TemporaryDirectory(prefix="citywatch-export-") as tmp:
        local = Path(tmp, "clip.mp4")
        encoded = encode_frames(
            iter_clip_frames(storage, plan), redact, local, crf=crf, preset=preset, fps=fps
        )
        if encoded is None:
            raise NotFoundError(
                f"no frames of camera {plan.camera.id} fall between "
                f"{plan.start.isoformat()} and {plan.end.isoformat()}"
            )
        digest = hashlib.sha256(local.read_bytes()).hexdigest()
        url = storage.url(out_key)
        fs, path = storage.fs(url)
        try:
            fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            fs.put_file(str(local), path)
        except STORAGE_IO_ERRORS as exc:
            raise TransientError(f"could not write {url}: {exc}") from exc
        return RenderedClip(
            url,
            digest,
            local.stat().st_size,
            encoded.frames,
            encoded.width,
            encoded.height,
            encoded.first_ts,
            encoded.last_ts,
            "h264",
        )
