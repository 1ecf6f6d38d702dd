"""Building LanceDB ``where`` clauses safely: only validated, quoted values get in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from citywatch.cameras import check_camera_id
from citywatch.errors import BadInputError


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
    parts: list[str] = []
    if camera_ids:
        quoted = ", ".join(sql_string(check_camera_id(cid)) for cid in camera_ids)
        parts.append(f"camera_id IN ({quoted})")
    if since is not None:
        parts.append(f"{time_column} >= {sql_timestamp(since)}")
    if until is not None:
        parts.append(f"{time_column} <= {sql_timestamp(until)}")
    if since is not None and until is not None and since > until:
        raise BadInputError(f"--since {since.isoformat()} is after --until {until.isoformat()}")
    return " AND ".join(parts) or None
