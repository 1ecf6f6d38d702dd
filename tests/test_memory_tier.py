"""The memory tier of closed face day shards (tasks/search/memory_tier.py, faces_memory.py).

Rows are written to day shards as indexing writes them; a search with the tier loaded
must return what the LanceDB path returns, and a shard changed after loading (a re-run,
retention) must never be answered from memory.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from citywatch.models.base import FaceDetection
from citywatch.schemas import CameraRow, FaceRow, rows_to_arrow
from citywatch.settings import Settings
from citywatch.shards import replace_segment_rows
from citywatch.sightings import Sighting
from citywatch.storage import Storage
from citywatch.tables import cameras_table
from citywatch.tasks.search.faces import Probe, SearchFilters, search_faces
from citywatch.tasks.search.faces_memory import face_tier, start_face_tier, stop_face_tier

DIM = 128
DAY0 = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)  # three closed days from here
THRESHOLD = 0.6
RNG = np.random.default_rng(7)
CAMERAS = ("cam-a", "cam-b")


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


PEOPLE = [_unit(RNG.normal(size=DIM)) for _ in range(6)]


def _track(person: int, camera: str, day: int, n: int, track: int, px: float = 80.0) -> list[FaceRow]:
    """One track of ``n`` faces of ``person`` (noisy copies) on ``day``."""
    seg = f"{camera}/D{day}T{track}"
    start = DAY0 + dt.timedelta(days=day, hours=8 + track % 10, minutes=track)
    embeddings = [_unit(PEOPLE[person] + RNG.normal(scale=0.03, size=DIM)) for _ in range(n)]
    template = _unit(np.mean(embeddings, axis=0))
    return [
        FaceRow(
            id=f"{seg}#t0001@{i:07d}",
            segment_id=seg,
            camera_id=camera,
            ts=start + dt.timedelta(seconds=i),
            bbox=(0.0, 0.0, px, px),
            det_score=0.9,
            quality=0.5,
            embedding=e,
            track_id=f"{seg}#t0001",
            track_start=start,
            track_end=start + dt.timedelta(seconds=n),
            thumb_uri=f"thumbs/{seg}/{i}.jpg",
            lat=None,
            lon=None,
            model="test",
            template=template if n > 1 else np.empty(0, np.float32),
        )
        for i, e in enumerate(embeddings)
    ]


def _write(storage: Storage, rows: list[FaceRow]) -> None:
    by_segment: dict[str, list[FaceRow]] = {}
    for row in rows:
        by_segment.setdefault(row.segment_id, []).append(row)
    for segment, seg_rows in by_segment.items():
        schema = FaceRow.schema(DIM)
        replace_segment_rows(
            storage.db, "faces", schema, [segment], rows_to_arrow(seg_rows, schema), sharded=True
        )


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    settings = Settings(
        storage__root=str(tmp_path / "data"),
        storage__state_dir=str(tmp_path / "state"),
        storage__shard_by_day=True,
    )
    store = Storage(settings)
    cameras = [
        CameraRow(c, c.upper(), "north", None, None, "fixed", None, None, None, [], [], True) for c in CAMERAS
    ]
    cameras_table(store.db).add(rows_to_arrow(cameras, CameraRow.SCHEMA))
    rows: list[FaceRow] = []
    track = 0
    for day in range(3):
        for person in range(6):
            for camera in CAMERAS:
                track += 1
                n = 1 + track % 4  # one-face tracks (no template) and longer ones
                rows += _track(person, camera, day, n, track, px=30.0 if track % 7 == 0 else 80.0)
    _write(store, rows)
    return store


def _probe(person: int) -> Probe:
    face = FaceDetection(bbox=(0.0, 0.0, 90.0, 90.0), score=0.9, landmarks=())
    vector = _unit(PEOPLE[person] + RNG.normal(scale=0.02, size=DIM))
    return Probe(f"p{person}.jpg", "0" * 64, face, vector, 1)


def _search(storage: Storage, probe: Probe, filters: SearchFilters) -> list[tuple[str, float]]:
    found: list[Sighting] = search_faces(
        storage, storage.settings, probe, filters, top_k=5, threshold=THRESHOLD
    )
    return [(s.face_id, round(s.distance, 5)) for s in found]


WINDOWS = [
    SearchFilters(),
    SearchFilters(since=DAY0 + dt.timedelta(days=1), until=DAY0 + dt.timedelta(days=1, hours=23)),
    SearchFilters(camera_ids=("cam-b",), since=DAY0 + dt.timedelta(hours=9)),
    SearchFilters(camera_ids=("cam-a",), until=DAY0 + dt.timedelta(days=2, hours=10)),  # few rows of day 2
]


def _loaded(storage: Storage) -> None:
    tier = start_face_tier(storage, 64)
    assert tier is not None and tier.wait_idle(60)
    assert len(tier.held()) == 3  # the three closed days, loaded at startup


def test_searches_with_the_tier_loaded_return_what_lancedb_returns(storage: Storage) -> None:
    probes = [_probe(p) for p in range(4)]
    off = {(i, j): _search(storage, p, w) for i, p in enumerate(probes) for j, w in enumerate(WINDOWS)}
    _loaded(storage)
    try:
        on = {(i, j): _search(storage, p, w) for i, p in enumerate(probes) for j, w in enumerate(WINDOWS)}
        tier = face_tier(storage)
        assert tier is not None and tier.stats().served >= 4 * (3 + 1 + 3 + 3)  # every shard from memory
    finally:
        stop_face_tier(storage)
    assert on == off
    assert all(off[(i, 0)] for i in range(4))  # every person is found somewhere
    assert any(len(v) > 1 for v in off.values())


def test_a_row_deleted_from_a_loaded_shard_is_not_returned(storage: Storage) -> None:
    probe = _probe(2)
    _loaded(storage)
    try:
        first = _search(storage, probe, SearchFilters())
        tier = face_tier(storage)
        assert tier is not None and tier.stats().served == 3
        gone = first[0][0]
        day = gone.split("/D")[1][0]
        storage.db.open_table(f"faces_d{DAY0 + dt.timedelta(days=int(day)):%Y%m%d}").delete(f"id = '{gone}'")
        after = _search(storage, probe, SearchFilters())  # no wait: the old copy must not answer
        assert gone not in [fid for fid, _ in after]
        assert tier.stats().served == 3 + 2  # the changed day went to LanceDB
        assert tier.wait_idle(60)  # reloaded in the background
        assert _search(storage, probe, SearchFilters()) == after
    finally:
        stop_face_tier(storage)


def test_the_budget_keeps_the_most_recently_used_shards(storage: Storage) -> None:
    tier = start_face_tier(storage, 1, preload=False)
    assert tier is not None
    try:
        names = [f"faces_d{DAY0 + dt.timedelta(days=d):%Y%m%d}" for d in range(3)]
        tier.request(names[:1])
        assert tier.wait_idle(60)
        tier.budget_bytes = int(tier.stats().nbytes * 2.5)  # room for two of these days
        for name in (names[1], names[0], names[2]):  # day 0 used again after day 1
            tier.request([name])
            assert tier.wait_idle(60)
            tier.get(name, tier.held()[name].version)  # a search uses it
        assert sorted(tier.held()) == [names[0], names[2]]  # day 1, least recently used, went
        stats = tier.stats()
        assert stats.shards == 2 and stats.nbytes <= stats.budget_bytes
        assert _search(storage, _probe(1), SearchFilters())  # some shards in memory, some not
    finally:
        stop_face_tier(storage)


def test_the_service_loads_the_tier_and_the_cli_does_not(storage: Storage) -> None:
    from citywatch.service.app import create_app

    assert face_tier(storage) is None  # nothing turns it on outside the service
    settings = storage.settings.model_copy(update={"search": storage.settings.search.model_copy()})
    with TestClient(create_app(settings)):
        tier = face_tier(storage)
        assert tier is not None and tier.wait_idle(60) and len(tier.held()) == 3
    assert face_tier(storage) is None  # stopped with the service
