"""GPS sidecars: interpolate inside the track, refuse malformed files, never guess."""

import datetime as dt

import pytest

from citywatch.errors import BadInputError
from citywatch.gps import parse_gps_csv

START = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)
GOOD = "ts,lat,lon\n0,22.0,114.0\n2,22.002,114.004\n2026-11-20T08:00:04Z,22.004,114.004\n"


@pytest.mark.parametrize(
    ("offset_s", "expected"),
    [
        (0.0, (22.0, 114.0)),
        (1.0, (22.001, 114.002)),
        (3.0, (22.003, 114.004)),
        (4.5, (22.004, 114.004)),
        (30.0, None),
        (-5.0, None),
    ],
)
def test_interpolation(offset_s: float, expected: tuple[float, float] | None) -> None:
    track = parse_gps_csv(GOOD, "x.gps.csv", START)
    got = track.at(START + dt.timedelta(seconds=offset_s))
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "header"),
        ("time,lat,lon\n0,1,2\n", "header"),
        ("ts,lat,lon\n0,22\n", "expected 3 fields"),
        ("ts,lat,lon\n0,north,114\n", "not numbers"),
        ("ts,lat,lon\n0,95,114\n", "not a valid position"),
        ("ts,lat,lon\nyesterday,22,114\n", "neither ISO"),
        ("ts,lat,lon\n2,22,114\n1,22,114\n", "must increase"),
        ("ts,lat,lon\n", "no positions"),
    ],
)
def test_malformed_sidecar_is_refused(text: str, problem: str) -> None:
    with pytest.raises(BadInputError, match=problem) as err:
        parse_gps_csv(text, "car-1/20261120T080000Z.gps.csv", START)
    assert "car-1/20261120T080000Z.gps.csv" in str(err.value)


def test_gap_is_not_bridged() -> None:
    track = parse_gps_csv("ts,lat,lon\n0,22,114\n60,23,115\n", "g", START)
    assert track.at(START + dt.timedelta(seconds=30)) is None
