"""Distinct plate texts per UTC day (``plate_texts``), the table plate search ranks.

- **Written before the passes** (:func:`write_plate_texts`, called by indexing just
  before a segment's plate rows are replaced): a crash in between leaves extra texts,
  which match no pass; a pass is never committed without its text. Insert-missing by id
  (``<day>|<text>``): re-indexing a segment never duplicates.
- **Known complete** (:func:`texts_complete`): only then does search trust the table.
  A store made with this code is complete from its first plate (the texts table is
  marked when the plates table does not exist yet); an older store gets there by the
  daily maintenance's :func:`backfill_plate_texts` (distinct day|text of the whole
  plates table, then the mark with the plates version it read). Until then, and if the
  plates table is older than the mark (replaced since), search scans the plates.
- **Retention** (:func:`purge_plate_texts`): whole days past the plates retention,
  except the texts of passes a case still holds.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from citywatch.filters import all_of, compare, eq, not_in
from citywatch.schemas import PlateRow, PlateTextRow, PlateTextsMarkRow, rows_to_arrow, utcnow
from citywatch.shards import index_tables
from citywatch.tables import has_table, insert_missing, plate_texts_state_table, plate_texts_table, upsert
from citywatch.tasks.retention import CLEANUP_GRACE_MIN
from citywatch.tasks.search.plate_window import day_of

if TYPE_CHECKING:
    import lancedb
    from lancedb.table import Table

log = logging.getLogger(__name__)

MARK_ID = PlateRow.TABLE
BACKFILL_BATCH = 1_000_000  # plate rows read at a time by the backfill


def text_rows(ts: pa.Array | pa.ChunkedArray, text: pa.Array | pa.ChunkedArray) -> pa.Table:
    """The distinct (day, text) rows of passes (``PlateTextRow.SCHEMA``); null texts skipped."""
    passes = pa.table({"ts": ts, "text": text})
    passes = passes.filter(pc.is_valid(passes["text"]))
    day = pc.floor_temporal(passes["ts"], unit="day")
    label = pc.fill_null(pc.strftime(day, format="%Y-%m-%d"), "-")
    rows = pa.table({"id": pc.binary_join_element_wise(label, passes["text"], "|"), "day": day})
    rows = rows.append_column("text", passes["text"])
    distinct = rows.group_by(["id", "day", "text"], use_threads=False).aggregate([])
    return distinct.select(PlateTextRow.SCHEMA.names).cast(PlateTextRow.SCHEMA)


def write_plate_texts(db: lancedb.DBConnection, plates: pa.Table) -> int:
    """Record the (day, text) of ``plates``, rows about to be written; returns how many
    were new. Call it before writing the rows."""
    new_store = not has_table(db, PlateRow.TABLE)  # (day shards are always written after their texts)
    inserted = insert_missing(plate_texts_table(db), text_rows(plates["ts"], plates["text"]))
    if new_store and not _marked(db):  # no plate was ever written without its text
        _mark_complete(db, plates_version=0, texts=inserted)
    return inserted


def _marked(db: lancedb.DBConnection) -> bool:
    if not has_table(db, PlateTextsMarkRow.TABLE):
        return False
    return plate_texts_state_table(db).count_rows(eq("id", MARK_ID)) > 0


def _mark_complete(db: lancedb.DBConnection, *, plates_version: int, texts: int) -> None:
    row = PlateTextsMarkRow(MARK_ID, plates_version, texts, utcnow())
    upsert(plate_texts_state_table(db), rows_to_arrow([row], PlateTextsMarkRow.SCHEMA))


def texts_complete(db: lancedb.DBConnection, plates: Table) -> bool:
    """Whether ``plate_texts`` holds the text of every pass in ``plates`` (see the module)."""
    if not has_table(db, PlateTextsMarkRow.TABLE) or not has_table(db, PlateTextRow.TABLE):
        return False
    marks = db.open_table(PlateTextsMarkRow.TABLE).search().select(["id", "plates_version"]).limit(None)
    versions = [row["plates_version"] for row in marks.to_list() if row["id"] == MARK_ID]
    return bool(versions) and plates.version >= versions[0]


def backfill_plate_texts(db: lancedb.DBConnection) -> int | None:
    """Write the (day, text) of every pass of an older store's plates table, then mark the
    texts table complete; returns the texts found, or None when there was nothing to do
    (no plates table, or already complete). Passes written meanwhile are new code's,
    which writes their texts first."""
    if not has_table(db, PlateRow.TABLE):
        return None
    plates = db.open_table(PlateRow.TABLE)  # this version is what the backfill reads
    if texts_complete(db, plates):
        return None
    version = plates.version
    parts: list[pa.Table] = []
    scan = plates.search().select(["ts", "text"]).limit(None)
    for batch in scan.to_batches(BACKFILL_BATCH):
        parts.append(text_rows(batch.column("ts"), batch.column("text")))
    found = (
        pa.concat_tables(parts).group_by(PlateTextRow.SCHEMA.names, use_threads=False).aggregate([])
        if parts
        else PlateTextRow.SCHEMA.empty_table()
    )
    found = found.select(PlateTextRow.SCHEMA.names).cast(PlateTextRow.SCHEMA)
    inserted = insert_missing(plate_texts_table(db), found)
    _mark_complete(db, plates_version=version, texts=found.num_rows)
    log.info(
        "plate_texts: backfilled %d day|text rows (%d new) from plates version %d",
        found.num_rows,
        inserted,
        version,
    )
    return found.num_rows


def purge_plate_texts(db: lancedb.DBConnection, plates_days: int, now: dt.datetime) -> int:
    """Delete the texts of whole UTC days past the plates retention (run after the plates
    purge), keeping those of held passes still in the plates table; returns rows deleted.

    A day goes once its last moment is before ``now - plates_days``: never a day still
    partly inside retention.
    """
    if not has_table(db, PlateTextRow.TABLE):
        return 0
    first_kept = day_of(now - dt.timedelta(days=plates_days))  # days before this are wholly expired
    texts = db.open_table(PlateTextRow.TABLE)
    expired = compare("day", "<", first_kept)
    doomed = texts.count_rows(expired)
    if not doomed:
        return 0
    kept: list[str] = []
    before = first_kept - dt.timedelta(microseconds=1)
    for name in index_tables(db, PlateRow.TABLE, until=before):  # what retention left: held passes
        held = db.open_table(name).search().where(compare("ts", "<", first_kept))
        left = held.select(["ts", "text"]).limit(None).to_arrow()
        kept += text_rows(left.column("ts"), left.column("text")).column("id").to_pylist()
    where = all_of(expired, not_in("id", kept)) if kept else expired
    deleted = texts.count_rows(where)
    if deleted:
        texts.delete(where)
        texts.optimize(cleanup_older_than=dt.timedelta(minutes=CLEANUP_GRACE_MIN))  # the bytes go too
    return deleted
