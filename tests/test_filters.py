"""Where-clause building: hostile values never reach LanceDB unquoted."""

import datetime as dt

import pytest

from citywatch.errors import BadInputError
from citywatch.filters import (
    all_of,
    compare,
    eq,
    is_in,
    is_not_null,
    ne,
    not_in,
    parse_time,
    sql_string,
    where_clause,
)

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


# --- the filter helpers every where/delete/count/merge condition is built with ------------

T = dt.datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (lambda: eq("id", "a1"), "id = 'a1'"),
        (lambda: eq("label", "O'Brien"), "label = 'O''Brien'"),
        (lambda: eq("id", "x' OR '1'='1"), "id = 'x'' OR ''1''=''1'"),  # stays one quoted string
        (lambda: ne("state", "delivered"), "state <> 'delivered'"),
        (lambda: compare("ts", "<", T), "ts < timestamp '2026-11-20 08:00:00.000000'"),
        (lambda: compare("_rowaddr", ">=", 4 << 32), "_rowaddr >= 17179869184"),
        (lambda: compare("lat", ">=", 22.2755), "lat >= 22.2755"),
        (lambda: compare("lat", "<", 1e-7), "lat < 0.0000001"),  # no exponent
        (lambda: eq("low_confidence", True), "low_confidence = TRUE"),
        (lambda: eq("target.state", "new"), "target.state = 'new'"),
        (lambda: eq("user", "alice"), "`user` = 'alice'"),  # a keyword as a column
        (lambda: is_in("id", ["a", "b'c"]), "id IN ('a', 'b''c')"),
        (lambda: not_in("track_id", ["t1", "t2"]), "track_id NOT IN ('t1', 't2')"),
        (lambda: is_not_null("next_attempt_at"), "next_attempt_at IS NOT NULL"),
        (lambda: all_of(eq("a", 1), None, eq("b", 2)), "a = 1 AND b = 2"),
        (lambda: all_of(None, None), None),
    ],
)
def test_filter_helpers_build_quoted_filters(built, expected: str | None) -> None:  # noqa: ANN001
    assert built() == expected


def test_empty_lists_match_nothing_or_exclude_nothing() -> None:
    assert is_in("id", []) == "FALSE"
    assert not_in("id", []) == "TRUE"


@pytest.mark.parametrize(
    ("built", "message"),
    [
        (lambda: eq("id; DROP TABLE faces", "a"), "not a plain column name"),
        (lambda: eq("id = 'a' OR 1=1 --", "a"), "not a plain column name"),
        (lambda: eq("Id", "a"), "not a plain column name"),
        (lambda: eq("", "a"), "not a plain column name"),
        (lambda: eq("id", "a\nb"), "control characters"),
        (lambda: eq("id", "a\x00"), "control characters"),
        (lambda: is_in("id", ["ok", "bad\r"]), "control characters"),
        (lambda: compare("id", "= 1 OR", "a"), "operator"),
        (lambda: compare("lat", ">", float("nan")), "finite"),
        (lambda: compare("lat", ">", float("inf")), "finite"),
        (lambda: compare("ts", ">", dt.datetime(2026, 1, 1)), "timezone-aware"),
        (lambda: eq("id", b"bytes"), "cannot be used in a filter"),
        (lambda: eq("id", ["a"]), "cannot be used in a filter"),
    ],
)
def test_hostile_columns_and_values_are_refused(built, message: str) -> None:  # noqa: ANN001
    with pytest.raises(BadInputError, match=message):
        built()


def test_filters_select_the_right_rows_in_lancedb(tmp_path) -> None:  # noqa: ANN001
    import lancedb
    import pyarrow as pa

    table = lancedb.connect(tmp_path).create_table(
        "t", pa.table({"id": ["a", "it's", "x' OR '1'='1", "c"], "user": ["u1", "u2", "u3", "u4"]})
    )

    def ids(where: str) -> list[str]:
        return sorted(r["id"] for r in table.search().where(where).limit(None).to_list())

    assert ids(eq("id", "it's")) == ["it's"]
    assert ids(eq("id", "x' OR '1'='1")) == ["x' OR '1'='1"]  # matched literally, not as SQL
    assert ids(is_in("id", ["a", "c", "zz"])) == ["a", "c"]
    assert ids(is_in("id", [])) == []
    assert ids(all_of(not_in("id", ["a"]), eq("user", "u4"))) == ["c"]
    assert ids(not_in("id", [])) == sorted(["a", "it's", "x' OR '1'='1", "c"])
