"""Camera registration and segment bookkeeping (which segments still need indexing)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from citywatch.cameras import parse_cameras, unlocated_camera
from citywatch.errors import NotFoundError
from citywatch.footage import Discovery, SegmentRef, discover_segments, shown
from citywatch.listing import FolderListing
from citywatch.schemas import CameraRow, SegmentRow, arrow_to_rows, rows_to_arrow, utcnow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import cameras_table, segments_table, upsert
from citywatch.tasks.index.discovery import (
    Known,
    Marks,
    known_segments,
    list_new,
    load_marks,
    next_marks,
    save_marks,
)
from citywatch.tasks.index.notifications import (
    Notified,
    check_queue_setting,
    delete,
    named_conflicts,
    queue_client,
    receive,
)

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


DiscoveryMode = Literal["list-all", "auto", "incremental", "reconcile"]


@dataclass(frozen=True, slots=True)
class Plan:
    discovery: Discovery
    pending: list[SegmentRef]
    already_done: int
    previously_failed: int
    full_listing: bool = True  # False: only what is new was listed (tasks/index/discovery.py)


def plan_index(
    storage: Storage,
    footage_url: str,
    *,
    retry_failed: bool = False,
    mode: DiscoveryMode = "list-all",
    now: dt.datetime | None = None,
    segments: dict[str, SegmentRow] | None = None,
) -> Plan:
    """Segments under ``footage_url`` that are not indexed yet.

    A segment is skipped when it is ``done`` with the same size; a ``failed`` one is
    retried when its size changed (e.g. it was still being written) or on request.

    ``mode`` says how the footage is found: ``list-all`` lists everything and records
    nothing (``citywatch status``); ``reconcile`` lists everything and records the
    discovery marks; ``incremental`` lists each camera folder from its mark only;
    ``auto`` (the index flows) is incremental unless a full listing is due
    (``index.full_reconcile_every_s``), no marks exist yet, or failed segments are to
    be retried. ``segments``: the whole table when the caller has read it already.
    """
    now = now or utcnow()
    marks = load_marks(storage, footage_url) if mode != "list-all" else Marks({}, None)
    full = mode in ("list-all", "reconcile") or (
        mode == "auto"
        and (retry_failed or marks.full_listing_due(now, storage.settings.index.full_reconcile_every_s))
    )
    queue_url = storage.settings.index.notification_queue_url
    notified: Notified | None = None
    if full:
        listing = storage.list_all(footage_url)
    elif queue_url:
        check_queue_setting(storage.settings, footage_url)
        queue = queue_client(storage.settings)
        notified = receive(queue, queue_url, footage_url)
        listing = FolderListing(notified.files, [])
    else:
        listing = list_new(storage, footage_url, marks)
    discovery = discover_segments(listing.files, now=now)
    discovery.misnamed.extend(
        f"{shown(link)}: a symbolic link, not followed (copy or move the footage in)"
        for link in listing.links
    )
    known: Mapping[str, Known | SegmentRow]
    if not full:
        known = known_segments(storage, [r.id for r in discovery.segments])
        if notified is not None:
            discovery = named_conflicts(discovery, known)
    else:
        known = known_segments(storage) if segments is None else segments
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
    if mode != "list-all":
        unsettled = [ref.id for ref in pending] + discovery.conflict_ids
        changed = next_marks(discovery.segments, unsettled, marks, now)
        save_marks(storage, footage_url, changed, now, full=full)
    if notified is not None:
        delete(queue, queue_url, notified.settled({ref.uri for ref in pending}))
    return Plan(discovery, pending, done, failed, full_listing=full)
