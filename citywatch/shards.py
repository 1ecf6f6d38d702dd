"""Day shards of the ``faces`` and ``plates`` tables (``storage.shard_by_day``).

With sharding on, a segment's rows go to one table per UTC day of their ``ts``:
``faces_d20261203``, ``plates_d20261203``. The unsharded table (``faces``, ``plates``)
stays readable: a store that turns sharding on keeps its older rows there, and every
reader takes the unsharded table plus the day shards its time window touches
(:func:`index_tables`), so the same code reads both layouts. Searches fan out over the
tables in parallel (:func:`fan_out`); retention drops whole expired shards; a closed
shard (a past day) gets its own vector index.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from citywatch.errors import TransientError
from citywatch.filters import is_in
from citywatch.tables import DAY_SHARD, base_of, open_table, replace_where, table_names

if TYPE_CHECKING:
    import lancedb
    from lancedb.table import Table

T = TypeVar("T")

SHARDED = ("faces", "plates")
FAN_OUT_THREADS = 8


def shard_name(base: str, day: dt.date) -> str:
    """The table holding ``base`` rows of UTC ``day``."""
    if base not in SHARDED:
        raise ValueError(f"table {base!r} is not sharded by day")
    return f"{base}_d{day:%Y%m%d}"


def shard_day(name: str) -> dt.date | None:
    """The UTC day a shard holds (None: not a day shard)."""
    found = DAY_SHARD.match(name)
    if not found:
        return None
    try:
        return dt.datetime.strptime(found.group(2), "%Y%m%d").replace(tzinfo=dt.UTC).date()
    except ValueError:  # faces_d20261399: not ours
        return None


def utc_day(ts: dt.datetime) -> dt.date:
    return ts.astimezone(dt.UTC).date()


def index_tables(
    db: lancedb.DBConnection,
    base: str,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    *,
    names: Sequence[str] | None = None,
) -> list[str]:
    """The tables holding ``base`` rows that may fall in ``[since, until]``: the
    unsharded table (when it exists) first, then the day shards in day order."""
    names = table_names(db) if names is None else names
    first = utc_day(since) if since is not None else None
    last = utc_day(until) if until is not None else None
    shards: list[tuple[dt.date, str]] = []
    for name in names:
        day = shard_day(name)
        if day is None or base_of(name) != base:
            continue
        if (first is None or day >= first) and (last is None or day <= last):
            shards.append((day, name))
    return ([base] if base in names else []) + [name for _, name in sorted(shards)]


def fan_out(work: Callable[[str], T], names: Sequence[str]) -> list[T]:
    """``work`` on each table name, in parallel threads; results in ``names`` order."""
    if len(names) <= 1:
        return [work(name) for name in names]
    with ThreadPoolExecutor(max_workers=min(FAN_OUT_THREADS, len(names))) as pool:
        return list(pool.map(work, names))


def concat(tables: Iterable[pa.Table]) -> pa.Table | None:
    """One Arrow table of the parts (columns unified by name; None when there are none)."""
    parts = [t for t in tables if t is not None]
    if not parts:
        return None
    return pa.concat_tables(parts, promote_options="permissive")


def split_by_day(data: pa.Table) -> dict[dt.date, pa.Table]:
    """``data``'s rows grouped by the UTC day of ``ts``."""
    if data.num_rows == 0:
        return {}
    days = pc.cast(pc.cast(data["ts"], pa.timestamp("us", tz="UTC")), pa.date32())
    out: dict[dt.date, pa.Table] = {}
    for day in pc.unique(days).to_pylist():
        out[day] = data.filter(pc.equal(days, pa.scalar(day, pa.date32())))
    return out


def days_between(start: dt.datetime, end: dt.datetime | None) -> list[dt.date]:
    """The UTC days from ``start`` to ``end`` (inclusive)."""
    first = utc_day(start)
    last = utc_day(end) if end is not None and end > start else first
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def replace_segment_rows(
    db: lancedb.DBConnection,
    base: str,
    schema: pa.Schema,
    segment_ids: Sequence[str],
    data: pa.Table,
    *,
    sharded: bool,
    days: Sequence[dt.date] = (),
) -> None:
    """Replace the rows of segments ``segment_ids`` in ``base`` as a whole, one commit per
    table (re-runs and crashes never duplicate). Sharded: rows go to the shards of their
    days; the segments' old rows are removed from those shards, from the shards of
    ``days`` (the days the segments span) and from the unsharded table when it exists
    (a store that turned sharding on)."""
    if isinstance(segment_ids, str):  # a str is a sequence too: of its characters
        raise TypeError("segment_ids must be a list of segment ids, not one string")
    if not segment_ids:
        return
    if not sharded:
        _replace(open_table(db, base, schema), segment_ids, data)
        return
    by_day = split_by_day(data)
    names = table_names(db)
    for day in sorted(set(days) | set(by_day)):
        name = shard_name(base, day)
        rows = by_day.get(day)
        if rows is None and name not in names:
            continue  # nothing to remove and nothing to add
        _replace(open_table(db, name, schema), segment_ids, rows if rows is not None else data.slice(0, 0))
    if base in names:
        try:
            db.open_table(base).delete(is_in("segment_id", segment_ids))
        except (OSError, RuntimeError) as exc:
            raise TransientError(
                f"could not delete the old rows of {_named(segment_ids)} from {base}: {exc}"
            ) from exc


def _replace(table: Table, segment_ids: Sequence[str], data: pa.Table) -> None:
    replace_where(table, data, is_in("segment_id", segment_ids))


def _named(segment_ids: Sequence[str]) -> str:
    first = f"segment {segment_ids[0]}"
    return first if len(segment_ids) == 1 else f"{first} and {len(segment_ids) - 1} more"


def read_index(
    db: lancedb.DBConnection,
    base: str,
    where: str | None = None,
    columns: Sequence[str] | None = None,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int | None = None,
) -> pa.Table | None:
    """Rows of ``base`` under ``where`` from every table that may hold them (the unsharded
    table and the day shards of ``[since, until]``), read in parallel; None when there is
    no such table. ``since``/``until`` only pick the shards: put the time test in ``where``."""

    def read(name: str) -> pa.Table:
        query = db.open_table(name).search()
        query = query.where(where) if where else query
        query = query.select(list(columns)) if columns is not None else query
        return query.limit(limit).to_arrow()

    found = concat(fan_out(read, index_tables(db, base, since, until)))
    return found.slice(0, limit) if found is not None and limit is not None else found
