"""Screening the sweep's new rows: one malformed row never stops the alerts for the rest."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pyarrow as pa

from citywatch.cameras import check_camera_id
from citywatch.errors import BadInputError
from citywatch.filters import sql_string

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """A new row the sweep could not match (malformed ids): named, never silently lost."""

    table: str
    row_id: str
    reason: str


def screen_rows(rows: pa.Table, source: str) -> tuple[pa.Table, list[SkippedRow]]:
    """The rows whose camera and row ids are well-formed, and the others, skipped.

    A row written with a malformed camera id (by a version that let one in) must not
    stop the sweep, and so the alerts, for every other camera.
    """
    if not rows.num_rows:
        return rows, []
    keep: list[int] = []
    skipped: list[SkippedRow] = []
    columns = [rows.column(name).to_pylist() for name in ("id", "camera_id", "segment_id", "track_id")]
    for i, (row_id, camera_id, segment_id, track_id) in enumerate(zip(*columns, strict=True)):
        try:
            check_camera_id(camera_id)
            for value in (row_id, segment_id, track_id):
                sql_string(value)
        except BadInputError as exc:
            skipped.append(SkippedRow(source, repr(row_id), str(exc)))
            log.warning("sweep: %s row %r skipped: %s", source, row_id, exc)
        else:
            keep.append(i)
    return (rows.take(pa.array(keep, pa.int64())) if skipped else rows), skipped
