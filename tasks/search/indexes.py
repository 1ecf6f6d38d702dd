"""Search indexes on the sighting tables, built and refreshed by the daily maintenance.

- ``faces.embedding``: an IVF_RQ vector index once the table holds
  ``face_ann_min_rows`` rows (below that exact search is fast enough and exact);
  searches always ask for ``face_ann_nprobes`` partitions and ``face_ann_refine`` x
  exact re-ranking, which a flat (unindexed) table ignores.
- ``ts`` (BTree) and ``camera_id`` (Bitmap) scalar indexes on faces and plates, for
  the time and camera filters that every search and the sweep apply.
- ``plates.text`` (BTree): plate search reads the passes of the texts that match
  (``text IN (...)``), a plate that passes all day most confident first (``plates.confidence``,
  BTree); ``plate_texts.day`` (BTree) picks the window's days, and
  ``plate_texts.id`` (BTree) keeps indexing's insert-missing from scanning it. An older
  store's ``plate_texts`` is backfilled from its plates first (tasks/plate_texts.py).
- Day shards (``storage.shard_by_day``): each gets the scalar indexes; a shard gets its
  vector index once its day has closed (today's rows are searched exactly).
- Rows added since an index was built are folded in by ``optimize()`` (new rows are
  searched exactly until then, so nothing is missed in between).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from lancedb.index import Bitmap, BTree, IvfRq
from lancedb.table import Table

from citywatch.schemas import FaceRow, PlateRow, PlateTextRow, utcnow
from citywatch.settings import Settings
from citywatch.shards import SHARDED, index_tables, shard_day
from citywatch.storage import Storage
from citywatch.tables import table_names
from citywatch.tasks.plate_texts import backfill_plate_texts

log = logging.getLogger(__name__)

SCALAR_INDEXES = {
    FaceRow.TABLE: (("ts", BTree), ("camera_id", Bitmap)),
    PlateRow.TABLE: (("ts", BTree), ("camera_id", Bitmap), ("text", BTree), ("confidence", BTree)),
    PlateTextRow.TABLE: (("day", BTree), ("id", BTree)),  # id: indexing's insert-missing joins on it
}


@dataclass
class IndexReport:
    created: list[str] = field(default_factory=list)  # "faces.embedding (IVF_RQ)", ...
    refreshed: list[str] = field(default_factory=list)  # tables whose new rows were indexed

    def __str__(self) -> str:
        parts = [
            f"created {', '.join(self.created)}" if self.created else "",
            f"refreshed {', '.join(self.refreshed)}" if self.refreshed else "",
        ]
        return "; ".join(p for p in parts if p) or "up to date"


def ensure_search_indexes(storage: Storage, settings: Settings) -> IndexReport:
    """Backfill an older store's plate texts; create the missing indexes of faces, plates and
    plate texts; fold new rows into existing ones."""
    report = IndexReport()
    backfilled = backfill_plate_texts(storage.db)
    if backfilled is not None:
        report.created.append(f"{PlateTextRow.TABLE} ({backfilled} day|text rows backfilled from plates)")
    names = table_names(storage.db)
    today = utcnow().date()
    for base, scalar_indexes in SCALAR_INDEXES.items():
        tables = (
            index_tables(storage.db, base, names=names)
            if base in SHARDED
            else [n for n in (base,) if n in names]
        )
        for name in tables:
            day = shard_day(name)
            vector = base == FaceRow.TABLE and (day is None or day < today)  # a day shard once closed
            _index_table(storage.db.open_table(name), scalar_indexes, vector, settings, report)
    log.info("search indexes: %s", report)
    return report


def _index_table(
    table: Table,
    scalar_indexes: tuple[tuple[str, type[BTree] | type[Bitmap]], ...],
    vector: bool,
    settings: Settings,
    report: IndexReport,
) -> None:
    name, rows = table.name, table.count_rows()
    if rows == 0:
        return
    indexed = {tuple(index.columns)[0]: index.name for index in table.list_indices()}
    for column, config in scalar_indexes:
        if column not in indexed:
            table.create_index(column, config=config())
            report.created.append(f"{name}.{column} ({config.__name__})")
    if vector and "embedding" not in indexed and rows >= settings.faces.ann_min_rows:
        partitions = max(1, min(4096, int(math.sqrt(rows))))
        table.create_index("embedding", config=IvfRq(distance_type="l2", num_partitions=partitions))
        report.created.append(f"{name}.embedding (IVF_RQ, {partitions} partitions)")
        indexed["embedding"] = "embedding_idx"
    stale = [i for i in indexed.values() if _unindexed_rows(table, i) > 0]
    if stale:
        table.optimize()  # folds new rows into every index
        report.refreshed.append(name)


def _unindexed_rows(table: Table, index_name: str) -> int:
    """Rows not yet folded into ``index_name`` (0 if the index is gone: nothing to refresh)."""
    stats = table.index_stats(index_name)
    return 0 if stats is None else stats.num_unindexed_rows
