"""End to end on the sample footage: index with the real flow, then find people.

Real models, a real Prefect server, a LocalCluster with 2 worker processes, LanceDB.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from citywatch.flows.search import face_search
from citywatch.sample.dataset import load_ground_truth
from citywatch.tasks.search.faces import SearchFilters
from tests.conftest import CASE, as_user

pytestmark = pytest.mark.slow
SLACK = dt.timedelta(seconds=1.5)


def investigator(indexed):  # noqa: ANN001, ANN201
    return as_user(indexed.settings, "demo-investigator")


def appearances_of(truth, person_id: str):  # noqa: ANN001, ANN201
    return [a for a in truth.appearances if a.person_id == person_id]


def matches_appearance(sighting, appearances) -> bool:  # noqa: ANN001
    return any(
        a.camera_id == sighting.camera_id and a.start - SLACK <= sighting.ts <= a.end + SLACK
        for a in appearances
    )


def test_index_run_indexes_every_segment(indexed) -> None:  # noqa: ANN001
    truth = load_ground_truth(indexed.root / "sample" / "ground_truth.json")
    summary = indexed.summary
    assert summary.found == len(truth.segments)
    assert summary.indexed == len(truth.segments)
    assert summary.failed == []
    assert summary.faces > 0


def _probe(truth, person_id: str, root: Path) -> str:  # noqa: ANN001
    person = next(p for p in truth.people if p.person_id == person_id)
    return str(root / person.probe)


@pytest.mark.parametrize("person_id", ["obama", "t1-schwimmer"])
def test_a_different_photo_finds_the_person_first(indexed, person_id: str) -> None:  # noqa: ANN001
    truth = load_ground_truth(indexed.root / "sample" / "ground_truth.json")
    person = next(p for p in truth.people if p.person_id == person_id)
    assert person.in_footage and person.probe != person.source
    result = face_search(
        _probe(truth, person_id, indexed.root), SearchFilters(), investigator(indexed), **CASE
    )
    expected = appearances_of(truth, person_id)
    assert result.sightings, f"{person_id} not found at all"
    top = result.sightings[0]
    assert matches_appearance(top, expected), f"top sighting {top} is not {person_id}"
    found_cameras = {s.camera_id for s in result.sightings if matches_appearance(s, expected)}
    assert found_cameras == {a.camera_id for a in expected}
    # every sighting above the threshold is this person (no stranger in the ranking)
    wrong = [s for s in result.sightings if not matches_appearance(s, expected)]
    assert not wrong, f"sightings of someone else: {wrong}"


def test_absent_person_returns_nothing(indexed) -> None:  # noqa: ANN001
    truth = load_ground_truth(indexed.root / "sample" / "ground_truth.json")
    absent = [p for p in truth.people if not p.in_footage]
    assert absent
    for person in absent:
        result = face_search(str(indexed.root / person.probe), SearchFilters(), investigator(indexed), **CASE)
        assert result.sightings == [], f"{person.person_id} is not in the footage"


def test_camera_and_time_filters_narrow_the_search(indexed) -> None:  # noqa: ANN001
    truth = load_ground_truth(indexed.root / "sample" / "ground_truth.json")
    first, *others = appearances_of(truth, "obama")
    probe = _probe(truth, "obama", indexed.root)
    by_camera = face_search(
        probe, SearchFilters(camera_ids=(first.camera_id,)), investigator(indexed), **CASE
    )
    assert by_camera.sightings and {s.camera_id for s in by_camera.sightings} == {first.camera_id}
    window = SearchFilters(since=first.start - SLACK, until=first.end + SLACK)
    by_time = face_search(probe, window, investigator(indexed), **CASE)
    assert by_time.sightings
    assert all(window.since <= s.ts <= window.until for s in by_time.sightings)


def test_report_has_thumbnails(indexed) -> None:  # noqa: ANN001
    truth = load_ground_truth(indexed.root / "sample" / "ground_truth.json")
    result = face_search(_probe(truth, "obama", indexed.root), SearchFilters(), investigator(indexed), **CASE)
    html = Path(result.report_uri).read_text()
    assert html.count("data:image/jpeg;base64,") == len(result.sightings)
    assert "reviewer must confirm" in html
