"""Where-clause building: hostile values never reach LanceDB unquoted."""

import datetime as dt

import pytest

from citywatch.errors import BadInputError
from citywatch.filters import parse_time, sql_string, where_clause

UTC = dt.UTC


def test_where_clause_combines_filters() -> None:
    clause = where_clause(camera_ids=["cam-a", "cam-b"], since=dt.datetime(2026, 1, 1, tzinfo=UTC))
    assert clause == ("camera_id IN ('cam-a', 'cam-b') AND ts >= timestamp '2026-01-01 00:00:00.000000'")


@pytest.mark.parametrize("bad", ["x' OR '1'='1", "a;DROP", "A", "../x", "a\nb", ""])
def test_hostile_camera_ids_are_refused(bad: str) -> None:
    with pytest.raises(BadInputError):
        where_clause(camera_ids=[bad])


def test_quotes_are_doubled() -> None:
    assert sql_string("O'Brien") == "'O''Brien'"


def test_since_after_until_is_refused() -> None:
    with pytest.raises(BadInputError, match="after"):
        where_clause(since=dt.datetime(2026, 2, 1, tzinfo=UTC), until=dt.datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("text", "ok"),
    [("2026-11-20T08:00:00Z", True), ("2026-11-20 08:00", True), ("yesterday", False), ("1' OR 1=1", False)],
)
def test_parse_time(text: str, ok: bool) -> None:
    if ok:
        assert parse_time(text, "--since").tzinfo is not None
    else:
        with pytest.raises(BadInputError, match="--since"):
            parse_time(text, "--since")
