"""Incremental discovery: find new segments at a cost in proportion to what is new.

A full listing (``Storage.list_files``) stats every file under the footage location
and the plan then reads the whole ``segments`` table: fine for a backfill, not for
a 5 s ingest tick over months of footage. Incremental discovery instead keeps a
per-camera mark in ``discovery_marks`` (the segment start the next listing starts
at) and, each tick:

1. lists the footage location's top level (the camera folders: one listing);
2. lists each camera folder only from its mark (local disk: one ``os.scandir``,
   names compared before any ``stat``; S3: ``ListObjectsV2`` with ``StartAfter``,
   so only the newer keys come back);
3. looks the listed segments up in ``segments`` by id (a filter on just those ids).

A camera's mark moves to its newest listed segment once every listed segment is
settled (done, or failed and not to be retried); while one is pending or two files
share its id (a conflict) the mark stays at it, so it is listed again next tick. It
never moves past the current time (a camera clock running ahead must not hide the
next segments). A file that lands with a start time older than its camera's mark
(an upload that arrives late, a copy into an old folder) is not listed by a tick:
the periodic full listing (``index.full_reconcile_every_s``, daily by default, or
the flows' ``full_reconcile`` parameter) finds it, and sets the marks afresh.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from citywatch.filters import eq, is_in
from citywatch.footage import SegmentRef, format_stamp
from citywatch.listing import FolderListing, ObjectInfo
from citywatch.schemas import DiscoveryMarkRow, arrow_to_rows, rows_to_arrow
from citywatch.storage import Storage, is_remote
from citywatch.tables import has_table, open_table, segments_table, upsert

if TYPE_CHECKING:
    from lancedb.table import Table

log = logging.getLogger(__name__)

LOCATION_ROW = ""  # camera_id of the row that records the location's last full listing
ID_CHUNK = 500  # segment ids per ``id IN (...)`` lookup
S3_LISTERS = 16  # camera folders listed at once on S3 (one request each)
COMPACT_EVERY = 200  # table versions between compactions of ``discovery_marks``
KEEP_VERSIONS = dt.timedelta(hours=1)  # older versions of ``discovery_marks`` are removed


@dataclass(frozen=True, slots=True)
class Marks:
    """A footage location's discovery marks: camera id -> stamp the listing starts at."""

    stamps: dict[str, str]
    reconciled_at: dt.datetime | None  # the last full listing that recorded marks

    def full_listing_due(self, now: dt.datetime, every_s: float) -> bool:
        if self.reconciled_at is None or every_s <= 0:
            return True
        return (now - self.reconciled_at).total_seconds() >= every_s


def _mark_id(footage_url: str, camera_id: str) -> str:
    return f"{footage_url}|{camera_id}"


def load_marks(storage: Storage, footage_url: str) -> Marks:
    """The marks of ``footage_url`` (one filtered read of a table with a row per camera)."""
    if not has_table(storage.db, DiscoveryMarkRow.TABLE):
        return Marks({}, None)
    table = open_table(storage.db, DiscoveryMarkRow.TABLE, DiscoveryMarkRow.SCHEMA)
    rows = arrow_to_rows(
        table.search().where(eq("footage", footage_url)).limit(None).to_arrow(), DiscoveryMarkRow
    )
    stamps = {r.camera_id: r.stamp for r in rows if r.camera_id != LOCATION_ROW}
    reconciled = [r.updated_at for r in rows if r.camera_id == LOCATION_ROW]
    return Marks(stamps, reconciled[0] if reconciled else None)


def save_marks(
    storage: Storage, footage_url: str, stamps: dict[str, str], now: dt.datetime, *, full: bool
) -> None:
    """Write the marks that changed (and, after a full listing, its time): one commit, or none."""
    rows = [
        DiscoveryMarkRow(_mark_id(footage_url, cam), footage_url, cam, stamp, now)
        for cam, stamp in stamps.items()
    ]
    if full:
        rows.append(DiscoveryMarkRow(_mark_id(footage_url, LOCATION_ROW), footage_url, LOCATION_ROW, "", now))
    if not rows:
        return
    table = open_table(storage.db, DiscoveryMarkRow.TABLE, DiscoveryMarkRow.SCHEMA)
    upsert(table, rows_to_arrow(rows, DiscoveryMarkRow.SCHEMA))
    if table.version % COMPACT_EVERY == 0:
        compact(table)


def compact(table: Table) -> None:
    """Fold the small fragments of many mark updates into one; drop versions over an hour old
    (a tick that moves marks is one commit: thousands a day). Best effort: a concurrent
    writer's commit wins, the next ``COMPACT_EVERY`` versions try again."""
    try:
        table.optimize(cleanup_older_than=KEEP_VERSIONS, delete_unverified=False)
    except (OSError, RuntimeError, ValueError) as exc:
        log.info("discovery marks not compacted this time: %s", exc)


def list_new(storage: Storage, footage_url: str, marks: Marks) -> FolderListing:
    """Files at the top of ``footage_url`` and in each camera folder from its mark."""
    folders, top = storage.list_top(footage_url)

    def one(folder: str) -> FolderListing:
        return storage.list_folder_from(footage_url, folder, marks.stamps.get(folder, ""))

    if is_remote(footage_url) and len(folders) > 1:
        with ThreadPoolExecutor(max_workers=min(S3_LISTERS, len(folders))) as pool:
            listings = list(pool.map(one, folders))
    else:
        listings = [one(folder) for folder in folders]
    files: list[ObjectInfo] = list(top.files)
    links: list[str] = list(top.links)
    for listing in listings:
        files.extend(listing.files)
        links.extend(listing.links)
    return FolderListing(files, sorted(links))


@dataclass(frozen=True, slots=True)
class Known:
    """What planning needs of one ``segments`` row."""

    size_bytes: int
    state: str
    uri: str


KNOWN_COLUMNS = ["id", "size_bytes", "state", "uri"]


def _known(found: pa.Table) -> dict[str, Known]:
    ids, sizes, states, uris = (found.column(name).to_pylist() for name in KNOWN_COLUMNS)
    return {i: Known(size, state, uri) for i, size, state, uri in zip(ids, sizes, states, uris, strict=True)}


def known_segments(storage: Storage, ids: Sequence[str] | None = None) -> dict[str, Known]:
    """Size and state of the ``segments`` rows of ``ids`` (filtered reads, ``ID_CHUNK`` ids
    each), or of every row (``ids`` None: the full listing's plan; four columns read)."""
    table = segments_table(storage.db)
    if ids is None:
        return _known(table.search().select(KNOWN_COLUMNS).limit(None).to_arrow())
    out: dict[str, Known] = {}
    for start in range(0, len(ids), ID_CHUNK):
        where = is_in("id", ids[start : start + ID_CHUNK])
        out.update(_known(table.search().where(where).select(KNOWN_COLUMNS).limit(None).to_arrow()))
    return out


def _stamp_of(segment_id: str) -> tuple[str, str]:
    camera_id, _, stamp = segment_id.partition("/")
    return camera_id, stamp


def next_marks(
    listed: Iterable[SegmentRef],
    unsettled: Iterable[str],
    old: Marks,
    now: dt.datetime,
) -> dict[str, str]:
    """Marks that change after a listing: per camera, the oldest unsettled segment
    (pending or conflicting) if any, else the newest listed one; never past ``now``."""
    newest: dict[str, str] = {}
    for ref in listed:
        stamp = _stamp_of(ref.id)[1]
        newest[ref.camera_id] = max(newest.get(ref.camera_id, ""), stamp)
    held: dict[str, str] = {}
    for segment_id in unsettled:
        cam, stamp = _stamp_of(segment_id)
        held[cam] = min(held.get(cam, stamp), stamp)
    cap = format_stamp(now)
    changed: dict[str, str] = {}
    for cam in newest.keys() | held.keys():
        stamp = min(held.get(cam, newest.get(cam, "")), cap)
        if stamp != old.stamps.get(cam):
            changed[cam] = stamp
    return changed
