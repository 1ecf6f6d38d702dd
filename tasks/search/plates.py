"""Plate search: exact first, then OCR-aware fuzzy matches and partial patterns."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from citywatch.errors import BadInputError
from citywatch.filters import all_of, compare, is_in, where_clause
from citywatch.plates import CONFUSABLE_PAIRS, PlateQuery, match_score, normalise_plate
from citywatch.schemas import CameraRow, PlateRow, PlateTextRow, arrow_to_rows
from citywatch.sightings import PlateSighting
from citywatch.storage import Storage
from citywatch.tables import cameras_table, has_table
from citywatch.tasks.plate_texts import day_of, texts_complete
from citywatch.tasks.search.faces import SearchFilters, camera_filter_ids, segment_uris

if TYPE_CHECKING:
    from lancedb.table import Table

EARTH_RADIUS_M = 6_371_000.0


@dataclass(frozen=True, slots=True)
class Near:
    lat: float
    lon: float
    radius_m: float


def parse_near(text: str) -> Near:
    """``LAT,LON,RADIUS_M`` from the CLI."""
    parts = text.split(",")
    try:
        lat, lon, radius = (float(p) for p in parts)
    except ValueError as exc:
        raise BadInputError(f"--near {text!r}: expected LAT,LON,RADIUS_M (e.g. 22.28,114.15,500)") from exc
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or not 0 < radius <= 100_000:
        raise BadInputError(f"--near {text!r}: position out of range or radius not in (0, 100 km]")
    return Near(lat, lon, radius)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def _near_clause(near: Near) -> str:
    dlat = near.radius_m / 111_320.0
    dlon = dlat / max(0.01, math.cos(math.radians(near.lat)))
    return " AND ".join(
        [
            compare("lat", ">=", near.lat - dlat),
            compare("lat", "<=", near.lat + dlat),
            compare("lon", ">=", near.lon - dlon),
            compare("lon", "<=", near.lon + dlon),
        ]
    )


RANK_COLUMNS = ["id", "text", "confidence", "ts"]  # what ranking reads of every row in the window
ID_CHUNK = 500
TEXT_CHUNK = 1000  # texts per ``text IN (...)`` read
MAX_IN_TEXTS = 20_000  # more matching texts than this (a broad pattern): one scan of the window


@dataclass(frozen=True, slots=True)
class DayRange:
    """The UTC days a search window touches (``None``: unbounded on that side)."""

    first: dt.datetime | None
    last: dt.datetime | None

    def clause(self) -> str | None:
        return all_of(
            compare("day", ">=", self.first) if self.first is not None else None,
            compare("day", "<=", self.last) if self.last is not None else None,
        )


def rank_plates(
    table: Table, query: PlateQuery, where: str | None, *, near: Near | None, top_k: int
) -> list[tuple[float, PlateRow]]:
    """The ``top_k`` plate rows under ``where`` that match ``query``, best first
    (score, then higher confidence, then earlier, then the table's order).

    Reads four narrow columns of the rows in the window (plus lat/lon with ``near``),
    scores each distinct text once (a city's plates repeat: one score per plate, not
    per pass), and reads whole rows only for the ``top_k`` kept.
    """
    window = _read(table, where, near)
    if not window.num_rows:
        return []
    scores = score_texts(query, pc.unique(window.column("text")).drop_null().to_numpy(zero_copy_only=False))
    return _top(table, window, scores, near, top_k)


def rank_plates_by_text(
    table: Table,
    texts: Table,
    query: PlateQuery,
    where: str | None,
    *,
    days: DayRange,
    near: Near | None,
    top_k: int,
) -> list[tuple[float, PlateRow]]:
    """:func:`rank_plates` through ``plate_texts`` (``texts``, known complete): score the
    distinct texts of the window's days, then read only the passes of the texts that
    match (``text IN (...)`` under ``where``, best score first, stopping once ``top_k``
    passes are in: every later one scores worse). Same rows, same order."""
    day_clause = days.clause()
    day_texts = texts.search().where(day_clause) if day_clause else texts.search()
    found = day_texts.select(["text"]).limit(None).to_arrow().column("text")
    scores = score_texts(query, pc.unique(found).drop_null().to_numpy(zero_copy_only=False))
    if not scores:
        return []
    if len(scores) > MAX_IN_TEXTS:  # a broad pattern: one scan beats many IN lists
        return _top(table, _read(table, where, near), scores, near, top_k)
    parts: list[pa.Table] = []
    kept = 0
    for score in sorted(set(scores.values())):
        level = sorted(text for text, s in scores.items() if s == score)
        for start in range(0, len(level), TEXT_CHUNK):
            part = _read(table, all_of(where, is_in("text", level[start : start + TEXT_CHUNK])), near)
            kept += int(within(near, part.column("lat"), part.column("lon")).sum()) if near else part.num_rows
            parts.append(part)
        if kept >= top_k:
            break
    return _top(table, pa.concat_tables(parts), scores, near, top_k)


def score_texts(query: PlateQuery, distinct: np.ndarray) -> dict[str, float]:
    """The score of each text (distinct) within the query's edits."""
    distinct = distinct[
        lower_bounds(query.text, distinct, pattern=query.is_pattern) <= query.max_edits + 1e-9
    ]
    scores: dict[str, float] = {}
    for text in distinct.tolist():
        if could_match(query, text) and (score := match_score(query, text)) is not None:
            scores[text] = score
    return scores


def _read(table: Table, where: str | None, near: Near | None) -> pa.Table:
    """The ranking columns (and the row's address, the last tie-break) of the rows under ``where``."""
    scan = table.search().where(where) if where else table.search()
    columns = RANK_COLUMNS + (["lat", "lon"] if near else [])
    return scan.select(columns).with_row_id(True).limit(None).to_arrow()


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
    order = pc.sort_indices(
        hits,
        sort_keys=[
            ("score", "ascending"),
            ("confidence", "descending"),
            ("ts", "ascending"),
            ("_rowid", "ascending"),
        ],
    )
    top = hits.take(order[:top_k])
    kept = list(zip(top.column("score").to_pylist(), top.column("id").to_pylist(), strict=True))
    rows: dict[str, PlateRow] = {}
    ids = [row_id for _, row_id in kept]
    for start in range(0, len(ids), ID_CHUNK):
        found = table.search().where(is_in("id", ids[start : start + ID_CHUNK])).limit(None).to_arrow()
        rows.update((row.id, row) for row in arrow_to_rows(found, PlateRow))
    return [(score, rows[row_id]) for score, row_id in kept if row_id in rows]


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


CLASS_OF = _class_table()
BOUND_WIDTH = 16  # texts up to this many bytes get the vectorised bound; longer ones the full distance
BOUND_CHUNK = 100_000


def _class_counts(texts: np.ndarray) -> np.ndarray:
    """Per text, how many characters of each class it holds (separators and padding: class 0,
    dropped)."""
    raw = texts.astype(f"S{BOUND_WIDTH}").view(np.uint8).reshape(len(texts), BOUND_WIDTH)
    codes = CLASS_OF[raw] + np.arange(len(texts))[:, None] * (CLASS_OF.max() + 1)
    counts = np.bincount(codes.ravel(), minlength=len(texts) * (CLASS_OF.max() + 1))
    return counts.reshape(len(texts), CLASS_OF.max() + 1)[:, 1:]


def lower_bounds(query: str, texts: np.ndarray, *, pattern: bool = False) -> np.ndarray:
    """A lower bound of the distance :func:`citywatch.plates.match_score` computes from
    ``query`` to each text (``pattern``: ``query`` holds ``*``/``?``).

    Count characters by class (confusables share one). Every query character that no
    text character of its class can stand for is deleted or swapped for another class:
    each costs a whole edit, so the distance is at least the query's shortfall; the
    same holds for the text's characters the query cannot cover (exact queries only: a
    pattern's ``*`` and ``?`` absorb them). Texts that are not short ASCII get 0 (no
    bound: the full distance decides).
    """
    bounds = np.zeros(len(texts))
    if not len(texts):
        return bounds
    short = np.array([t.isascii() and len(t) <= BOUND_WIDTH for t in texts.tolist()])
    literals = query.replace("*", "").replace("?", "") if pattern else query
    wanted = _class_counts(np.array([literals], dtype=str))[0]
    index = np.flatnonzero(short)
    for start in range(0, len(index), BOUND_CHUNK):
        part = index[start : start + BOUND_CHUNK]
        surplus = _class_counts(texts[part].astype(str)) - wanted
        shortfall = np.clip(-surplus, 0, None).sum(axis=1)
        bounds[part] = shortfall if pattern else np.maximum(shortfall, np.clip(surplus, 0, None).sum(axis=1))
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


def within(near: Near, lats: pa.ChunkedArray, lons: pa.ChunkedArray) -> np.ndarray:
    """Which positions lie within ``near`` (great-circle distance; no position: no)."""
    lat = lats.to_numpy(zero_copy_only=False).astype(float)
    lon = lons.to_numpy(zero_copy_only=False).astype(float)
    p1, p2 = math.radians(near.lat), np.radians(lat)
    dp, dl = p2 - p1, np.radians(lon - near.lon)
    h = np.sin(dp / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    with np.errstate(invalid="ignore"):
        metres = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(h))
    return np.nan_to_num(metres, nan=np.inf) <= near.radius_m


def search_plates(
    storage: Storage, query: PlateQuery, filters: SearchFilters, *, near: Near | None = None, top_k: int = 50
) -> list[PlateSighting]:
    """Plate passes matching ``query`` under the filters, exact matches first."""
    if not has_table(storage.db, PlateRow.TABLE):
        return []
    cameras = {c.id: c for c in arrow_to_rows(cameras_table(storage.db).to_arrow(), CameraRow)}
    ids = camera_filter_ids(cameras, filters)
    where = all_of(
        where_clause(camera_ids=ids, since=filters.since, until=filters.until),
        _near_clause(near) if near else None,
    )
    table = storage.db.open_table(PlateRow.TABLE)
    if texts_complete(storage.db, table):  # rank the day's distinct texts, read their passes
        days = DayRange(
            day_of(filters.since) if filters.since else None, day_of(filters.until) if filters.until else None
        )
        texts = storage.db.open_table(PlateTextRow.TABLE)
        scored = rank_plates_by_text(table, texts, query, where, days=days, near=near, top_k=top_k)
    else:  # an older store not backfilled yet: scan the window's plates
        scored = rank_plates(table, query, where, near=near, top_k=top_k)
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
