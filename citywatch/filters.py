"""Building LanceDB ``where`` clauses safely: only validated, quoted values get in.

Every filter citywatch sends to LanceDB (search, delete, count, merge conditions) is
built here, from column names that must be plain identifiers and values that are
rendered as literals of their type: text quoted with quotes doubled (control
characters refused), numbers finite, times timezone-aware. Nothing else reaches a
filter string, so a value can never become SQL.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import overload

from citywatch.cameras import check_camera_id
from citywatch.errors import BadInputError

Value = str | int | float | bool | dt.datetime

_IDENTIFIER = re.compile(r"(?:(?:target|source)\.)?[a-z_][a-z0-9_]*")
_RESERVED = frozenset(
    {"user", "order", "group", "select", "from", "where", "table", "limit", "and", "or", "not"}
)
_OPERATORS = ("=", "<>", "<", "<=", ">", ">=")


def sql_string(value: str) -> str:
    """A SQL string literal with quotes doubled; control characters refused."""
    if not isinstance(value, str):
        raise BadInputError(f"filter value {value!r} must be text")
    if any(ord(ch) < 32 for ch in value):
        raise BadInputError(f"filter value {value!r} contains control characters")
    return "'" + value.replace("'", "''") + "'"


def sql_timestamp(value: dt.datetime) -> str:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise BadInputError(f"time {value!r} must be a timezone-aware datetime")
    utc = value.astimezone(dt.UTC).replace(tzinfo=None)
    return f"timestamp '{utc.isoformat(sep=' ', timespec='microseconds')}'"


def column(name: str) -> str:
    """A column name as it goes into a filter: lower-case letters, digits and ``_``
    (optionally ``target.``/``source.`` in a merge condition); SQL keywords in backticks."""
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise BadInputError(f"filter column {name!r} is not a plain column name")
    return f"`{name}`" if name in _RESERVED else name


def literal(value: Value) -> str:
    """``value`` as a SQL literal of its type (text, whole or finite number, boolean, aware time)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return sql_string(value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadInputError(f"filter value {value!r} must be a finite number")
        return format(Decimal(repr(value)), "f")  # positional: no exponent for the parser
    if isinstance(value, dt.datetime):
        return sql_timestamp(value)
    raise BadInputError(f"filter value {value!r} of type {type(value).__name__} cannot be used in a filter")


def compare(name: str, op: str, value: Value) -> str:
    """``name op value``, e.g. ``compare("ts", "<", cutoff)``."""
    if op not in _OPERATORS:
        raise BadInputError(f"filter operator {op!r} is not one of {' '.join(_OPERATORS)}")
    return f"{column(name)} {op} {literal(value)}"


def eq(name: str, value: Value) -> str:
    """``name = value``."""
    return compare(name, "=", value)


def ne(name: str, value: Value) -> str:
    """``name <> value``."""
    return compare(name, "<>", value)


def is_in(name: str, values: Iterable[Value]) -> str:
    """``name IN (v1, v2, ...)``; an empty list matches nothing (``FALSE``)."""
    items = [literal(v) for v in values]
    return f"{column(name)} IN ({', '.join(items)})" if items else "FALSE"


def not_in(name: str, values: Iterable[Value]) -> str:
    """``name NOT IN (v1, v2, ...)``; an empty list excludes nothing (``TRUE``)."""
    items = [literal(v) for v in values]
    return f"{column(name)} NOT IN ({', '.join(items)})" if items else "TRUE"


def is_not_null(name: str) -> str:
    return f"{column(name)} IS NOT NULL"


@overload
def all_of(*parts: str) -> str: ...
@overload
def all_of(*parts: str | None) -> str | None: ...
def all_of(*parts: str | None) -> str | None:
    """The AND of the filters given (``None`` parts skipped), or None for no filter."""
    present = [p for p in parts if p]
    return " AND ".join(present) or None


def any_of(*parts: str) -> str:
    """The OR of filters built here, parenthesised (safe inside :func:`all_of`); none: ``FALSE``."""
    present = [p for p in parts if p]
    return "(" + " OR ".join(f"({p})" for p in present) + ")" if present else "FALSE"


def parse_time(text: str, what: str) -> dt.datetime:
    """ISO 8601 time from the user; naive times are taken as UTC."""
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadInputError(f"{what} {text!r} is not an ISO 8601 time (e.g. 2026-11-20T08:00:00Z)") from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def where_clause(
    *,
    camera_ids: Sequence[str] = (),
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    time_column: str = "ts",
) -> str | None:
    """AND of the given filters, or None for no filter."""
    clause = all_of(
        is_in("camera_id", [check_camera_id(cid) for cid in camera_ids]) if camera_ids else None,
        compare(time_column, ">=", since) if since is not None else None,
        compare(time_column, "<=", until) if until is not None else None,
    )
    if since is not None and until is not None and since > until:
        raise BadInputError(f"--since {since.isoformat()} is after --until {until.isoformat()}")
    return clause
