"""Plate search: exact first, then OCR-aware fuzzy matches and partial patterns."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from citywatch.filters import all_of, compare, is_in
from citywatch.plates import CONFUSABLE_PAIRS, PlateQuery, match_score, normalise_plate
from citywatch.schemas import CameraRow, PlateRow, PlateTextRow, arrow_to_rows
from citywatch.shards import fan_out, index_tables, shard_day
from citywatch.sightings import PlateSighting
from citywatch.storage import Storage
from citywatch.tables import cameras_table, has_table
from citywatch.tasks.plate_texts import texts_complete
from citywatch.tasks.search.faces import SearchFilters, camera_filter_ids, segment_uris
from citywatch.tasks.search.plate_window import Near, PlateWindow, within
from citywatch.tasks.search.plate_window import distance_m as distance_m  # re-exported
from citywatch.tasks.search.plate_window import parse_near as parse_near  # re-exported
from citywatch.tasks.search.plates_memory import PlateShard, plate_tier, rank_in_memory

if TYPE_CHECKING:
    from lancedb.table import Table

RANK_COLUMNS = ["text", "confidence", "ts"]  # what ranking reads of every row in the window
LEVEL_COLUMNS = ["confidence", "ts"]  # what it reads of the passes of the texts that score alike
ID_CHUNK = 500
TEXT_CHUNK = 1000  # texts per ``text IN (...)`` read
MAX_IN_TEXTS = 20_000  # more matching texts than this (a broad pattern): one scan of the window
TEXT_ONLY_PASSES = 50_000  # more passes of a chunk of texts than this: read most confident first
CONFIDENCE_FLOORS = (1 - 2**-10, 1 - 2**-7, 1 - 2**-4, 0.75)  # exact in float32; see _passes
SELECTIVE_DAYS = 0.25  # the window's days hold at most this share of plate_texts: filter by time in the query


def rank_plates(
    table: Table, query: PlateQuery, where: str | None, *, near: Near | None, top_k: int
) -> list[tuple[float, PlateRow]]:
    """The ``top_k`` plate rows under ``where`` that match ``query``, best first
    (score, then higher confidence, then earlier, then the table's order).

    Reads three narrow columns of the rows in the window (plus lat/lon with ``near``),
    scores each distinct text once (a city's plates repeat: one score per plate, not
    per pass), and reads whole rows only for the ``top_k`` kept (by row address).
    """
    window = _read(table, where, near)
    if not window.num_rows:
        return []
    scores = score_texts(query, pc.unique(window.column("text")).drop_null())
    return _top(table, window, scores, near, top_k)


def rank_plates_by_text(
    table: Table, texts: Table, query: PlateQuery, window: PlateWindow, *, top_k: int
) -> list[tuple[float, PlateRow]]:
    """:func:`rank_plates` through ``plate_texts`` (``texts``, known complete): score the
    distinct texts of the window's days (:func:`score_window_texts`), then read only the
    passes of the texts that match (:func:`rank_scored`). Same rows, same order."""
    scores, selective = score_window_texts(texts, query, window)
    return rank_scored(table, scores, window, top_k=top_k, selective=selective)


def score_window_texts(texts: Table, query: PlateQuery, window: PlateWindow) -> tuple[dict[str, float], bool]:
    """The scores of the distinct texts of the window's days that match ``query``, and
    whether the window is selective (its days hold at most ``SELECTIVE_DAYS`` of all texts:
    then the window goes into the pass queries, see :func:`_passes`)."""
    day_clause = window.days_clause()
    day_texts = texts.search().where(day_clause) if day_clause else texts.search()
    found = day_texts.select(["text"]).limit(None).to_arrow().column("text")
    scores = score_texts(query, pc.unique(found).drop_null())
    return scores, bool(scores) and len(found) <= SELECTIVE_DAYS * texts.count_rows()


def score_held_texts(
    texts: Table, query: PlateQuery, held: list[PlateShard], unheld_days: list[dt.date]
) -> dict[str, float]:
    """:func:`score_window_texts` for a window of day shards, some held in memory: a held
    shard's distinct texts are its own (no read); ``plate_texts`` is read for the other
    days only. The same texts match (a day's ``plate_texts`` are its passes' texts)."""
    parts = [shard.texts.cast(pa.string()) for shard in held]
    if unheld_days:
        days = [dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) for day in unheld_days]
        found = texts.search().where(is_in("day", days)).select(["text"]).limit(None).to_arrow()
        parts.append(found.column("text").combine_chunks().cast(pa.string()))
    return score_texts(query, pc.unique(pa.concat_arrays(parts)).drop_null())


def rank_scored(
    table: Table, scores: dict[str, float], window: PlateWindow, *, top_k: int, selective: bool
) -> list[tuple[float, PlateRow]]:
    """The ``top_k`` passes in ``table`` of the scored texts in the window: the passes of
    the best score first, stopping once ``top_k`` are in (every later one scores worse).

    How the passes of a chunk of texts are read: :func:`_passes`.
    """
    if not scores:
        return []
    near = window.near
    if len(scores) > MAX_IN_TEXTS:  # a broad pattern: one scan beats many IN lists
        return _top(table, _read(table, window.where(), near), scores, near, top_k)
    levels: list[pa.Table] = []
    kept = 0
    for score in sorted(set(scores.values())):  # all passes of a level rank before the next's
        level = sorted(text for text, s in scores.items() if s == score)
        need = top_k - kept
        for start in range(0, len(level), TEXT_CHUNK):
            chunk = is_in("text", level[start : start + TEXT_CHUNK])
            part = _passes(table, window, chunk, need, selective=selective)
            levels.append(part.append_column("score", pa.array(np.full(part.num_rows, score))))
            kept += part.num_rows
        if kept >= top_k:
            break
    return _best(table, pa.concat_tables(levels), top_k)


def _passes(table: Table, window: PlateWindow, texts: str, need: int, *, selective: bool) -> pa.Table:
    """The passes of ``texts`` (one score level) in the window: all of them, or enough of
    the most confident to hold the ``need`` that rank first (higher confidence first).

    The window goes into the query only when ``selective`` (a few days of many: a time
    range that covers most of the table costs more as an index query than the passes
    do); it is applied in Arrow either way. Few passes (counted by the text index): all
    read. Many (a plate that passes all day): those at or above each confidence floor in
    turn, until ``need`` are in the window; else all.
    """
    columns = LEVEL_COLUMNS + window.columns()
    where = window.where() if selective else None
    if table.count_rows(texts) > TEXT_ONLY_PASSES:
        for floor in CONFIDENCE_FLOORS:
            part = window.keep(
                _read(table, all_of(where, texts, compare("confidence", ">=", floor)), None, columns)
            )
            if int(pc.sum(pc.greater_equal(part["confidence"], floor)).as_py() or 0) >= need:
                return part  # every pass not read is less confident: ranks after these
    return window.keep(_read(table, all_of(where, texts), None, columns))


def score_texts(query: PlateQuery, distinct: pa.Array) -> dict[str, float]:
    """The score of each text (distinct, no nulls) within the query's edits."""
    near = lower_bounds(query.text, distinct, pattern=query.is_pattern) <= query.max_edits + 1e-9
    scores: dict[str, float] = {}
    for text in distinct.filter(pa.array(near)).to_pylist():
        if could_match(query, text) and (score := match_score(query, text)) is not None:
            scores[text] = score
    return scores


def _read(table: Table, where: str | None, near: Near | None, columns: list[str] = RANK_COLUMNS) -> pa.Table:
    """``columns`` (plus lat/lon with ``near``, and the row's address: the last tie-break
    and how whole rows are fetched) of the rows under ``where``."""
    scan = table.search().where(where) if where else table.search()
    return scan.select(columns + (["lat", "lon"] if near else [])).with_row_id(True).limit(None).to_arrow()


def _top(
    table: Table, window: pa.Table, scores: dict[str, float], near: Near | None, top_k: int
) -> list[tuple[float, PlateRow]]:
    """The ``top_k`` rows of ``window`` whose text has a score, best first, as whole rows."""
    if not scores or not window.num_rows:
        return []
    matched = pa.array(list(scores), pa.string())
    texts = window.column("text")
    hits = window.filter(pc.is_in(texts, value_set=matched))
    score_of = pa.array(list(scores.values()), pa.float64())
    hits = hits.append_column("score", pc.take(score_of, pc.index_in(hits.column("text"), value_set=matched)))
    if near:
        hits = hits.filter(pa.array(within(near, hits.column("lat"), hits.column("lon"))))
    return _best(table, hits, top_k)


def _best(table: Table, hits: pa.Table, top_k: int) -> list[tuple[float, PlateRow]]:
    """The ``top_k`` of scored ``hits`` (score, then higher confidence, then earlier, then
    the table's order: a stable, complete order), as whole rows fetched by row address."""
    if not hits.num_rows:
        return []
    keys = [
        ("score", "ascending"),
        ("confidence", "descending"),
        ("ts", "ascending"),
        ("_rowid", "ascending"),
    ]
    top = hits.take(pc.sort_indices(hits, sort_keys=keys)[:top_k])
    kept = list(zip(top.column("score").to_pylist(), top.column("_rowid").to_pylist(), strict=True))
    rows: dict[int, PlateRow] = {}
    addresses = [address for _, address in kept]
    for start in range(0, len(addresses), ID_CHUNK):
        found = table.take_row_ids(addresses[start : start + ID_CHUNK]).with_row_id().to_arrow()
        rows.update(zip(found.column("_rowid").to_pylist(), arrow_to_rows(found, PlateRow), strict=True))
    return [(score, rows[address]) for score, address in kept if address in rows]


def _class_table() -> np.ndarray:
    """Byte -> class: each letter and digit its own class, confusable pairs (``O``/``0``,
    ``I``/``1``, ...) joined, every other byte one class; 0 is the padding."""
    table = np.full(256, 1, np.int64)  # 1: any other character
    classes: dict[str, int] = {}
    for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789":
        classes[ch] = len(classes) + 2
    for a, b in CONFUSABLE_PAIRS:  # union: both take the smaller class
        low, high = sorted((classes[a], classes[b]))
        classes = {ch: low if c == high else c for ch, c in classes.items()}
    for ch, c in classes.items():
        table[ord(ch)] = table[ord(ch.lower())] = c
    for ch in "\0 \t\n\r\x0b\x0c-.":  # padding and the ASCII separators normalise_plate drops
        table[ord(ch)] = 0
    return table


CLASS_OF = _class_table().astype(np.uint8)
BOUND_WIDTH = 16  # texts up to this many bytes get the vectorised bound; longer ones the full distance
BOUND_CHUNK = 100_000


def _query_classes(literals: str) -> dict[int, int]:
    """How many characters of each class (not 0) the query's literal characters hold."""
    wanted: dict[int, int] = {}
    for ch in literals:
        c = int(CLASS_OF[ord(ch)]) if ord(ch) < 128 else 1
        if c:
            wanted[c] = wanted.get(c, 0) + 1
    return wanted


def _codes(texts: pa.Array) -> np.ndarray:
    """The classes of short ASCII ``texts``' characters, one row of ``BOUND_WIDTH`` per text
    (padded with class 0), straight from Arrow's buffers."""
    padded = pc.utf8_rpad(texts, width=BOUND_WIDTH, padding=" ")  # ASCII: one byte a character
    first = int(np.frombuffer(padded.buffers()[1], np.int32)[padded.offset])
    raw = np.frombuffer(padded.buffers()[2], np.uint8)[first : first + len(texts) * BOUND_WIDTH]
    return CLASS_OF[raw.reshape(len(texts), BOUND_WIDTH)]


def lower_bounds(query: str, texts: np.ndarray | pa.Array, *, pattern: bool = False) -> np.ndarray:
    """A lower bound of the distance :func:`citywatch.plates.match_score` computes from
    ``query`` to each text (``pattern``: ``query`` holds ``*``/``?``).

    Count characters by class (confusables share one). Every query character that no
    text character of its class can stand for is deleted or swapped for another class:
    each costs a whole edit, so the distance is at least the query's shortfall; the
    same holds for the text's characters the query cannot cover (exact queries only: a
    pattern's ``*`` and ``?`` absorb them). Both follow from the characters the two
    share by class, so only the query's classes are counted. Texts that are not short
    ASCII get 0 (no bound: the full distance decides).
    """
    array = pa.array(texts, pa.string()) if isinstance(texts, np.ndarray) else texts
    bounds = np.zeros(len(array))
    if not len(array):
        return bounds
    short = pc.and_(pc.string_is_ascii(array), pc.less_equal(pc.binary_length(array), BOUND_WIDTH))
    index = np.flatnonzero(short.fill_null(False).to_numpy(zero_copy_only=False))
    wanted = _query_classes(query.replace("*", "").replace("?", "") if pattern else query)
    for start in range(0, len(index), BOUND_CHUNK):
        part = index[start : start + BOUND_CHUNK]
        codes = _codes(array.take(pa.array(part)))
        shared = np.zeros(len(part), np.int64)
        for c, count in wanted.items():
            shared += np.minimum((codes == c).sum(axis=1), count)
        shortfall = sum(wanted.values()) - shared
        bounds[part] = shortfall if pattern else np.maximum(shortfall, (codes != 0).sum(axis=1) - shared)
    return bounds


def could_match(query: PlateQuery, text: str) -> bool:
    """False when ``text`` is too long or too short to be within the query's edits (each
    character more or less costs a whole edit): skips the edit-distance table."""
    plate = normalise_plate(text)
    if not query.is_pattern:
        return abs(len(plate) - len(query.text)) <= query.max_edits + 1e-9
    fixed = len(query.text.replace("*", ""))  # characters the pattern needs ("?" is one)
    if "*" in query.text:
        return len(plate) >= fixed - query.max_edits - 1e-9
    return abs(len(plate) - fixed) <= query.max_edits + 1e-9


def _texts_if_complete(storage: Storage, names: list[str]) -> Table | None:
    """``plate_texts`` when it holds the text of every pass in ``names`` (day shards are
    written after their texts; an older unsharded table once backfilled), else None."""
    if not has_table(storage.db, PlateTextRow.TABLE):
        return None
    if PlateRow.TABLE in names and not texts_complete(storage.db, storage.db.open_table(PlateRow.TABLE)):
        return None  # an older store not backfilled yet
    return storage.db.open_table(PlateTextRow.TABLE)


def merge_ranked(parts: list[list[tuple[float, PlateRow]]], top_k: int) -> list[tuple[float, PlateRow]]:
    """The ``top_k`` best of several tables' ranked passes, in :func:`_best`'s order (a
    table's own order breaks the last ties: tables come in day order)."""
    if len(parts) == 1:
        return parts[0][:top_k]
    keyed = [
        ((score, -row.confidence, row.ts, table, rank), score, row)
        for table, ranked in enumerate(parts)
        for rank, (score, row) in enumerate(ranked)
    ]
    return [(score, row) for _, score, row in sorted(keyed, key=lambda item: item[0])[:top_k]]


def search_plates(
    storage: Storage, query: PlateQuery, filters: SearchFilters, *, near: Near | None = None, top_k: int = 50
) -> list[PlateSighting]:
    """Plate passes matching ``query`` under the filters, exact matches first."""
    names = index_tables(storage.db, PlateRow.TABLE, filters.since, filters.until)
    if not names:
        return []
    cameras = {c.id: c for c in arrow_to_rows(cameras_table(storage.db).to_arrow(), CameraRow)}
    ids = camera_filter_ids(cameras, filters)
    window = PlateWindow(tuple(ids), filters.since, filters.until, near)
    texts = _texts_if_complete(storage, names)
    tier = plate_tier(storage)
    held: dict[str, tuple[dt.date, PlateShard]] = {}  # closed day shards in memory, at their version
    if texts is not None and tier is not None:
        for name in names:
            if (day := shard_day(name)) is not None and tier.closed(name):
                shard = tier.get(name, storage.db.open_table(name).version)
                if shard is not None:
                    held[name] = (day, shard)
    if texts is None:
        scores, selective = {}, False
    elif held and all(shard_day(name) is not None for name in names):
        unheld = sorted({day for name in names if name not in held if (day := shard_day(name)) is not None})
        scores, selective = score_held_texts(texts, query, [s for _, s in held.values()], unheld), False
    else:
        scores, selective = score_window_texts(texts, query, window)

    def rank(name: str) -> list[tuple[float, PlateRow]]:
        table = storage.db.open_table(name)
        day = shard_day(name)
        part = window.on_day(day) if day is not None else window  # a day shard holds that day only
        if texts is None:  # an older store not backfilled yet: scan the window
            return rank_plates(table, query, part.where(), near=near, top_k=top_k)
        # the texts are scored once for all tables; a shard whose whole day is in the
        # window reads the passes by text alone (the window is applied in Arrow)
        narrow = selective if day is None else not window.covers_day(day)
        return rank_scored(table, scores, part, top_k=top_k, selective=narrow)

    if not held:
        scored = merge_ranked(fan_out(rank, names), top_k)
    else:  # closed shards in memory, one by one in this thread (threads fought over the GIL)
        ranked: dict[str, list[tuple[float, PlateRow]]] = {}
        for name, (day, shard) in held.items():
            ranked[name] = rank_in_memory(shard, scores, window.on_day(day), top_k)
        others = [n for n in names if n not in ranked]
        ranked.update(zip(others, fan_out(rank, others), strict=True))
        scored = merge_ranked([ranked[n] for n in names], top_k)
    uris = segment_uris(storage, {row.segment_id for _, row in scored})
    return [
        PlateSighting(
            i + 1,
            row,
            cameras[row.camera_id].name if row.camera_id in cameras else "",
            score,
            uris.get(row.segment_id, ""),
        )
        for i, (score, row) in enumerate(scored)
    ]
