"""The plate memory tier (tasks/search/plates_memory.py): with closed day shards held in
memory, plate search returns what the LanceDB path returns, also when only some of the
window's shards are held (the others' texts come from ``plate_texts``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from citywatch.plates import parse_plate_query
from citywatch.schemas import CameraRow, PlateRow, rows_to_arrow
from citywatch.settings import Settings
from citywatch.shards import replace_segment_rows
from citywatch.storage import Storage
from citywatch.tables import cameras_table
from citywatch.tasks.plate_texts import write_plate_texts
from citywatch.tasks.search.faces import SearchFilters
from citywatch.tasks.search.plates import search_plates
from citywatch.tasks.search.plates_memory import start_plate_tier, stop_plate_tier

DAY0 = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)  # three closed days from here
CAMERAS = ("cam-a", "cam-b")
TEXTS = ("AB1234", "AB1284", "AB1235", "KT8080", "KT8088", "XY9999")


def _passes(day: int, k: int) -> list[PlateRow]:
    seg = f"cam-a/D{day}S{k}"
    out = []
    for i, text in enumerate(TEXTS[(day + k) % 3 :: 1 + k % 2]):
        ts = DAY0 + dt.timedelta(days=day, hours=9 + k, minutes=i)
        out.append(
            PlateRow(
                f"{seg}#p{i}",
                seg,
                CAMERAS[i % 2],
                ts,
                ts,
                ts,
                text,
                0.6 + 0.05 * (i % 5),
                [0.9] * len(text),
                3,
                False,
                (0.0, 0.0, 90.0, 30.0),
                f"{seg}#t{i}",
                f"thumbs/{seg}/{i}.jpg",
                None,
                None,
                "test",
            )  # fmt: skip
        )
    return out


def _store(tmp_path: Path) -> Storage:
    settings = Settings(
        storage__root=str(tmp_path / "data"),
        storage__state_dir=str(tmp_path / "state"),
        storage__shard_by_day=True,
    )
    storage = Storage(settings)
    cameras = [
        CameraRow(c, c.upper(), "north", None, None, "fixed", None, None, None, [], [], True) for c in CAMERAS
    ]
    cameras_table(storage.db).add(rows_to_arrow(cameras, CameraRow.SCHEMA))
    for day in range(3):
        for k in range(3):
            rows = rows_to_arrow(_passes(day, k), PlateRow.SCHEMA)
            write_plate_texts(storage.db, rows)
            replace_segment_rows(
                storage.db, PlateRow.TABLE, PlateRow.SCHEMA, [f"cam-a/D{day}S{k}"], rows, sharded=True
            )
    return storage


QUERIES = ("AB1234", "KT8O8O", "AB12*", "XY9999")
WINDOWS = (
    SearchFilters(),
    SearchFilters(since=DAY0 + dt.timedelta(days=1), until=DAY0 + dt.timedelta(days=2, hours=10)),
    SearchFilters(camera_ids=("cam-b",)),
)


def _all(storage: Storage) -> dict[tuple[str, int], list[tuple[str, float]]]:
    return {
        (q, i): [(s.plate.id, s.score) for s in search_plates(storage, parse_plate_query(q), w)]
        for q in QUERIES
        for i, w in enumerate(WINDOWS)
    }


def test_some_shards_held_some_not_gives_the_lancedb_answer(tmp_path: Path) -> None:
    storage = _store(tmp_path)
    off = _all(storage)
    assert sum(bool(v) for v in off.values()) >= 8
    tier = start_plate_tier(storage, 64)
    assert tier is not None and tier.wait_idle(60)
    try:
        assert len(tier.held()) == 3
        assert _all(storage) == off  # every shard from memory
        served = tier.stats().served
        # day 1 changes (a re-run of one segment): its shard is no longer answered from memory
        rows = rows_to_arrow(_passes(1, 0)[:1], PlateRow.SCHEMA)
        replace_segment_rows(storage.db, PlateRow.TABLE, PlateRow.SCHEMA, ["cam-a/D1S0"], rows, sharded=True)
        stop_plate_tier(storage)
        expected = _all(storage)  # LanceDB alone, after the change
        assert expected != off
        tier = start_plate_tier(storage, 64, preload=False)
        assert tier is not None
        for day in (0, 2):  # load days 0 and 2 only
            tier.get(f"plates_d{(DAY0 + dt.timedelta(days=day)):%Y%m%d}", -1)
        tier.wait_idle(60)
        assert sorted(tier.held()) == [f"plates_d{(DAY0 + dt.timedelta(days=d)):%Y%m%d}" for d in (0, 2)]
        assert _all(storage) == expected  # days 0 and 2 from memory, day 1 through LanceDB
        assert tier.stats().served > 0 and served > 0
    finally:
        stop_plate_tier(storage)
