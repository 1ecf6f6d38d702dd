"""The analyst API behind the notebooks: indexed results as Arrow, Polars or DuckDB.

::

    from citywatch import analytics as cw
    at = cw.open_tables(Settings(storage__root="s3://city/prod", user="ana"))
    faces = at.faces(cw.Slice(district="Central", since=..., until=...))
    cw.activity(faces, at.cameras(), by=("camera", "hour"))

:func:`open_tables` checks once that the acting user (``settings.user``) has a role
allowed ``analytics_read`` (analyst, investigator or supervisor) and records the
opening in the audit log. Analytics reads only: it never creates or changes a table.
Face rows reach analysts without their ``embedding`` and without thumbnails; no
helper can search by face or plate (that is an investigator's, audited, per case).

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
from citywatch.errors import BadInputError, NotFoundError
from citywatch.filters import where_clause
from citywatch.governance.auth import Action, Actor, governed
from citywatch.gps import parse_gps_csv
from citywatch.images import decode_image
from citywatch.schemas import CameraRow, FaceRow, PlateRow, SegmentRow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import has_table

if TYPE_CHECKING:
    import duckdb
    import numpy as np
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

TableName = Literal["cameras", "segments", "faces", "plates"]
HIDDEN_COLUMNS = frozenset({"embedding", "thumb_uri"})
"""Columns analytics never returns: face vectors, and face/plate crops."""

_SCHEMAS: Mapping[TableName, pa.Schema] = {
    "cameras": CameraRow.SCHEMA,
    "segments": SegmentRow.SCHEMA,
    "faces": FaceRow.schema(1),  # the vector's size does not matter: it is never read
    "plates": PlateRow.SCHEMA,
}
_TIME_COLUMN = {"segments": "start", "faces": "ts", "plates": "ts"}


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


def _schema_without_hidden(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f for f in schema if f.name not in HIDDEN_COLUMNS])


class AnalyticsTables:
    """Read-only views of one storage root's tables (made by :func:`open_tables`)."""

    def __init__(self, storage: Storage, actor: Actor, tables: Mapping[str, Table | None]) -> None:
        self._storage = storage
        self.actor = actor
        self._tables = dict(tables)

    @property
    def root(self) -> str:
        return self._storage.root

    # --- raw reads ------------------------------------------------------------------
    def arrow(self, name: TableName, where: Slice = ALL) -> pa.Table:
        """The rows of table ``name`` in ``where``, as Arrow (never embeddings or thumbs)."""
        if name not in _SCHEMAS:
            raise BadInputError(f"table {name!r} is not one analytics reads (one of {', '.join(_SCHEMAS)})")
        schema = _schema_without_hidden(_SCHEMAS[name])
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
        """An in-memory DuckDB with views ``cameras``, ``segments``, ``faces``, ``plates``."""
        import duckdb

        con = duckdb.connect(":memory:")
        for name in _SCHEMAS:
            con.register(name, self.arrow(name, where))
        return con

    # --- locations ------------------------------------------------------------------
    def gps_route(self, camera_id: str, where: Slice = ALL) -> pl.DataFrame:
        """A mobile camera's path from its segments' GPS sidecars: segment_id, ts, lat, lon.

        Segments without a sidecar add nothing (their rows carry no location either).
        """
        frames = []
        segments = self.segments(dataclasses.replace(where, camera_ids=(camera_id,)))
        for seg in segments.sort("start").iter_rows(named=True):
            uri = seg["uri"].rsplit(".", 1)[0] + ".gps.csv"
            try:
                text = self._storage.read_bytes(uri).decode("utf-8", errors="replace")
            except NotFoundError:
                continue
            track = parse_gps_csv(text, uri, seg["start"])
            frames.append(
                pl.DataFrame(
                    {
                        "segment_id": [seg["id"]] * len(track.times),
                        "ts": [dt.datetime.fromtimestamp(t, dt.UTC) for t in track.times],
                        "lat": list(track.lats),
                        "lon": list(track.lons),
                    },
                    schema={
                        "segment_id": pl.String,
                        "ts": pl.Datetime("us", "UTC"),
                        "lat": pl.Float64,
                        "lon": pl.Float64,
                    },
                )
            )
        if not frames:
            return pl.DataFrame(
                schema={
                    "segment_id": pl.String,
                    "ts": pl.Datetime("us", "UTC"),
                    "lat": pl.Float64,
                    "lon": pl.Float64,
                }
            )
        return pl.concat(frames).sort("ts")

    def read_thumbnail(self, uri: str) -> np.ndarray:
        """A thumbnail named in a case's search export (a BGR image), read with this
        root's credentials. Face rows read here never name their thumbnails."""
        return decode_image(self._storage.read_bytes(uri), uri)

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
    """Open the tables of ``settings.storage.root`` (local or s3) for analysis.

    Needs ``settings.user`` with a role allowed ``analytics_read``; the opening is
    audited (refusals too). Tables not created yet read as empty.
    """
    storage = Storage(settings)
    params = {"root": storage.root}
    with governed(settings, storage, Action.ANALYTICS_READ, None, None, params) as run:
        tables: dict[str, Table | None] = {}
        for name, schema in _SCHEMAS.items():
            table = storage.db.open_table(name) if has_table(storage.db, name) else None
            if table is not None:
                _check_columns(name, table.schema, schema)
            tables[name] = table
        run.result_count = sum(t is not None for t in tables.values())
        run.detail = "opened " + ", ".join(n for n, t in tables.items() if t is not None)
    return AnalyticsTables(storage, run.actor, tables)


def _check_columns(name: str, existing: pa.Schema, expected: pa.Schema) -> None:
    for field in _schema_without_hidden(expected):
        if field.name not in existing.names:
            raise BadInputError(
                f"table {name!r} has no column {field.name!r}: the database "
                "was made by another version; use a fresh root or migrate"
            )
