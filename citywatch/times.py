"""Times as text: the one ISO 8601 form citywatch writes (UTC, ``Z`` suffix)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from citywatch.errors import BadInputError

TimeSpec = Literal["auto", "seconds", "milliseconds", "microseconds"]


def format_utc(moment: dt.datetime, timespec: TimeSpec = "auto") -> str:
    """``moment`` in UTC as ISO 8601 with a ``Z``: ``2026-11-20T08:00:00Z``.

    ``timespec`` as in ``datetime.isoformat``: ``auto`` shows microseconds only when
    there are some; ``milliseconds`` gives ``...00.400Z``. A naive time is refused
    (it would silently be read as the machine's local time).
    """
    if not isinstance(moment, dt.datetime) or moment.tzinfo is None:
        raise BadInputError(f"time {moment!r} must be a timezone-aware datetime")
    return moment.astimezone(dt.UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
