"""Camera registration and segment bookkeeping (which segments still need indexing)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from citywatch.cameras import parse_cameras, unlocated_camera
from citywatch.errors import NotFoundError
from citywatch.footage import Discovery, SegmentRef, discover_segments, shown
from citywatch.schemas import CameraRow, SegmentRow, arrow_to_rows, rows_to_arrow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import cameras_table, segments_table, upsert

log = logging.getLogger(__name__)


def cameras_file_url(storage: Storage, settings: Settings) -> str:
    if settings.storage.cameras_file:
        return storage.resolve(settings.storage.cameras_file)
    return storage.url("cameras.yaml")


def load_registry(storage: Storage, settings: Settings) -> list[CameraRow]:
    """Read and validate cameras.yaml; a missing file is an empty registry."""
    url = cameras_file_url(storage, settings)
    try:
        text = storage.read_bytes(url).decode("utf-8")
    except NotFoundError:
        log.warning("no camera registry at %s: every camera will be unlocated", url)
        return []
    return [cam.to_row() for cam in parse_cameras(text, url)]


def register_cameras(
    storage: Storage, settings: Settings, seen_camera_ids: set[str]
) -> tuple[dict[str, CameraRow], list[str]]:
    """Upsert the registry into ``cameras``; add unlocated rows for unknown cameras.

    Returns all cameras by id and the ids that were missing from the registry.
    """
    rows = {row.id: row for row in load_registry(storage, settings)}
    table = cameras_table(storage.db)
    known = {row.id: row for row in arrow_to_rows(table.to_arrow(), CameraRow)}
    missing = sorted(cid for cid in seen_camera_ids if cid not in rows)
    for cid in missing:
        log.warning("camera %s has footage but is not in the registry: registered as unlocated", cid)
        rows[cid] = known[cid] if cid in known and not known[cid].registered else unlocated_camera(cid)
    upsert(table, rows_to_arrow(list(rows.values()), CameraRow.SCHEMA))
    return rows, missing


def read_segments(storage: Storage) -> dict[str, SegmentRow]:
    table = segments_table(storage.db)
    return {row.id: row for row in arrow_to_rows(table.to_arrow(), SegmentRow)}


@dataclass(frozen=True, slots=True)
class Plan:
    discovery: Discovery
    pending: list[SegmentRef]
    already_done: int
    previously_failed: int


def plan_index(storage: Storage, footage_url: str, *, retry_failed: bool = False) -> Plan:
    """Segments under ``footage_url`` that are not indexed yet.

    A segment is skipped when it is ``done`` with the same size; a ``failed`` one is
    retried when its size changed (e.g. it was still being written) or on request.
    """
    discovery = discover_segments(storage.list_files(footage_url))
    discovery.misnamed.extend(
        f"{shown(link)}: a symbolic link, not followed (copy or move the footage in)"
        for link in storage.list_links(footage_url)
    )
    known = read_segments(storage)
    pending: list[SegmentRef] = []
    done = failed = 0
    for ref in discovery.segments:
        row = known.get(ref.id)
        if row is not None and row.size_bytes == ref.size_bytes:
            if row.state == "done":
                done += 1
                continue
            if row.state == "failed" and not retry_failed:
                failed += 1
                continue
        pending.append(ref)
    return Plan(discovery, pending, done, failed)
