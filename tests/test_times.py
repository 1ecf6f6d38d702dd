"""The one ISO 8601 form citywatch writes: UTC with a Z."""

from __future__ import annotations

import datetime as dt

import pytest

from citywatch.errors import BadInputError
from citywatch.times import format_utc

HK = dt.timezone(dt.timedelta(hours=8))


@pytest.mark.parametrize(
    ("moment", "timespec", "expected"),
    [
        (dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC), "auto", "2026-11-20T08:00:00Z"),
        (dt.datetime(2026, 11, 20, 16, 0, tzinfo=HK), "auto", "2026-11-20T08:00:00Z"),
        (dt.datetime(2026, 11, 20, 8, 0, 0, 400_000, tzinfo=dt.UTC), "auto", "2026-11-20T08:00:00.400000Z"),
        (
            dt.datetime(2026, 11, 20, 8, 0, 0, 400_000, tzinfo=dt.UTC),
            "milliseconds",
            "2026-11-20T08:00:00.400Z",
        ),
        (dt.datetime(2026, 11, 20, 8, 0, 0, 400_000, tzinfo=dt.UTC), "seconds", "2026-11-20T08:00:00Z"),
        (dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC), "microseconds", "2026-11-20T08:00:00.000000Z"),
    ],
)
def test_format_utc(moment: dt.datetime, timespec: str, expected: str) -> None:
    text = format_utc(moment, timespec)  # type: ignore[arg-type]
    assert text == expected
    shown = moment.replace(microsecond=0) if timespec == "seconds" else moment
    assert dt.datetime.fromisoformat(text) == shown  # reads back as the same instant


def test_format_utc_refuses_naive_times() -> None:
    with pytest.raises(BadInputError, match="timezone-aware"):
        format_utc(dt.datetime(2026, 11, 20, 8, 0))
