"""Search indexes: built by the daily maintenance at size, refreshed, same search results."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from citywatch.flows.retention import run_retention
from citywatch.governance.auth import write_demo_users
from citywatch.schemas import FaceRow, rows_to_arrow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import faces_table, upsert
from citywatch.tasks.search.faces import Probe, SearchFilters, search_faces
from citywatch.tasks.search.indexes import ensure_search_indexes

T0 = dt.datetime(2026, 11, 26, 8, tzinfo=dt.UTC)
PEOPLE, PER_PERSON = 60, 20


def _faces(start: int, n: int, centres: np.ndarray, rng: np.random.Generator) -> list[FaceRow]:
    rows = []
    for i in range(start, start + n):
        person = i // PER_PERSON % len(centres)
        ts = T0 + dt.timedelta(seconds=i)
        rows.append(
            FaceRow(
                id=f"f-{i}",
                segment_id="cam-a/20261126T080000Z",
                camera_id=f"cam-{i % 3}",
                ts=ts,
                bbox=(0.0, 0.0, 80.0, 96.0),
                det_score=0.9,
                quality=0.5,
                embedding=(centres[person] + rng.normal(0, 0.03, 128)).astype(np.float32),
                track_id=f"t-{i}",
                track_start=ts,
                track_end=ts,
                thumb_uri="",
                lat=None,
                lon=None,
                model="m",
            )
        )
    return rows


def _search(storage: Storage, settings: Settings, vector: np.ndarray) -> list[str]:
    probe = Probe(source="probe", sha256="", face=None, embedding=vector, faces_in_photo=1)  # type: ignore[arg-type]
    return [
        s.face_id for s in search_faces(storage, settings, probe, SearchFilters(), top_k=10, threshold=0.55)
    ]


def test_vector_index_at_size_same_results_and_new_rows_folded_in(tmp_path: Path) -> None:
    settings = Settings(storage__root=str(tmp_path), user="demo-admin", faces__ann_min_rows=1000)
    storage = Storage(settings)
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 1, (PEOPLE, 128)) * 0.25
    upsert(
        faces_table(storage.db, 128),
        rows_to_arrow(_faces(0, PEOPLE * PER_PERSON, centres, rng), FaceRow.schema(128)),
    )
    probes = [(centres[p] + rng.normal(0, 0.03, 128)).astype(np.float32) for p in (0, 17, 42)]
    exact = [_search(storage, settings, p) for p in probes]
    assert all(len(ids) == 10 for ids in exact)

    report = ensure_search_indexes(storage, settings)
    assert any(c.startswith("faces.embedding (IVF_RQ") for c in report.created)
    assert {"faces.ts (BTree)", "faces.camera_id (Bitmap)"} <= set(report.created)
    table = storage.db.open_table("faces")
    assert {i.index_type for i in table.list_indices()} == {"IvfRq", "BTree", "Bitmap"}
    # the person's 10 nearest faces are found through the index too (refined: exact order)
    assert [_search(storage, settings, p) for p in probes] == exact
    assert str(ensure_search_indexes(storage, settings)) == "up to date"

    upsert(table, rows_to_arrow(_faces(PEOPLE * PER_PERSON, 40, centres, rng), FaceRow.schema(128)))
    assert ensure_search_indexes(storage, settings).refreshed == ["faces"]
    table = storage.db.open_table("faces")  # a fresh handle sees the optimised version
    assert all(table.index_stats(i.name).num_unindexed_rows == 0 for i in table.list_indices())


def test_small_tables_stay_exact_and_retention_reports_the_indexes(tmp_path: Path) -> None:
    settings = Settings(storage__root=str(tmp_path), user="demo-admin")  # default: 100k rows
    storage = Storage(settings)
    write_demo_users(storage)
    rng = np.random.default_rng(4)
    upsert(
        faces_table(storage.db, 128),
        rows_to_arrow(_faces(0, 50, rng.normal(0, 0.25, (5, 128)), rng), FaceRow.schema(128)),
    )
    summary = run_retention(settings, now=T0)
    assert summary.indexes.created == ["faces.ts (BTree)", "faces.camera_id (Bitmap)"]
    assert "IvfRq" not in {i.index_type for i in storage.db.open_table("faces").list_indices()}
