"""Publish the derived analyst dataset from the biometric tables (citywatch/derived.py).

Run by the index flow after each run that indexed something and by the retention
flow after its deletes, with the worker's credentials (it reads ``<root>/db`` and
writes the analyst location). Each table is rewritten whole from a projection that
never reads an embedding or a thumbnail URI; older versions of the derived tables
are then cleaned up, so a row retention deleted is gone from the analyst dataset's
history too. GPS points are read only for mobile-camera segments not published yet.

At city scale the whole rewrite becomes the cost to cut: publish per day partition
(the biometric tables are to be sharded by day anyway, docs/deploy.md).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa

from citywatch.derived import DERIVED_SCHEMAS, GPS_SCHEMA, DerivedDataset
from citywatch.errors import BadInputError, NotFoundError, TransientError
from citywatch.gps import parse_gps_csv
from citywatch.shards import SHARDED, read_index
from citywatch.storage import Storage
from citywatch.tables import has_table

if TYPE_CHECKING:
    import lancedb

log = logging.getLogger(__name__)

_COPIED = ("cameras", "segments", "faces", "plates")


@dataclass(frozen=True, slots=True)
class PublishReport:
    """What one publish wrote: rows per table, and sidecars it could not read."""

    location: str
    cameras: int
    segments: int
    faces: int
    plates: int
    gps_points: int
    bad_sidecars: list[tuple[str, str]] = field(default_factory=list)  # (uri, reason)

    def __str__(self) -> str:
        return (
            f"analyst dataset at {self.location}: {self.cameras} cameras, {self.segments} segments, "
            f"{self.faces} face rows, {self.plates} plate passes, {self.gps_points} GPS points"
            + (f", {len(self.bad_sidecars)} unreadable GPS sidecars" if self.bad_sidecars else "")
        )


def publish_analytics(storage: Storage) -> PublishReport:
    """Rewrite the derived dataset of ``storage``'s root from its tables."""
    derived = DerivedDataset(storage.settings)
    copied = {name: _projection(storage.db, name) for name in _COPIED}
    for name, data in copied.items():
        _replace(derived.db, name, data)
    gps, bad = _gps_points(storage, derived, copied["cameras"], copied["segments"])
    _replace(derived.db, "gps", gps)
    report = PublishReport(
        derived.location,
        copied["cameras"].num_rows,
        copied["segments"].num_rows,
        copied["faces"].num_rows,
        copied["plates"].num_rows,
        gps.num_rows,
        bad,
    )
    log.info("%s", report)
    return report


def is_stale(storage: Storage) -> bool:
    """True when the derived dataset lags the segments table (never published, or a publish
    failed after its run indexed): the next index run, even with nothing new, republishes."""
    if not has_table(storage.db, "segments"):
        return False
    published = DerivedDataset(storage.settings).open("segments")
    if published is None:
        return True
    return bool(published.count_rows() != storage.db.open_table("segments").count_rows())


def _projection(db: lancedb.DBConnection, name: str) -> pa.Table:
    """Table ``name`` of the root, reading only the derived dataset's columns."""
    schema = DERIVED_SCHEMAS[name]
    if name in SHARDED:  # the unsharded table and every day shard
        found = read_index(db, name, columns=schema.names)
    else:
        found = (
            db.open_table(name).search().select(schema.names).limit(None).to_arrow()
            if has_table(db, name)
            else None
        )
    return found.select(schema.names).cast(schema) if found is not None else schema.empty_table()


def _gps_points(
    storage: Storage, derived: DerivedDataset, cameras: pa.Table, segments: pa.Table
) -> tuple[pa.Table, list[tuple[str, str]]]:
    """GPS points of mobile cameras' segments: kept for published ones, read for new ones."""
    mobile = {c["id"] for c in cameras.select(["id", "kind"]).to_pylist() if c["kind"] == "mobile"}
    wanted = [
        s
        for s in segments.select(["id", "camera_id", "uri", "start"]).to_pylist()
        if s["camera_id"] in mobile
    ]
    published = derived.open("gps")
    kept = published.to_arrow().cast(GPS_SCHEMA) if published is not None else GPS_SCHEMA.empty_table()
    have = set(kept.column("segment_id").to_pylist())
    ids = {s["id"] for s in wanted}
    kept = kept.filter(pa.array([sid in ids for sid in kept.column("segment_id").to_pylist()], pa.bool_()))
    rows: list[dict[str, object]] = []
    bad: list[tuple[str, str]] = []
    for seg in wanted:
        if seg["id"] in have:
            continue
        uri = seg["uri"].rsplit(".", 1)[0] + ".gps.csv"
        try:
            track = parse_gps_csv(
                storage.read_bytes(uri).decode("utf-8", errors="replace"), uri, seg["start"]
            )
        except NotFoundError:
            continue  # a segment without a sidecar has no route (its rows carry no location either)
        except BadInputError as exc:
            bad.append((uri, str(exc)))
            continue
        rows += [
            {
                "segment_id": seg["id"],
                "camera_id": seg["camera_id"],
                "ts": dt.datetime.fromtimestamp(t, dt.UTC),
                "lat": lat,
                "lon": lon,
            }
            for t, lat, lon in zip(track.times, track.lats, track.lons, strict=True)
        ]
    return pa.concat_tables([kept, pa.Table.from_pylist(rows, schema=GPS_SCHEMA)]), bad


def _replace(db: lancedb.DBConnection, name: str, data: pa.Table, attempts: int = 6) -> None:
    """Make ``data`` the table's only version (a concurrent publish: the last one wins)."""
    delay = 0.1
    for attempt in range(1, attempts + 1):
        try:
            if has_table(db, name):
                table = db.open_table(name)
                table.add(data.cast(DERIVED_SCHEMAS[name]), mode="overwrite")
            else:
                table = db.create_table(name, data, schema=DERIVED_SCHEMAS[name], exist_ok=True)
            with warnings.catch_warnings():  # older versions go: rows deleted upstream go with them
                warnings.filterwarnings("ignore", message=r"optimize\(cleanup_older_than=0\)")
                table.optimize(cleanup_older_than=dt.timedelta(0), delete_unverified=False)
            return
        except (OSError, RuntimeError, ValueError) as exc:  # lance: commit conflicts, I/O
            if attempt == attempts:
                raise TransientError(f"could not publish analyst table {name}: {exc}") from exc
            log.warning("retrying publish of %s after %s (attempt %d)", name, exc, attempt)
            time.sleep(delay)
            delay *= 2
