"""Day shards (``storage.shard_by_day``): the same rows, searches, alerts and exactly-once
writes as one table, and retention by whole days.

The first tests write rows directly (fast); the last ones index the sample through the
real flow (Prefect server + 2 Dask workers) with sharding on and a camera's segments
committed together (``index.segments_per_task``), and compare with the session's
unsharded, one-segment-per-commit index of the same footage.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from citywatch.governance.alerts import alerts_table
from citywatch.governance.auth import write_demo_users
from citywatch.sample.dataset import load_ground_truth
from citywatch.schemas import FaceRow, rows_to_arrow
from citywatch.shards import days_between, index_tables, read_index, replace_segment_rows, shard_name
from citywatch.storage import Storage
from citywatch.tables import table_names
from citywatch.tasks.retention import add_hold, purge_index
from citywatch.tasks.search.faces import SearchFilters
from citywatch.tasks.sweep.run import sweep_once
from tests.conftest import CASE, Indexed, as_user, settings_for
from tests.watchlist_support import Faces, enrol_active, face_row, make_settings
from tests.watchlist_support import faces as faces  # the module fixture

MIDNIGHT = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)  # a day after watchlist_support's NOW


def _write(storage: Storage, faces: Faces, rows: list[FaceRow], segment: str, *, sharded: bool) -> None:
    dim = faces.model.embedder.dim
    replace_segment_rows(
        storage.db,
        "faces",
        FaceRow.schema(dim),
        [segment],
        rows_to_arrow(rows, FaceRow.schema(dim)),
        sharded=sharded,
        days=days_between(MIDNIGHT - dt.timedelta(seconds=20), MIDNIGHT + dt.timedelta(seconds=20)),
    )


def _across_midnight(faces: Faces, vector: np.ndarray, n: int = 6) -> list[FaceRow]:
    """One track of ``n`` faces, half before and half after midnight (segment cam-a/S1)."""
    start = MIDNIGHT - dt.timedelta(seconds=n // 2)
    return [face_row(faces, vector, index=i, ts=start) for i in range(n)]


def _face_ids(storage: Storage) -> list[str]:
    found = read_index(storage.db, "faces", columns=["id"])
    return sorted(found.column("id").to_pylist()) if found is not None else []


def test_tables_of_a_window_are_the_unsharded_one_and_its_days() -> None:
    names = ["faces", "faces_d20261120", "faces_d20261121", "faces_d20261122", "plates_d20261121", "faces_x"]
    since, until = MIDNIGHT, MIDNIGHT + dt.timedelta(hours=25)
    assert index_tables(None, "faces", since, until, names=names) == [  # type: ignore[arg-type]
        "faces",
        "faces_d20261121",
        "faces_d20261122",
    ]
    assert index_tables(None, "plates", names=names) == ["plates_d20261121"]  # type: ignore[arg-type]
    assert shard_name("faces", MIDNIGHT.date()) == "faces_d20261121"
    with pytest.raises(ValueError, match="not sharded"):
        shard_name("segments", MIDNIGHT.date())


def test_a_segment_across_midnight_lands_in_both_days_and_a_rerun_replaces_it(
    tmp_path: Path, faces: Faces
) -> None:
    storage = Storage(make_settings(tmp_path))
    _write(storage, faces, _across_midnight(faces, faces.obama), "cam-a/S1", sharded=False)  # before sharding
    rows = _across_midnight(faces, faces.obama)
    _write(storage, faces, rows, "cam-a/S1", sharded=True)
    names = set(table_names(storage.db))
    assert {"faces_d20261120", "faces_d20261121"} <= names
    assert storage.db.open_table("faces").count_rows() == 0  # the unsharded copy went
    assert _face_ids(storage) == sorted(r.id for r in rows)
    # a re-run that now finds fewer faces (all after midnight) leaves no stale row behind
    later = [r for r in rows if r.ts >= MIDNIGHT]
    _write(storage, faces, later, "cam-a/S1", sharded=True)
    assert _face_ids(storage) == sorted(r.id for r in later)
    assert storage.db.open_table("faces_d20261120").count_rows() == 0


def test_the_sweep_alerts_on_rows_in_any_shard_once(tmp_path: Path, faces: Faces) -> None:
    results = {}
    for sharded in (False, True):
        storage = Storage(make_settings(tmp_path / str(sharded)))
        enrol_active(storage, faces)
        _write(storage, faces, _across_midnight(faces, faces.obama), "cam-a/S1", sharded=sharded)
        stranger = [face_row(faces, faces.biden, segment="S2", track=2, ts=MIDNIGHT + dt.timedelta(hours=3))]
        _write(storage, faces, stranger, "cam-a/S2", sharded=sharded)
        first = sweep_once(storage, storage.settings, now=MIDNIGHT + dt.timedelta(hours=4))
        again = sweep_once(storage, storage.settings, now=MIDNIGHT + dt.timedelta(hours=4, seconds=10))
        assert (first.faces_read, again.faces_read) == (7, 0)
        alerts = alerts_table(storage.db).to_arrow().column("sighting_id").to_pylist()
        results[sharded] = (alerts, again.alerts_new)
    assert results[True] == results[False]
    assert len(results[True][0]) == 1 and results[True][0][0].startswith("cam-a/S1#")
    assert results[True][1] == 0


def test_retention_drops_whole_expired_days_and_keeps_held_tracks(tmp_path: Path, faces: Faces) -> None:
    storage = Storage(make_settings(tmp_path))
    thumbs = []
    for day in range(3):
        ts = MIDNIGHT + dt.timedelta(days=day, hours=12)
        rows = [face_row(faces, faces.biden, segment=f"D{day}", track=day, index=i, ts=ts) for i in range(2)]
        rows = [replace(row, thumb_uri=storage.write_bytes(row.thumb_uri, b"jpeg")) for row in rows]
        thumbs += [row.thumb_uri for row in rows]
        _write(storage, faces, rows, f"cam-a/D{day}", sharded=True)
    add_hold(storage, "CASE-1", "cam-a/D1#t0001", "alice", "evidence")
    now = MIDNIGHT + dt.timedelta(days=4)  # 2-day retention: days 0 and 1 wholly expired, day 2 kept
    counts = purge_index(storage, "faces", 2, now, {"cam-a/D1#t0001"})
    names = table_names(storage.db)
    assert "faces_d20261121" not in names  # dropped whole
    assert {"faces_d20261122", "faces_d20261123"} <= set(names)  # held track's day stays; day 2 in retention
    assert (counts.shards_dropped, counts.deleted_rows, counts.held_rows) == (1, 2, 2)
    assert not storage.exists(thumbs[0]) and storage.exists(thumbs[2]) and storage.exists(thumbs[4])


# --- the sample through the real flow ---------------------------------------------------


@pytest.fixture(scope="module")
def sharded(prefect_api: str, sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Indexed:
    from citywatch.flows.index_footage import run_index

    root = tmp_path_factory.mktemp("sharded") / "data"
    shutil.copytree(sample_dir, root)
    settings = settings_for(root, root.parent, storage__shard_by_day=True, index__segments_per_task=2)
    write_demo_users(Storage(settings))
    return Indexed(root, settings, run_index(settings))


def _ids(settings: object, base: str) -> list[str]:
    found = read_index(Storage(settings).db, base, columns=["id"])  # type: ignore[arg-type]
    return sorted(found.column("id").to_pylist()) if found is not None else []


@pytest.mark.slow
def test_sharded_index_holds_the_same_rows_in_day_tables(sharded: Indexed, indexed: Indexed) -> None:
    names = table_names(Storage(sharded.settings).db)
    assert "faces" not in names and "plates" not in names
    assert any(n.startswith("faces_d") for n in names) and any(n.startswith("plates_d") for n in names)
    for base in ("faces", "plates"):
        assert _ids(sharded.settings, base) == _ids(indexed.settings, base), base


@pytest.mark.slow
def test_sharded_searches_give_the_same_sightings(sharded: Indexed, indexed: Indexed) -> None:
    from citywatch.flows.search import face_search, plate_search

    truth = load_ground_truth(indexed.root / "sample" / "ground_truth.json")
    start = min(s.start for s in truth.segments)
    windows = [SearchFilters(), SearchFilters(since=start, until=start + dt.timedelta(seconds=40))]
    for person in [p for p in truth.people if p.in_footage][:3]:
        for window in windows:
            got = {}
            for name, store in (("sharded", sharded), ("one table", indexed)):
                user = as_user(store.settings, "demo-investigator")
                found = face_search(str(store.root / person.probe), window, user, **CASE).sightings
                got[name] = [(s.face_id, round(s.distance, 5)) for s in found]
            assert got["sharded"] == got["one table"], person.person_id
            assert got["sharded"] or window.since is not None
    for plate in sorted({v.plate for v in truth.vehicles})[:6]:
        got = {}
        for name, store in (("sharded", sharded), ("one table", indexed)):
            user = as_user(store.settings, "demo-investigator")
            passes = plate_search(plate, SearchFilters(), user, **CASE).sightings
            got[name] = [(s.plate.id, s.score) for s in passes]
        assert got["sharded"] == got["one table"] and got["sharded"], plate
