"""The analyst API behind the notebooks: indexed results as Arrow, Polars or DuckDB.

::

    from citywatch import analytics as cw
    at = cw.open_tables(Settings(storage__root="s3://city/prod", user="ana"))
    faces = at.faces(cw.Slice(district="Central", since=..., until=...))
    cw.activity(faces, at.cameras(), by=("camera", "hour"))

:func:`open_tables` reads only the **derived analyst dataset** (:mod:`citywatch.derived`:
no embeddings, no thumbnails), never the biometric tables, and never a file by a path
it is given. On one machine (``analytics_root`` unset) it also checks once that the
acting user (``settings.user``) has a role allowed ``analytics_read`` and records the
opening in the audit log; in a deployment (``analytics_root`` set) the analyst's
storage credentials reach only that dataset, which is the gate (docs/deploy.md).
Analytics reads only: it never creates or changes a table. No helper can search by
face or plate (that is an investigator's, audited, per case).

The helpers are plain functions over Polars frames (so they run on rows you make
yourself as well as on the tables): activity counts and subject timelines in
``activity``, plates in ``plates``, pipeline health in
``health``. See docs/analytics.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import polars as pl
import pyarrow as pa

from citywatch.analytics.activity import (
    activity,
    camera_sequence,
    read_sightings_json,
    sightings_frame,
    subject_timeline,
    tracks,
)
from citywatch.analytics.health import (
    PipelineHealth,
    failures_by_reason,
    index_lag,
    pipeline_health,
    segments_by_state,
    throughput,
)
from citywatch.analytics.plates import (
    co_occurrences,
    dwell_summary,
    plate_events,
    plate_frequency,
    plate_visits,
    repeat_visits,
    sighting_events,
)
from citywatch.derived import DERIVED_SCHEMAS, DerivedDataset
from citywatch.errors import BadInputError
from citywatch.filters import where_clause
from citywatch.governance.auth import Action, Actor, governed
from citywatch.settings import Settings
from citywatch.storage import Storage

if TYPE_CHECKING:
    import duckdb
    from lancedb.table import Table

__all__ = [
    "AnalyticsTables",
    "PipelineHealth",
    "Slice",
    "TableName",
    "activity",
    "camera_sequence",
    "co_occurrences",
    "dwell_summary",
    "failures_by_reason",
    "index_lag",
    "open_tables",
    "pipeline_health",
    "plate_events",
    "plate_frequency",
    "plate_visits",
    "read_sightings_json",
    "repeat_visits",
    "segments_by_state",
    "sighting_events",
    "sightings_frame",
    "subject_timeline",
    "throughput",
    "tracks",
]

TableName = Literal["cameras", "segments", "faces", "plates", "gps"]
_TABLES: tuple[TableName, ...] = ("cameras", "segments", "faces", "plates", "gps")
_SCHEMAS: Mapping[str, pa.Schema] = DERIVED_SCHEMAS
_TIME_COLUMN = {"segments": "start", "faces": "ts", "plates": "ts", "gps": "ts"}


@dataclass(frozen=True, slots=True)
class Slice:
    """Which rows to read: cameras (ids and/or a district) and a time window (inclusive).

    The time is a row's ``ts`` (faces, plates) or a segment's ``start``. Filters are
    pushed down to LanceDB, so slice before you read when the tables are large.
    """

    camera_ids: tuple[str, ...] = ()
    district: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


ALL = Slice()


class AnalyticsTables:
    """Read-only views of the derived analyst dataset (made by :func:`open_tables`).

    It holds the derived dataset's tables and nothing else: no storage root, no
    connection to the biometric database. ``actor`` is the checked user on one machine,
    None in a deployment (where the storage credentials are the check).
    """

    def __init__(self, location: str, actor: Actor | None, tables: Mapping[str, Table | None]) -> None:
        self.location = location
        self.actor = actor
        self._tables = dict(tables)

    @property
    def root(self) -> str:
        """The derived dataset's location (kept under this name for older notebooks)."""
        return self.location

    # --- raw reads ------------------------------------------------------------------
    def arrow(self, name: TableName, where: Slice = ALL) -> pa.Table:
        """The rows of table ``name`` in ``where``, as Arrow (never embeddings or thumbs)."""
        if name not in _SCHEMAS:
            raise BadInputError(f"table {name!r} is not one analytics reads (one of {', '.join(_SCHEMAS)})")
        schema = _SCHEMAS[name]
        table = self._tables.get(name)
        if table is None:
            return schema.empty_table()
        clause = None if name == "cameras" else self._where(where, _TIME_COLUMN[name])
        query = table.search().select(schema.names).limit(None)
        if clause:
            query = query.where(clause, prefilter=True)
        return query.to_arrow().select(schema.names).cast(schema)

    def cameras(self) -> pl.DataFrame:
        """Every registered camera (id, name, district, lat, lon, kind, ...)."""
        return pl.DataFrame(self.arrow("cameras"))

    def segments(self, where: Slice = ALL) -> pl.DataFrame:
        """Segments (state, error, frames, faces, updated_at = when they were indexed)."""
        return pl.DataFrame(self.arrow("segments", where))

    def faces(self, where: Slice = ALL) -> pl.DataFrame:
        """Face rows (several per track) without embedding or thumbnail."""
        return pl.DataFrame(self.arrow("faces", where))

    def plates(self, where: Slice = ALL) -> pl.DataFrame:
        """Plate passes (one row per track, voted text) without thumbnail."""
        return pl.DataFrame(self.arrow("plates", where))

    def duckdb(self, where: Slice = ALL) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB with views ``cameras``, ``segments``, ``faces``, ``plates``, ``gps``."""
        import duckdb

        con = duckdb.connect(":memory:")
        for name in _TABLES:
            con.register(name, self.arrow(name, where))
        return con

    # --- locations ------------------------------------------------------------------
    def gps_route(self, camera_id: str, where: Slice = ALL) -> pl.DataFrame:
        """A mobile camera's path from its segments' GPS sidecars (as published):
        segment_id, ts, lat, lon in time order, for the segments ``where`` selects."""
        segments = self.segments(dataclasses.replace(where, camera_ids=(camera_id,)))["id"]
        rows = pl.DataFrame(self.arrow("gps", Slice(camera_ids=(camera_id,))))
        return (
            rows.filter(pl.col("segment_id").is_in(segments.implode()))
            .select("segment_id", "ts", "lat", "lon")
            .sort("ts")
        )

    # --- filters --------------------------------------------------------------------
    def _where(self, where: Slice, time_column: str) -> str | None:
        camera_ids = self._camera_ids(where)
        return where_clause(
            camera_ids=camera_ids, since=where.since, until=where.until, time_column=time_column
        )

    def _camera_ids(self, where: Slice) -> list[str]:
        if not where.camera_ids and where.district is None:
            return []
        cameras = self.cameras()
        known = set(cameras["id"].to_list())
        for cid in where.camera_ids:
            if cid not in known:
                raise BadInputError(f"camera {cid!r}: no such camera in {self.root}")
        ids = list(where.camera_ids)
        if where.district is not None:
            in_district = cameras.filter(pl.col("district") == where.district)["id"].to_list()
            if not in_district:
                districts = ", ".join(sorted(set(cameras["district"].drop_nulls().to_list())))
                raise BadInputError(
                    f"district {where.district!r}: no camera in that district (known: {districts or 'none'})"
                )
            ids = [cid for cid in ids if cid in in_district] if ids else in_district
            if not ids:
                raise BadInputError("the camera and district filters exclude every camera")
        return ids


def open_tables(settings: Settings) -> AnalyticsTables:
    """Open the derived analyst dataset (``analytics_root``, else ``<storage_root>/analytics``).

    On one machine (``analytics_root`` unset) ``settings.user`` needs a role allowed
    ``analytics_read`` and the opening is audited (refusals too). With
    ``analytics_root`` set nothing else is opened: no users, no audit log, no biometric
    table (the analyst's credentials reach none of them). Tables not published yet read
    as empty.
    """
    derived = DerivedDataset(settings)
    if settings.storage.analytics_root:
        return AnalyticsTables(derived.location, None, _open_derived(derived))
    storage = Storage(settings)
    params = {"root": storage.root, "dataset": derived.location}
    with governed(settings, storage, Action.ANALYTICS_READ, None, None, params) as run:
        tables = _open_derived(derived)
        run.result_count = sum(t is not None for t in tables.values())
        run.detail = "opened " + ", ".join(n for n, t in tables.items() if t is not None)
    return AnalyticsTables(derived.location, run.actor, tables)


def _open_derived(derived: DerivedDataset) -> dict[str, Table | None]:
    return {name: derived.open(name) for name in _TABLES}
