"""Plates end to end on the indexed sample: what an investigator searching a plate checks.

Ground truth is ``sample/ground_truth.json`` (``vehicles``): every plate at least 80 px
wide all the way must be read exactly, at the right camera and time, and found by
``search plate``; the patrol car's plates also at the right place.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from citywatch.errors import BadInputError
from citywatch.plates import CONFUSABLE_PAIRS
from citywatch.sample.truth import GroundTruth, VehicleTruth, load_ground_truth
from citywatch.schemas import PlateRow, arrow_to_rows
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import plates_table, segments_table
from citywatch.tasks.search.faces import SearchFilters
from citywatch.tasks.search.plates import Near, distance_m
from tests.conftest import CASE, as_user

pytestmark = pytest.mark.slow

SLACK = dt.timedelta(seconds=1.5)
READABLE_PX = 80
PARTNER = {a: b for a, b in CONFUSABLE_PAIRS} | {b: a for a, b in CONFUSABLE_PAIRS}


@pytest.fixture(scope="module")
def truth(indexed) -> GroundTruth:  # noqa: ANN001
    return load_ground_truth(indexed.root / "sample" / "ground_truth.json")


@pytest.fixture(scope="module")
def rows(indexed) -> list[PlateRow]:  # noqa: ANN001
    return arrow_to_rows(plates_table(Storage(indexed.settings).db).to_arrow(), PlateRow)


@pytest.fixture(scope="module")
def investigator(indexed) -> Settings:  # noqa: ANN001
    return as_user(indexed.settings, "demo-investigator")


def readable(truth: GroundTruth) -> list[VehicleTruth]:
    return [v for v in truth.vehicles if v.min_plate_px >= READABLE_PX]


def mobile_ids(truth: GroundTruth) -> set[str]:
    return {s.camera_id for s in truth.segments if s.gps}


def during(row: PlateRow, vehicle: VehicleTruth) -> bool:
    return vehicle.start - SLACK <= row.ts <= vehicle.end + SLACK


def sightings_of(vehicle: VehicleTruth, rows: list[PlateRow]) -> list[PlateRow]:
    return [r for r in rows if r.camera_id == vehicle.camera_id and during(r, vehicle)]


def search(
    query: str,
    settings: Settings,
    *,
    near: Near | None = None,
    max_edits: float = 1.0,
    top_k: int | None = None,
):  # noqa: ANN201 - flows.search.PlateSearchResult
    from citywatch.flows.search import plate_search

    return plate_search(
        query,
        SearchFilters(),
        settings,
        case_id=CASE["case_id"],
        justification=CASE["justification"],
        max_edits=max_edits,
        near=near,
        top_k=top_k,
    )


def test_the_sample_has_readable_plates_at_fixed_and_mobile_cameras(truth: GroundTruth) -> None:
    fixed = [v for v in readable(truth) if v.camera_id not in mobile_ids(truth)]
    patrol = [v for v in readable(truth) if v.camera_id in mobile_ids(truth)]
    assert len(fixed) >= 6 and len(patrol) >= 2
    assert any(v.max_plate_px < READABLE_PX for v in truth.vehicles)  # small ones too


def test_every_readable_plate_is_read_exactly(truth: GroundTruth, rows: list[PlateRow]) -> None:
    missed = [
        (v.plate, v.camera_id, v.min_plate_px)
        for v in readable(truth)
        if not any(r.text == v.plate for r in sightings_of(v, rows))
    ]
    assert not missed, f"plates >= {READABLE_PX} px not read exactly: {missed}"


def test_no_confident_row_the_footage_does_not_show(truth: GroundTruth, rows: list[PlateRow]) -> None:
    """Misreads (small plates, partial reads, background text) are flagged low-confidence."""
    wrong = [
        (r.text, r.camera_id, r.ts.isoformat())
        for r in rows
        if not r.low_confidence
        and not any(r.text == v.plate and r.camera_id == v.camera_id and during(r, v) for v in truth.vehicles)
    ]
    assert not wrong


def test_shop_signs_make_no_plate_rows(indexed, rows: list[PlateRow]) -> None:  # noqa: ANN001
    """The sign camera's shop signs (citywatch/sample/signs.py: WHGOV, QZ01, SUNTRUP and a
    blinking OPEN, all HK personalised-mark shaped) never become plate rows: the plate gate
    counts them in the segments' plates_rejected_text instead."""
    from citywatch.sample.signs import SIGN_CAMERA, SIGNS

    boxes = [s.box((1280, 720)) for s in SIGNS]
    texts = {s.text for s in SIGNS}
    here = [r for r in rows if r.camera_id == SIGN_CAMERA]
    on_signs = [
        (r.text, r.bbox)
        for r in here
        if r.text in texts
        or any(
            b[0] <= (r.bbox[0] + r.bbox[2]) / 2 <= b[2] and b[1] <= (r.bbox[1] + r.bbox[3]) / 2 <= b[3]
            for b in boxes
        )
    ]
    assert not on_signs
    assert not any(r.text in texts for r in rows)
    segments = segments_table(Storage(indexed.settings).db).to_arrow().to_pylist()
    rejected = {s["id"]: s["plates_rejected_text"] for s in segments if s["camera_id"] == SIGN_CAMERA}
    assert rejected and all(n > 0 for n in rejected.values()), rejected


def test_patrol_car_plates_are_located_by_its_gps(truth: GroundTruth, rows: list[PlateRow]) -> None:
    on_patrol = [v for v in readable(truth) if v.camera_id in mobile_ids(truth)]
    assert on_patrol
    for v in on_patrol:
        assert v.lat is not None and v.lon is not None
        found = [r for r in sightings_of(v, rows) if r.text == v.plate]
        assert found and all(r.lat is not None and r.lon is not None for r in found)
        off = min(distance_m(v.lat, v.lon, r.lat, r.lon) for r in found)  # type: ignore[arg-type]
        assert off < 50, (v.plate, off)


def test_search_ranks_each_readable_plate_first(truth: GroundTruth, investigator: Settings) -> None:
    for v in readable(truth):
        result = search(v.plate, investigator)
        top = result.sightings[0]
        assert (top.rank, top.score, top.plate.text) == (1, 0.0, v.plate)
        exact = [s for s in result.sightings if s.score == 0.0]
        assert all(s.plate.text == v.plate for s in exact)
        assert any(s.plate.camera_id == v.camera_id and during(s.plate, v) for s in exact), v.plate
        assert Path(result.report_uri).is_file()


def confusable_variant(plate: str) -> str:
    """``plate`` with one character swapped for its look-alike, B -> 8 preferred."""
    order = sorted(range(len(plate)), key=lambda i: plate[i] != "B")
    i = next(i for i in order if plate[i] in PARTNER)
    return plate[:i] + PARTNER[plate[i]] + plate[i + 1 :]


def test_a_query_one_confusable_character_off_finds_the_plate(
    truth: GroundTruth, investigator: Settings
) -> None:
    vehicle = next(v for v in readable(truth) if any(ch in PARTNER for ch in v.plate))
    query = confusable_variant(vehicle.plate)
    result = search(query, investigator)
    top = result.sightings[0]
    assert (top.plate.text, top.score) == (vehicle.plate, pytest.approx(0.3))
    assert top.plate.camera_id == vehicle.camera_id
    assert not search(query, investigator, max_edits=0.2).sightings  # budget below one swap


def test_a_partial_pattern_finds_the_plate(truth: GroundTruth, investigator: Settings) -> None:
    vehicle = next(v for v in readable(truth) if len(v.plate) >= 5)
    result = search(vehicle.plate[:4] + "*", investigator)
    exact = [s for s in result.sightings if s.score == 0.0]
    assert exact and all(s.plate.text.startswith(vehicle.plate[:4]) for s in exact)
    assert any(s.plate.text == vehicle.plate and s.plate.camera_id == vehicle.camera_id for s in exact)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("x' OR '1'='1", "not allowed"),
        ("AB;DROP", "not allowed"),
        ("AB%12", "not allowed"),
        ("", "empty"),
        (" - ", "empty"),
        ("**", "needs at least one letter"),
        ("AB12345678901234567", "at most"),
    ],
)
def test_hostile_or_empty_queries_are_refused(query: str, message: str, investigator: Settings) -> None:
    with pytest.raises(BadInputError, match=message):
        search(query, investigator)


def test_near_the_patrol_car_finds_its_plates_and_no_others(
    truth: GroundTruth, rows: list[PlateRow], investigator: Settings
) -> None:
    patrol = [v for v in readable(truth) if v.camera_id in mobile_ids(truth)]
    here = patrol[0]
    near = Near(here.lat, here.lon, 200.0)  # type: ignore[arg-type]
    found = search("?*", investigator, near=near, top_k=1000).sightings
    assert {s.plate.camera_id for s in found} == mobile_ids(truth)
    assert {v.plate for v in patrol} <= {s.plate.text for s in found}
    everywhere = search("?*", investigator, top_k=1000).sightings
    assert len(everywhere) == len(rows) > len(found)
    fixed = next(v for v in readable(truth) if v.camera_id not in mobile_ids(truth))
    assert search(fixed.plate, investigator).sightings
    assert not search(fixed.plate, investigator, near=near).sightings


def test_reindexing_adds_no_plate_rows(
    indexed,
    truth: GroundTruth,  # noqa: ANN001
    rows: list[PlateRow],
    tmp_path: Path,
) -> None:
    """Two segments with plates (one the patrol car's) are indexed again in a copy."""
    from citywatch.flows.index_footage import run_index

    root = tmp_path / "data"
    shutil.copytree(indexed.root, root)
    settings = indexed.settings.updated(
        storage__root=str(root), storage__state_dir=str(tmp_path / "state"), user="demo-admin"
    )
    again = {
        next(v.key for v in truth.vehicles if v.camera_id in mobile_ids(truth)),
        next(v.key for v in readable(truth) if v.camera_id not in mobile_ids(truth)),
    }
    ids = [key.removeprefix("footage/").removesuffix(".mp4") for key in sorted(again)]
    db = Storage(settings).db
    segments_table(db).delete("id IN (" + ", ".join(f"'{i}'" for i in ids) + ")")
    summary = run_index(settings)
    assert (summary.indexed, summary.failed) == (2, [])
    after = arrow_to_rows(plates_table(db).to_arrow(), PlateRow)
    assert len(after) == len(rows)
    assert sorted((r.id, r.text) for r in after) == sorted((r.id, r.text) for r in rows)
