"""Opening LanceDB tables and writing rows idempotently (merge on ``id``)."""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING

import pyarrow as pa

from citywatch.errors import BadInputError, TransientError
from citywatch.schemas import CameraRow, FaceRow, PlateRow, PlateTextRow, PlateTextsMarkRow, SegmentRow

if TYPE_CHECKING:
    import lancedb
    from lancedb.table import Table

log = logging.getLogger(__name__)


PK_METADATA = b"lance-schema:unenforced-primary-key:position"
DAY_SHARD = re.compile(r"^(faces|plates)_d(\d{8})$")  # citywatch/shards.py


def base_of(name: str) -> str:
    """``faces`` for ``faces`` and its day shards (``faces_d20261203``); others unchanged."""
    found = DAY_SHARD.match(name)
    return found.group(1) if found else name


def open_table(db: lancedb.DBConnection, name: str, schema: pa.Schema) -> Table:
    """Open ``name`` (created empty with ``schema`` if missing), keyed on ``id``."""
    return _keyed(db, name, _open_checked(db, name, schema))


def _keyed(db: lancedb.DBConnection, name: str, table: Table) -> Table:
    """Make ``id`` the table's unenforced primary key.

    With the key set, a merge-insert racing another writer that inserts the same id
    is retried by LanceDB instead of both inserting (without it, both rows land).
    Setting the key races too when two processes create the table at once: the loser
    re-reads the table and finds the key set.
    """
    from lancedb.table import LanceTable  # lancedb is loaded by now: ``table`` came from it

    for attempt in range(5):
        if PK_METADATA in (table.schema.field("id").metadata or {}):
            return table
        if not isinstance(table, LanceTable):  # a remote (LanceDB Cloud) table has no such key
            raise TypeError(f"table {name}: a {type(table).__name__} cannot be keyed on id")
        try:
            table.set_unenforced_primary_key("id")
        except (ValueError, RuntimeError) as exc:  # set (or being set) by another writer
            if attempt == 4:
                raise TransientError(f"could not key table {name} on id: {exc}") from exc
            time.sleep(0.05 * (attempt + 1))
            table = _open_or_create(db, name, table.schema)
    return table


def _open_or_create(db: lancedb.DBConnection, name: str, schema: pa.Schema) -> Table:
    """Open ``name``, or create it; two writers creating it at once both end up opening it
    (the loser can briefly see "not found" while the winner's first commit lands)."""
    for attempt in range(10):
        try:
            if has_table(db, name):
                return db.open_table(name)
            return db.create_table(name, schema=schema, exist_ok=True)
        except (ValueError, RuntimeError, OSError) as exc:
            if attempt == 9:
                raise TransientError(f"could not open or create table {name}: {exc}") from exc
            time.sleep(0.05 * (attempt + 1))
    raise TransientError(f"could not open or create table {name}")


# Columns added after stores existed: (table, column) -> the SQL value old rows get.
# Opening an older table adds them (one commit); any other difference is refused.
ADDED_COLUMNS: dict[tuple[str, str], str] = {
    (SegmentRow.TABLE, "plates_rejected_text"): "arrow_cast(0, 'Int32')",  # nothing was refused then
    (PlateRow.TABLE, "gate_score"): "arrow_cast(1.0, 'Float32')",  # accepted by the rule of the day
    (FaceRow.TABLE, "template"): "embedding",  # each old face stands alone
    (FaceRow.TABLE, "face_px"): "arrow_cast(least(bbox[3] - bbox[1], bbox[4] - bbox[2]), 'Float32')",
}


def _add_missing_columns(name: str, table: Table, schema: pa.Schema) -> Table:
    """Add the ``ADDED_COLUMNS`` an older ``name`` table lacks, with their values for old rows."""
    existing, base = set(table.schema.names), base_of(name)
    missing = {
        field.name: ADDED_COLUMNS[(base, field.name)]
        for field in schema
        if field.name not in existing and (base, field.name) in ADDED_COLUMNS
    }
    if not missing:
        return table
    try:
        table.add_columns(missing)
        log.warning("table %s: added column(s) %s with their values for older rows", name, ", ".join(missing))
    except (ValueError, RuntimeError, OSError) as exc:  # another process added them first
        table.checkout_latest()
        if not set(missing) <= set(table.schema.names):
            raise TransientError(
                f"could not add column(s) {', '.join(missing)} to table {name}: {exc}"
            ) from exc
    return table


def _open_checked(db: lancedb.DBConnection, name: str, schema: pa.Schema) -> Table:
    table = _add_missing_columns(name, _open_or_create(db, name, schema), schema)
    existing = table.schema
    if existing != schema:
        for field in schema:
            if field.name not in existing.names or existing.field(field.name).type != field.type:
                raise BadInputError(
                    f"table {name!r} has column {field.name!r} as "
                    f"{existing.field(field.name).type if field.name in existing.names else 'missing'}"
                    f", expected {field.type}: the database was made by another model or "
                    "version; use a fresh storage root or migrate"
                )
    return table


def table_names(db: lancedb.DBConnection) -> list[str]:
    """All table names (following list_tables' pages)."""
    names: list[str] = []
    token: str | None = None
    while True:
        page = db.list_tables(page_token=token, limit=1000)
        names.extend(page.tables)
        token = page.page_token
        if not token:
            return names


def has_table(db: lancedb.DBConnection, name: str) -> bool:
    return name in table_names(db)


def cameras_table(db: lancedb.DBConnection) -> Table:
    return open_table(db, CameraRow.TABLE, CameraRow.SCHEMA)


def segments_table(db: lancedb.DBConnection) -> Table:
    return open_table(db, SegmentRow.TABLE, SegmentRow.SCHEMA)


def faces_table(db: lancedb.DBConnection, dim: int) -> Table:
    return open_table(db, FaceRow.TABLE, FaceRow.schema(dim))


def plates_table(db: lancedb.DBConnection) -> Table:
    return open_table(db, PlateRow.TABLE, PlateRow.SCHEMA)


def plate_texts_table(db: lancedb.DBConnection) -> Table:
    """The distinct plate texts per UTC day (see :class:`citywatch.schemas.PlateTextRow`)."""
    return open_table(db, PlateTextRow.TABLE, PlateTextRow.SCHEMA)


def plate_texts_state_table(db: lancedb.DBConnection) -> Table:
    """Whether ``plate_texts`` is known complete (see :class:`citywatch.schemas.PlateTextsMarkRow`)."""
    return open_table(db, PlateTextsMarkRow.TABLE, PlateTextsMarkRow.SCHEMA)


def index_table(db: lancedb.DBConnection, name: str) -> Table:
    """An existing ``faces`` or ``plates`` table, upgraded to today's columns (readers
    that do not know the embedding size, e.g. the sweep)."""
    if base_of(name) == FaceRow.TABLE:
        field = db.open_table(name).schema.field("embedding")
        return open_table(db, name, FaceRow.schema(field.type.list_size))
    return open_table(db, name, PlateRow.SCHEMA)


def insert_missing(table: Table, data: pa.Table, *, attempts: int = 8) -> int:
    """Insert the rows whose ``id`` is not in ``table`` yet; returns how many were new.
    Retries commit conflicts with backoff (a failed commit wrote nothing)."""
    if data.num_rows == 0:
        return 0
    return _merge(table, data, attempts, update=False)


def upsert(table: Table, data: pa.Table, *, attempts: int = 8) -> None:
    """Insert or replace rows by ``id``; retries commit conflicts with backoff."""
    if data.num_rows == 0:
        return
    _merge(table, data, attempts, update=True)


def replace_where(table: Table, data: pa.Table, where: str, *, attempts: int = 8) -> None:
    """Make ``data`` the rows of ``table`` under ``where`` in one commit (rows under
    ``where`` not in ``data`` are deleted, the others inserted or replaced by ``id``):
    readers see the old rows or the new ones, never neither."""
    if data.num_rows == 0:
        try:
            table.delete(where)
        except (OSError, RuntimeError) as exc:  # lance: the object store failed (its retries spent)
            raise TransientError(f"could not delete rows of {table.name}: {exc}") from exc
        return
    _merge(table, data, attempts, update=True, delete_where=where)


def _merge(
    table: Table, data: pa.Table, attempts: int, *, update: bool, delete_where: str | None = None
) -> int:
    delay = 0.05
    for attempt in range(1, attempts + 1):
        try:
            merge = table.merge_insert("id")
            merge = merge.when_matched_update_all() if update else merge
            if delete_where is not None:
                merge = merge.when_not_matched_by_source_delete(delete_where)
            return int(merge.when_not_matched_insert_all().execute(data).num_inserted_rows)
        except (OSError, RuntimeError, ValueError) as exc:  # lance raises these on conflicts
            if attempt == attempts:
                raise TransientError(f"could not write {data.num_rows} rows to {table.name}: {exc}") from exc
            log.warning("retrying write to %s after %s (attempt %d)", table.name, exc, attempt)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise TransientError(f"could not write {data.num_rows} rows to {table.name}")
