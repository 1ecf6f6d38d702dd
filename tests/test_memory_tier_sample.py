"""The memory tiers on the sample indexed with day shards (the module fixture of
tests/test_day_shards.py): face and plate searches return the same sightings with the
tiers loaded as with them off, for several probes and windows; a pass deleted from a
loaded shard is not returned by the next search."""

from __future__ import annotations

import datetime as dt

import pytest

from citywatch.sample.dataset import load_ground_truth
from citywatch.storage import Storage
from citywatch.tables import table_names
from citywatch.tasks.search.faces import SearchFilters
from citywatch.tasks.search.faces_memory import start_face_tier, stop_face_tier
from citywatch.tasks.search.plates_memory import start_plate_tier, stop_plate_tier
from tests.conftest import CASE, Indexed, as_user
from tests.test_day_shards import sharded as sharded  # the sharded sample, indexed once here


def _sightings(store: Indexed, probe: str, window: SearchFilters) -> list[tuple[str, float, str]]:
    from citywatch.flows.search import face_search

    user = as_user(store.settings, "demo-investigator")
    found = face_search(str(store.root / probe), window, user, **CASE).sightings
    return [(s.face_id, round(s.distance, 5), s.segment_uri) for s in found]


@pytest.mark.slow
def test_face_search_with_the_tier_loaded_equals_lancedb(sharded: Indexed) -> None:
    truth = load_ground_truth(sharded.root / "sample" / "ground_truth.json")
    start = min(s.start for s in truth.segments)
    windows = [
        SearchFilters(),
        SearchFilters(since=start, until=start + dt.timedelta(seconds=40)),
        SearchFilters(since=start + dt.timedelta(seconds=20)),
        SearchFilters(camera_ids=(truth.segments[0].camera_id,)),
    ]
    probes = [p.probe for p in truth.people][:4]
    off = {(p, i): _sightings(sharded, p, w) for p in probes for i, w in enumerate(windows)}
    storage = Storage(sharded.settings)
    days = [n for n in table_names(storage.db) if n.startswith("faces_d")]
    tier = start_face_tier(storage, 256)
    assert tier is not None and tier.wait_idle(120)
    try:
        assert sorted(tier.held()) == sorted(days)  # the sample's days are all past
        on = {(p, i): _sightings(sharded, p, w) for p in probes for i, w in enumerate(windows)}
        assert tier.stats().served >= len(probes) * len(windows)
    finally:
        stop_face_tier(storage)
    assert on == off
    assert sum(bool(v) for v in off.values()) >= len(probes)  # real matches compared, not empty lists


def _passes(store: Indexed, plate: str, window: SearchFilters) -> list[tuple[str, float]]:
    from citywatch.flows.search import plate_search

    user = as_user(store.settings, "demo-investigator")
    return [(s.plate.id, s.score) for s in plate_search(plate, window, user, **CASE).sightings]


@pytest.mark.slow
def test_plate_search_with_the_tier_loaded_equals_lancedb(sharded: Indexed) -> None:
    truth = load_ground_truth(sharded.root / "sample" / "ground_truth.json")
    start = min(s.start for s in truth.segments)
    windows = [
        SearchFilters(),
        SearchFilters(since=start, until=start + dt.timedelta(seconds=40)),
        SearchFilters(camera_ids=(truth.segments[0].camera_id,)),
    ]
    plates = sorted({v.plate for v in truth.vehicles})[:6]
    queries = [*plates, plates[0][:3] + "*"]  # exact and a pattern
    off = {(q, i): _passes(sharded, q, w) for q in queries for i, w in enumerate(windows)}
    storage = Storage(sharded.settings)
    days = [n for n in table_names(storage.db) if n.startswith("plates_d")]
    tier = start_plate_tier(storage, 256)
    assert tier is not None and tier.wait_idle(120)
    try:
        assert sorted(tier.held()) == sorted(days)
        on = {(q, i): _passes(sharded, q, w) for q in queries for i, w in enumerate(windows)}
        assert tier.stats().served >= len(queries) * len(windows)
        assert on == off
        assert sum(bool(v) for v in off.values()) >= len(plates)
        # a pass deleted from a loaded shard: the next search must not return it
        gone = off[(plates[0], 0)][0][0]
        for name in days:
            storage.db.open_table(name).delete(f"id = '{gone}'")
        again = _passes(sharded, plates[0], SearchFilters())
        first = off[(plates[0], 0)]
        assert gone not in [pid for pid, _ in again] and again[: len(first) - 1] == first[1:]
    finally:
        stop_plate_tier(storage)
