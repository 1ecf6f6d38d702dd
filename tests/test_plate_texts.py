"""Plate search through ``plate_texts`` (issue 19 item 5): distinct texts per UTC day,
written before the passes, backfilled for older stores, trimmed by retention in whole
days; the same sightings, in the same order, as scanning the plates. Real LanceDB."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pyarrow as pa
import pytest

from citywatch.plates import parse_plate_query
from citywatch.schemas import CameraRow, PlateRow, PlateTextRow, rows_to_arrow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import cameras_table, plate_texts_table, plates_table, upsert
from citywatch.tasks.plate_texts import (
    backfill_plate_texts,
    purge_plate_texts,
    text_rows,
    texts_complete,
    write_plate_texts,
)
from citywatch.tasks.retention import purge_table
from citywatch.tasks.search import plates as plate_search
from citywatch.tasks.search.faces import SearchFilters
from citywatch.tasks.search.indexes import ensure_search_indexes
from citywatch.tasks.search.plate_window import Near, PlateWindow
from citywatch.tasks.search.plates import rank_plates, rank_plates_by_text, search_plates
from tests.plate_support import plate_pass

DAY0 = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
PLATES = [
    "AB1234",
    "AB1284",
    "A81234",
    "KT8080",
    "HX517",
    "HX5I7",
    "PM2468",
    "CY903",
    "ZZ1",
    "AB12",
    "AB1299",
]
CAMERAS = ("cam-0", "cam-1", "cam-2", "cam-3")


def _rows(n: int, seed: int = 7) -> list[PlateRow]:
    """``n`` passes over 4 days (many near midnight), a few texts often, noise texts rarely."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        text = rng.choice(PLATES) if rng.random() < 0.7 else f"{rng.choice('ABKXY')}{rng.choice('BTZ')}{i}"
        second = rng.choice([rng.randrange(0, 4 * 86400), rng.randrange(86400 - 60, 86400 + 60)])
        ts = DAY0 + dt.timedelta(seconds=second)
        confidence = round(rng.uniform(0.5, 1.0), 1)  # ties on purpose
        out.append(plate_pass(i, CAMERAS[i % 4], ts, text, confidence, rng))
    return out


def _store(root: Path, rows: list[PlateRow], *, with_texts: bool) -> Storage:
    """A store whose plates were written in batches the way indexing does (texts first),
    or (``with_texts=False``) by code older than the texts table."""
    storage = Storage(Settings(storage__root=str(root)))
    cameras = [
        CameraRow(
            cid,
            cid,
            "north" if cid < "cam-2" else "south",
            None,
            None,
            "fixed",
            None,
            None,
            None,
            [],
            [],
            True,
        )
        for cid in CAMERAS
    ]
    upsert(cameras_table(storage.db), rows_to_arrow(cameras, CameraRow.SCHEMA))
    for start in range(0, len(rows), 500):
        data = rows_to_arrow(rows[start : start + 500], PlateRow.SCHEMA)
        if with_texts:
            write_plate_texts(storage.db, data)
        plates_table(storage.db).add(data)
    return storage


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Storage:
    return _store(tmp_path_factory.mktemp("plates"), _rows(4000), with_texts=True)


def _same(storage: Storage, text: str, window: PlateWindow, top_k: int) -> None:
    table = storage.db.open_table(PlateRow.TABLE)
    texts = storage.db.open_table(PlateTextRow.TABLE)
    query = parse_plate_query(text, max_edits=2.0 if text.startswith("HX") else 1.0)
    scan = rank_plates(table, query, window.where(), near=window.near, top_k=top_k)
    got = rank_plates_by_text(table, texts, query, window, top_k=top_k)
    assert [(s, r.id) for s, r in got] == [(s, r.id) for s, r in scan]
    assert all(isinstance(r, PlateRow) for _, r in got)


WINDOWS = [  # (since, until): none, one whole day, across midnight, open-ended
    (None, None),
    (DAY0 + dt.timedelta(days=1), DAY0 + dt.timedelta(days=2) - dt.timedelta(microseconds=1)),
    (DAY0 + dt.timedelta(hours=23, minutes=59), DAY0 + dt.timedelta(days=1, seconds=30)),
    (DAY0 + dt.timedelta(days=2, hours=5), None),
]
NEAR = Near(22.28, 114.15, 600.0)


READS = {  # (TEXT_ONLY_PASSES, SELECTIVE_DAYS)
    "all-passes-window-in-arrow": (50_000, 0.0),
    "all-passes-window-in-query": (50_000, 1.0),
    "most-confident-first-window-in-arrow": (0, 0.0),
    "most-confident-first-window-in-query": (0, 1.0),
    "mixed": (30, 0.25),
}


@pytest.fixture(params=list(READS))
def text_only_passes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How the passes of the matching texts are read (see ``plates._passes``)."""
    passes, share = READS[request.param]
    monkeypatch.setattr(plate_search, "TEXT_ONLY_PASSES", passes)
    monkeypatch.setattr(plate_search, "SELECTIVE_DAYS", share)
    return str(request.param)


@pytest.mark.parametrize("text", ["AB1234", "KT8O8O", "AB12*", "?Y903", "HX517", "NOPE99"])
@pytest.mark.parametrize("window", range(len(WINDOWS)))
@pytest.mark.parametrize("top_k", [5, 50, 5000])
def test_ranking_through_texts_matches_the_scan(
    store: Storage, text: str, window: int, top_k: int, text_only_passes: str
) -> None:
    since, until = WINDOWS[window]
    _same(store, text, PlateWindow(since=since, until=until), top_k)


@pytest.mark.parametrize("text", ["AB1234", "AB12*", "KT8O8O"])
def test_cameras_and_near_match_the_scan(store: Storage, text: str, text_only_passes: str) -> None:
    since, until = WINDOWS[2]
    _same(store, text, PlateWindow(("cam-1", "cam-3"), since, until), 50)
    _same(store, text, PlateWindow(("cam-1", "cam-3"), since, until, NEAR), 20)
    _same(store, text, PlateWindow(near=NEAR), 5000)
    _same(store, text, PlateWindow(("cam-0",), since=WINDOWS[1][0], near=NEAR), 5000)


def test_broad_matches_fall_back_to_one_scan_and_small_chunks_agree(
    store: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    for limit, chunk in ((3, 1000), (20_000, 2)):
        monkeypatch.setattr(plate_search, "MAX_IN_TEXTS", limit)
        monkeypatch.setattr(plate_search, "TEXT_CHUNK", chunk)
        for text in ("A*", "AB12*", "AB1234"):
            _same(store, text, PlateWindow(), 5000)
            _same(store, text, PlateWindow(("cam-2",), *WINDOWS[2], NEAR), 5000)


def test_search_plates_uses_the_texts_and_filters(store: Storage) -> None:
    table = store.db.open_table(PlateRow.TABLE)
    assert texts_complete(store.db, table)  # made with this code: complete from the start
    since, until = WINDOWS[2]
    filters = SearchFilters(district="south", since=since, until=until)
    where = PlateWindow(("cam-2", "cam-3"), since, until).where()
    expected = [r.id for _, r in rank_plates(table, parse_plate_query("AB1234"), where, near=None, top_k=50)]
    got = [s.plate.id for s in search_plates(store, parse_plate_query("AB1234"), filters)]
    assert got == expected and got


def test_day_rows_split_at_utc_midnight_and_writing_twice_adds_nothing(tmp_path: Path) -> None:
    ts = pa.array(
        [DAY0 - dt.timedelta(microseconds=1), DAY0, DAY0 + dt.timedelta(hours=23), None],
        PlateRow.SCHEMA.field("ts").type,
    )
    rows = text_rows(ts, pa.array(["AB1", "AB1", "AB1", "CD2"])).sort_by("id").to_pylist()
    assert [r["id"] for r in rows] == ["-|CD2", "2026-11-19|AB1", "2026-11-20|AB1"]
    assert rows[2]["day"] == DAY0
    passes = _rows(300, seed=3)
    storage = _store(tmp_path, passes, with_texts=True)
    texts = plate_texts_table(storage.db)
    count = texts.count_rows()
    assert count == len({(p.ts.date(), p.text) for p in passes})
    assert write_plate_texts(storage.db, rows_to_arrow(passes[:200], PlateRow.SCHEMA)) == 0  # a re-run
    assert texts.count_rows() == count


def test_an_older_store_searches_correctly_before_and_after_the_backfill(tmp_path: Path) -> None:
    storage = _store(tmp_path, _rows(1500, seed=5), with_texts=False)
    table = storage.db.open_table(PlateRow.TABLE)
    query = parse_plate_query("AB12*")
    filters = SearchFilters(since=DAY0 + dt.timedelta(hours=20), until=DAY0 + dt.timedelta(days=2))
    expected = [
        r.id
        for _, r in rank_plates(
            table,
            query,
            PlateWindow(since=filters.since, until=filters.until).where(),
            near=None,
            top_k=50,
        )
    ]
    # a newer indexer wrote some texts already: incomplete, so search still scans
    write_plate_texts(storage.db, rows_to_arrow(_rows(20, seed=9), PlateRow.SCHEMA))
    assert not texts_complete(storage.db, table)
    assert [s.plate.id for s in search_plates(storage, query, filters)] == expected
    report = ensure_search_indexes(storage, storage.settings)  # the daily maintenance
    assert any(c.startswith("plate_texts (") for c in report.created)
    assert {"plates.text (BTree)", "plate_texts.day (BTree)", "plate_texts.id (BTree)"} <= set(report.created)
    assert texts_complete(storage.db, storage.db.open_table(PlateRow.TABLE))
    assert [s.plate.id for s in search_plates(storage, query, filters)] == expected
    assert backfill_plate_texts(storage.db) is None  # once
    # a plates table replaced since the backfill (older than the mark): not trusted
    storage.db.drop_table(PlateRow.TABLE)
    plates_table(storage.db).add(rows_to_arrow(_rows(10, seed=1), PlateRow.SCHEMA))
    assert not texts_complete(storage.db, storage.db.open_table(PlateRow.TABLE))


def test_retention_drops_whole_expired_days_but_keeps_held_passes_texts(tmp_path: Path) -> None:
    rows = _rows(800, seed=11)
    storage = _store(tmp_path, rows, with_texts=True)
    now = DAY0 + dt.timedelta(days=32, hours=12)  # plates kept 30 days: cutoff DAY0 + 2 d 12 h
    kept_row = next(r for r in rows if r.ts < DAY0 + dt.timedelta(days=1))  # a case holds this pass
    held = {kept_row.track_id}
    purge_table(storage, PlateRow.TABLE, 30, now, held)
    deleted = purge_plate_texts(storage.db, 30, now)
    left = plate_texts_table(storage.db).to_arrow().to_pylist()
    first_kept = DAY0 + dt.timedelta(days=2)  # day 2 is partly inside retention: kept whole
    expected_days = {r.ts.date() for r in rows if r.ts >= first_kept} | {kept_row.ts.date()}
    assert {r["day"].date() for r in left} == expected_days
    assert f"{kept_row.ts:%Y-%m-%d}|{kept_row.text}" in {r["id"] for r in left}
    assert deleted == len({(r.ts.date(), r.text) for r in rows}) - len(left)
    assert purge_plate_texts(storage.db, 30, now) == 0
    # search still finds the held pass and agrees with the scan
    table = storage.db.open_table(PlateRow.TABLE)
    _same(storage, kept_row.text, PlateWindow(), 5000)
    assert kept_row.id in {
        r.id for _, r in rank_plates(table, parse_plate_query(kept_row.text), None, near=None, top_k=5000)
    }
