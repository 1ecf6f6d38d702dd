"""citywatch.analytics on plate passes: frequency, visits and dwell, co-occurrence."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from citywatch import analytics as cw
from tests.analytics_support import PLATES, at, plate, plates_frame, sighting_json


# --- plates ----------------------------------------------------------------------------
def test_plate_frequency_leaves_out_low_confidence_reads() -> None:
    freq = cw.plate_frequency(plates_frame(PLATES))
    assert freq.select("text", "passes", "cameras").rows() == [("AB123", 3, 2), ("XY9", 1, 1)]
    with_low = cw.plate_frequency(plates_frame(PLATES), include_low_confidence=True)
    assert "QQ1" in with_low["text"].to_list()
    assert cw.plate_frequency(plates_frame(PLATES), min_passes=2)["text"].to_list() == ["AB123"]


@pytest.mark.parametrize(
    ("gap_s", "visits"),
    [
        # passes at cam-a: 0..10, 15..20 (5 s later), 80..85 (60 s later), 85..90 (touching)
        (0, [(0, 10, 1), (15, 20, 1), (80, 90, 2)]),
        (5, [(0, 20, 2), (80, 90, 2)]),  # a gap of exactly 5 s is within 5 s
        (59, [(0, 20, 2), (80, 90, 2)]),
        (60, [(0, 90, 4)]),
    ],
)
def test_plate_visits_and_dwell(gap_s: float, visits: list[tuple[float, float, int]]) -> None:
    rows = [
        plate("AB123", "cam-a", 0, 10),
        plate("AB123", "cam-a", 15, 20),
        plate("AB123", "cam-a", 80, 85),
        plate("AB123", "cam-a", 85, 90),
        plate("AB123", "cam-b", 0, 30),
    ]
    found = cw.plate_visits(plates_frame(rows), gap=dt.timedelta(seconds=gap_s))
    cam_a = found.filter(pl.col("camera_id") == "cam-a")
    assert [(r["start"], r["end"], r["passes"]) for r in cam_a.iter_rows(named=True)] == [
        (at(s), at(e), n) for s, e, n in visits
    ]
    assert cam_a["dwell_s"].to_list() == [float(e - s) for s, e, _ in visits]
    assert cam_a["visit"].to_list() == list(range(1, len(visits) + 1))
    assert found.filter(pl.col("camera_id") == "cam-b")["dwell_s"].to_list() == [30.0]


def test_repeat_visits_and_dwell_summary() -> None:
    rows = [
        plate("AB123", "cam-a", 0, 10),
        plate("AB123", "cam-a", 3600, 3630),
        plate("AB123", "cam-a", 7200, 7220),
        plate("AB123", "cam-b", 0, 5),
        plate("XY9", "cam-a", 0, 5),
        plate("XY9", "cam-a", 100, 105),
    ]
    repeats = cw.repeat_visits(plates_frame(rows), gap=dt.timedelta(minutes=10))
    assert repeats.select("text", "camera_id", "visits", "total_dwell_s").rows() == [
        ("AB123", "cam-a", 3, 60.0)
    ]  # XY9 came back within 10 min: one visit
    summary = cw.dwell_summary(cw.plate_visits(plates_frame(rows)))
    assert summary.row(0, named=True) == {
        "camera_id": "cam-a",
        "visits": 4,
        "median_dwell_s": 25.0,
        "mean_dwell_s": 41.25,
        "max_dwell_s": 105.0,
    }


@pytest.mark.parametrize(
    ("second", "window_s", "same_camera", "gap_s"),
    [
        (("cam-a", 100, 110), 0, True, 0.0),  # overlapping passes
        (("cam-a", 130, 140), 10, True, 10.0),  # gap exactly the window: counts
        (("cam-a", 130.001, 140), 10, True, None),  # a millisecond over: does not
        (("cam-a", 60, 89), 11, True, 11.0),  # before the first event
        (("cam-b", 100, 110), 60, True, None),  # another camera
        (("cam-b", 100, 110), 60, False, 0.0),  # ... unless any camera will do
    ],
)
def test_co_occurrence_window_edges(
    second: tuple[str, float, float], window_s: float, same_camera: bool, gap_s: float | None
) -> None:
    cid, start, end = second
    rows = [plate("AB123", "cam-a", 100, 120), plate("XY9", cid, start, end)]
    pairs = cw.co_occurrences(
        cw.plate_events(plates_frame(rows), "ab-123"),
        cw.plate_events(plates_frame(rows), "xy 9"),
        window=dt.timedelta(seconds=window_s),
        same_camera=same_camera,
    )
    assert pairs["gap_s"].to_list() == ([] if gap_s is None else [pytest.approx(gap_s)])
    if gap_s is not None:
        assert (pairs["first_label"][0], pairs["second_label"][0]) == ("AB123", "XY9")


def test_plate_and_face_co_occurrence() -> None:
    sightings = cw.read_sightings_json(json.dumps([sighting_json("f1", "cam-a", 200, 205)]))
    pairs = cw.co_occurrences(
        cw.plate_events(plates_frame(PLATES), "AB123"),
        cw.sighting_events(sightings),
        window=dt.timedelta(minutes=2),
    )
    assert pairs.select("first_id", "second_id", "gap_s").rows() == [(PLATES[1].id, "f1", 90.0)]
