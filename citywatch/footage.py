"""Footage layout: ``<footage>/<camera_id>/<UTC start YYYYMMDDTHHMMSSZ>.<ext>``."""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from dataclasses import dataclass, field

from citywatch.cameras import CAMERA_ID
from citywatch.errors import BadInputError
from citywatch.listing import ObjectInfo

_STAMP = re.compile(r"^(\d{8}T\d{6}Z)$")
SIDECAR_SUFFIXES = (".gps.csv",)
MAX_FUTURE = dt.timedelta(days=1)  # a camera clock a little ahead is tolerated, 2099 is not


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """A reference to one footage segment: what tasks receive instead of frames."""

    id: str  # "<camera_id>/<YYYYMMDDTHHMMSSZ>"
    camera_id: str
    start: dt.datetime
    uri: str
    size_bytes: int


def shown(location: str) -> str:
    """A footage location as messages show it: quoted when it holds control characters
    (a file named with a newline must not start a line of its own in a summary)."""
    return repr(location) if any(ord(ch) < 32 or ord(ch) == 127 for ch in location) else location


def format_stamp(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def parse_stamp(stamp: str) -> dt.datetime:
    if not _STAMP.fullmatch(stamp):
        raise BadInputError(f"{stamp!r} is not a UTC start time like 20261120T080000Z")
    try:  # the digits by position: strptime is ten times slower, and discovery parses every name
        return dt.datetime(
            int(stamp[0:4]),
            int(stamp[4:6]),
            int(stamp[6:8]),
            int(stamp[9:11]),
            int(stamp[11:13]),
            int(stamp[13:15]),
            tzinfo=dt.UTC,
        )
    except ValueError as exc:
        raise BadInputError(f"{stamp!r} is not a valid date/time: {exc}") from exc


def parse_segment(obj: ObjectInfo) -> SegmentRef:
    """Turn a listed file into a SegmentRef, or say what is wrong with its name."""
    parts = obj.key.split("/")
    if len(parts) != 2:
        raise BadInputError(
            f"{shown(obj.url)}: footage must be at <camera_id>/<YYYYMMDDTHHMMSSZ>.<ext>, got {obj.key!r}"
        )
    camera_id, name = parts
    if not CAMERA_ID.fullmatch(camera_id):
        raise BadInputError(f"{shown(obj.url)}: folder {camera_id!r} is not a valid camera id")
    stem, ext = posixpath.splitext(name)
    if not ext:
        raise BadInputError(f"{shown(obj.url)}: segment file has no extension")
    try:
        start = parse_stamp(stem)
    except BadInputError as exc:
        raise BadInputError(f"{shown(obj.url)}: {exc}") from exc
    return SegmentRef(
        id=f"{camera_id}/{stem}", camera_id=camera_id, start=start, uri=obj.url, size_bytes=obj.size
    )


@dataclass(frozen=True, slots=True)
class Discovery:
    segments: list[SegmentRef]
    misnamed: list[str]  # messages for files that are not segments
    conflicts: list[str] = field(default_factory=list)  # one message per segment id with 2+ files
    conflict_ids: list[str] = field(default_factory=list)  # those segment ids


def discover_segments(files: list[ObjectInfo], now: dt.datetime | None = None) -> Discovery:
    """Segments among listed files; sidecars and hidden files are skipped silently.

    Start times more than a day after ``now`` are refused (retention would never
    delete them). Two files with one camera and start time (``.mp4`` and ``.mkv``)
    would share one segment id: neither is indexed, and the pair is named.
    """
    latest = (now or dt.datetime.now(dt.UTC)) + MAX_FUTURE
    by_id: dict[str, list[SegmentRef]] = {}
    misnamed: list[str] = []
    for obj in files:
        base = posixpath.basename(obj.key)
        if base.startswith(".") or base.endswith(SIDECAR_SUFFIXES):
            continue
        try:
            ref = parse_segment(obj)
        except BadInputError as exc:
            misnamed.append(str(exc))
            continue
        if ref.start > latest:
            misnamed.append(
                f"{shown(obj.url)}: start time {ref.start.isoformat()} is more than a day in the future"
            )
            continue
        by_id.setdefault(ref.id, []).append(ref)
    segments = [refs[0] for refs in by_id.values() if len(refs) == 1]
    conflicts = [
        f"segment {seg_id} has {len(refs)} files, none indexed until one is left: "
        + ", ".join(sorted(shown(r.uri) for r in refs))
        for seg_id, refs in sorted(by_id.items())
        if len(refs) > 1
    ]
    segments.sort(key=lambda s: (s.start, s.camera_id))
    conflict_ids = sorted(seg_id for seg_id, refs in by_id.items() if len(refs) > 1)
    return Discovery(segments=segments, misnamed=misnamed, conflicts=conflicts, conflict_ids=conflict_ids)
