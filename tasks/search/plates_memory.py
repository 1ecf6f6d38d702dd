"""Plate search over closed day shards held in memory (tasks/search/memory_tier.py).

A loaded plate shard is its rows in Arrow (every column but none of the stored files),
its texts dictionary-encoded, and each row's ``_rowid`` (the last tie-break of the
ranking). A search scores the window's distinct texts once (``plate_texts``, as the
LanceDB path does), then, per shard in memory, looks up each row's score through its
text's code, keeps the window (cameras, times, place) and sorts as :func:`_best` does:
score, higher confidence, earlier, the table's order. Same passes, same order, no read.

Only the service process turns it on (``search.plate_memory_tier_mb``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from citywatch.schemas import PlateRow, arrow_to_rows
from citywatch.storage import Storage
from citywatch.tables import table_names
from citywatch.tasks.search.memory_tier import ShardTier
from citywatch.tasks.search.plate_window import PlateWindow

if TYPE_CHECKING:
    from lancedb.table import Table


@dataclass(frozen=True, slots=True)
class PlateShard:
    rows: pa.Table  # every PlateRow column and _rowid, in the table's order
    text_codes: np.ndarray  # (n,) int32 into ``texts`` (-1: no text)
    texts: pa.Array  # the distinct texts

    @property
    def nbytes(self) -> int:
        return int(self.rows.nbytes + self.text_codes.nbytes + self.texts.nbytes)

    def __len__(self) -> int:
        return self.rows.num_rows


def load_plate_shard(table: Table) -> PlateShard:
    """A plate day shard's rows (``table`` pinned at the version to hold)."""
    names = [f.name for f in PlateRow.SCHEMA]
    rows = table.search().select(names).with_row_id(True).limit(None).to_arrow().combine_chunks()
    encoded = pc.dictionary_encode(rows["text"].combine_chunks())
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
    return PlateShard(rows, codes, encoded.dictionary)


def rank_in_memory(
    shard: PlateShard, scores: dict[str, float], window: PlateWindow, top_k: int
) -> list[tuple[float, PlateRow]]:
    """What ``rank_scored`` returns for this shard (``window`` already on its day)."""
    if not scores or not len(shard):
        return []
    matched = pa.array(list(scores), pa.string())
    score_of = np.asarray(list(scores.values()), dtype=np.float64)
    where = pc.index_in(shard.texts, value_set=matched).to_numpy(zero_copy_only=False)
    by_code = np.where(np.isnan(where.astype(np.float64)), np.nan, 0.0)
    found = ~np.isnan(by_code)
    by_code[found] = score_of[where[found].astype(np.int64)]
    row_scores = np.full(len(shard), np.nan)
    has_text = shard.text_codes >= 0
    row_scores[has_text] = by_code[shard.text_codes[has_text]]
    positions = np.flatnonzero(~np.isnan(row_scores))
    if not len(positions):
        return []
    narrow = shard.rows.select(["confidence", "ts", "_rowid", *window.columns()]).take(pa.array(positions))
    hits = narrow.append_column("score", pa.array(row_scores[positions]))
    hits = window.keep(hits.append_column("_pos", pa.array(positions)))
    if not hits.num_rows:
        return []
    keys = [
        ("score", "ascending"),
        ("confidence", "descending"),
        ("ts", "ascending"),
        ("_rowid", "ascending"),
    ]
    top = hits.take(pc.sort_indices(hits, sort_keys=keys)[:top_k])
    rows = arrow_to_rows(shard.rows.take(top.column("_pos")), PlateRow)  # whole rows of the top_k only
    return list(zip(top.column("score").to_pylist(), rows, strict=True))


# --- the process's tier ---------------------------------------------------------------

_TIERS: dict[str, ShardTier[PlateShard]] = {}
_TIERS_LOCK = threading.Lock()


def start_plate_tier(
    storage: Storage, budget_mb: int, *, preload: bool = True
) -> ShardTier[PlateShard] | None:
    """Turn the plate tier on for ``storage`` in this process (the service does, at startup)."""
    if budget_mb <= 0:
        return None
    with _TIERS_LOCK:
        tier = _TIERS.get(storage.root)
        if tier is None:
            tier = ShardTier(lambda: storage.db, load_plate_shard, budget_mb * 1024 * 1024)
            _TIERS[storage.root] = tier
    if preload:
        tier.preload([n for n in table_names(storage.db) if n.startswith(f"{PlateRow.TABLE}_d")])
    return tier


def plate_tier(storage: Storage) -> ShardTier[PlateShard] | None:
    return _TIERS.get(storage.root)


def stop_plate_tier(storage: Storage) -> None:
    with _TIERS_LOCK:
        tier = _TIERS.pop(storage.root, None)
    if tier is not None:
        tier.stop()
