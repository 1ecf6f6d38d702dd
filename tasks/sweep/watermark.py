"""Sweep stage 1, the watermark: which rows of ``faces`` and ``plates`` are new.

Rows written after a snapshot are those with ``_rowaddr >= (F + 1) << 32``, F being
the largest fragment id already read (see the package doc); the mark per source table
lives in ``sweep_state`` and only moves forward.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from citywatch.filters import compare
from citywatch.schemas import FaceRow, PlateRow, SweepStateRow, arrow_to_rows, rows_to_arrow
from citywatch.shards import fan_out, index_tables
from citywatch.storage import Storage
from citywatch.tables import base_of, has_table, index_table
from citywatch.tables import open_table as keyed_table

FACE_COLUMNS = [
    "id",
    "segment_id",
    "camera_id",
    "ts",
    "track_id",
    "track_start",
    "track_end",
    "thumb_uri",
    "lat",
    "lon",
    "model",
    "embedding",
    "template",  # the track's template and the face size: the face rule (citywatch/face_rule.py)
    "face_px",
]
PLATE_COLUMNS = [
    "id",
    "segment_id",
    "camera_id",
    "ts",
    "first_ts",
    "last_ts",
    "text",
    "track_id",
    "thumb_uri",
    "lat",
    "lon",
    "model",
    "gate_score",  # the plate acceptance rule (citywatch/plate_gate.py)
]
SOURCES = {FaceRow.TABLE: FACE_COLUMNS, PlateRow.TABLE: PLATE_COLUMNS}  # and their day shards


def load_watermarks(storage: Storage) -> dict[str, SweepStateRow]:
    if not has_table(storage.db, SweepStateRow.TABLE):
        return {}
    table = keyed_table(storage.db, SweepStateRow.TABLE, SweepStateRow.SCHEMA)
    return {row.id: row for row in arrow_to_rows(table.to_arrow(), SweepStateRow)}


def advance_watermarks(storage: Storage, marks: Sequence[SweepStateRow]) -> None:
    """Save watermarks; a mark never moves backwards (a slower concurrent sweep loses)."""
    if not marks:
        return
    table = keyed_table(storage.db, SweepStateRow.TABLE, SweepStateRow.SCHEMA)
    (
        table.merge_insert("id")
        .when_matched_update_all(where="target.after_fragment <= source.after_fragment")
        .when_not_matched_insert_all()
        .execute(rows_to_arrow(list(marks), SweepStateRow.SCHEMA))
    )


def read_new_rows_of(
    storage: Storage, base: str, marks: dict[str, SweepStateRow], now: dt.datetime
) -> tuple[pa.Table, list[SweepStateRow]]:
    """New rows of every table holding ``base`` rows (the unsharded table and the day
    shards, read in parallel; each keeps its own mark) and their marks."""
    names = index_tables(storage.db, base) or [base]
    found = fan_out(lambda name: read_new_rows(storage, name, marks.get(name), now), names)
    rows = [part for part, _ in found if part.num_rows]
    merged = pa.concat_tables(rows, promote_options="permissive") if rows else found[0][0]
    return merged, [mark for _, mark in found]


def read_new_rows(
    storage: Storage, source: str, mark: SweepStateRow | None, now: dt.datetime
) -> tuple[pa.Table, SweepStateRow]:
    """Rows of ``source`` written after ``mark`` (one snapshot) and the mark covering them."""
    after = mark.after_fragment if mark else -1
    seen = mark.rows_seen if mark else 0
    empty = pa.table({name: pa.array([], pa.null()) for name in SOURCES[base_of(source)]})
    if not has_table(storage.db, source):
        return empty, SweepStateRow(source, after, mark.table_version if mark else 0, seen, now)
    table = index_table(storage.db, source)  # pinned to the version current now
    if mark is not None and int(table.version) == mark.table_version:  # nothing written since
        return empty, SweepStateRow(source, after, mark.table_version, seen, now)
    query = table.search().select([*SOURCES[base_of(source)], "_rowaddr"])
    if after >= 0:
        query = query.where(compare("_rowaddr", ">=", (after + 1) << 32))
    rows = query.limit(None).to_arrow()
    if rows.num_rows:
        addresses = rows.column("_rowaddr").to_numpy().astype(np.uint64)
        after = max(after, int((addresses >> np.uint64(32)).max()))
    return (
        rows.drop_columns(["_rowaddr"]),
        SweepStateRow(source, after, int(table.version), seen + rows.num_rows, now),
    )
