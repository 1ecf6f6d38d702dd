"""The memory tier on the sample indexed with day shards (the module fixture of
tests/test_day_shards.py): face searches return the same sightings with the tier
loaded as with it off, for several people and windows."""

from __future__ import annotations

import datetime as dt

import pytest

from citywatch.sample.dataset import load_ground_truth
from citywatch.storage import Storage
from citywatch.tables import table_names
from citywatch.tasks.search.faces import SearchFilters
from citywatch.tasks.search.faces_memory import start_face_tier, stop_face_tier
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
