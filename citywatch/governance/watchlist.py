"""The watchlist: who or which plate is sought, why, on whose request, until when.

An entry is enrolled ``pending``; a second person approves it (four eyes) and it
becomes ``active``; it matches only while active and unexpired; removing it keeps the
row (who asked, who approved, who removed, when, why) but drops its face embeddings.
Enrolment photos must each hold exactly one usable face; their embeddings and sha256
are stored, and the face's crop for reviewers (governance/enrolment_crops.py), never the
photos; removing the entry deletes the crops with the template.

Every table here has ``id`` as an (unenforced) primary key, which makes LanceDB's
merge-insert detect concurrent inserts of the same id: two writers never both insert.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from citywatch.errors import BadInputError, NotFoundError, TransientError
from citywatch.filters import eq, ne
from citywatch.governance.auth import check_four_eyes
from citywatch.governance.enrolment_crops import delete_crops
from citywatch.plates import match_score, parse_plate_query
from citywatch.schemas import (
    EntryKind,
    EntryStatus,
    PlateRow,
    Reason,
    WatchlistRow,
    arrow_to_rows,
    rows_to_arrow,
    utcnow,
)
from citywatch.shards import read_index
from citywatch.storage import Storage
from citywatch.tables import has_table, open_table, upsert

if TYPE_CHECKING:
    import lancedb
    from lancedb.table import Table


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([dhm])$")
_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0}


# --- keyed tables ---------------------------------------------------------------------


def watchlist_table(db: lancedb.DBConnection) -> Table:
    return open_table(db, WatchlistRow.TABLE, WatchlistRow.SCHEMA)


# --- validation -----------------------------------------------------------------------


def parse_expiry(text: str, now: dt.datetime, max_days: int) -> dt.datetime:
    """``7d`` / ``12h`` / ``90m`` from now, or an ISO time; future and within ``max_days``."""
    value = text.strip()
    match = _DURATION.fullmatch(value.lower())
    if match:
        amount, unit = float(match.group(1)), match.group(2)
        expires = now + dt.timedelta(seconds=amount * _UNIT_SECONDS[unit])
    else:
        try:
            expires = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise BadInputError(
                f"--expires {text!r}: give a duration (7d, 12h, 90m) or an ISO time (2026-12-01T00:00:00Z)"
            ) from exc
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.UTC)
    return check_expiry(expires, now, max_days)


def check_expiry(expires: dt.datetime, now: dt.datetime, max_days: int) -> dt.datetime:
    if expires.tzinfo is None:
        raise BadInputError(f"expiry {expires.isoformat()} must carry a timezone")
    if expires <= now:
        raise BadInputError(f"expiry {expires.isoformat()} is not in the future")
    if expires > now + dt.timedelta(days=max_days):
        raise BadInputError(
            f"expiry {expires.isoformat()} is more than {max_days} days away "
            "(the maximum is watchlist_max_days); renew the entry when it lapses"
        )
    return expires.astimezone(dt.UTC)


def _required(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadInputError(f"{what} is required and must not be empty")
    if any(ord(ch) < 32 for ch in value):
        raise BadInputError(f"{what} {value!r} contains control characters")
    return value.strip()


@dataclass(frozen=True, slots=True)
class EntryRequest:
    """What a requester gives for any entry (face or plate)."""

    label: str
    reason: str
    case_id: str
    justification: str
    requested_by: str
    expires_at: dt.datetime
    threshold: float | None = None


def base_row(
    request: EntryRequest, kind: EntryKind, now: dt.datetime, max_days: int, threshold: float
) -> WatchlistRow:
    try:
        reason = Reason(request.reason)
    except ValueError as exc:
        raise BadInputError(
            f"reason {request.reason!r} is not one of {', '.join(r.value for r in Reason)}"
        ) from exc
    return WatchlistRow(
        id=f"wl-{uuid.uuid4().hex[:12]}",
        kind=kind.value,
        label=_required(request.label, "label"),
        reason=reason.value,
        case_id=_required(request.case_id, "case id"),
        justification=_required(request.justification, "justification"),
        requested_by=_required(request.requested_by, "requested by (the acting user)"),
        created_at=now,
        expires_at=check_expiry(request.expires_at, now, max_days),
        status=EntryStatus.PENDING.value,
        approved_by="",
        approved_at=None,
        threshold=threshold,
        model="",
        embeddings=[],
        photo_sha256=[],
        plate_query="",
        removed_by="",
        removed_at=None,
        removal_note="",
        updated_at=now,
    )


def entry_threshold(request: EntryRequest, default_threshold: float) -> float:
    """A face entry's match distance: the model's calibrated one, or a stricter one asked for."""
    threshold = default_threshold if request.threshold is None else float(request.threshold)
    if not 0 < threshold <= default_threshold:
        raise BadInputError(
            f"--threshold {threshold}: must be in (0, {default_threshold:.3f}], the model's "
            "calibrated distance (an entry may be stricter, never looser)"
        )
    return threshold


def add_plate(
    storage: Storage,
    plate: str,
    request: EntryRequest,
    *,
    default_max_distance: float,
    max_days: int,
    now: dt.datetime | None = None,
    min_literals: int = 3,
) -> WatchlistRow:
    """Put an exact plate (``AB1234``) or a pattern (``AB12*``, ``?B1234``) on the watchlist.

    A pattern needs ``min_literals`` letters or digits (``settings.watchlist.plate_min_literals``).
    """
    now = now or utcnow()
    threshold = default_max_distance if request.threshold is None else float(request.threshold)
    if not 0 <= threshold <= 3:
        raise BadInputError(f"--threshold {threshold}: a plate distance must be in [0, 3]")
    query = parse_plate_query(plate, storage.settings.plates.plate_grammar(), max_edits=threshold)
    literals = sum(ch not in "*?" for ch in query.text)
    if query.is_pattern and literals < min_literals:
        raise BadInputError(
            f"plate pattern {plate!r} has {literals} literal characters; a watchlist pattern "
            f"needs at least {min_literals} (watchlist_plate_min_literals), or it alerts on "
            "nearly every passing plate"
        )
    row = replace(base_row(request, EntryKind.PLATE, now, max_days, threshold), plate_query=query.text)
    upsert(watchlist_table(storage.db), rows_to_arrow([row], WatchlistRow.SCHEMA))
    return row


def plate_rows_matched(storage: Storage, entry: WatchlistRow) -> tuple[int, int]:
    """(plate rows the entry would have matched, plate rows indexed): how broad it is."""
    texts = read_index(storage.db, PlateRow.TABLE, columns=["text"])
    if texts is None:
        return 0, 0
    counts = Counter(texts.column("text").to_pylist())
    query = parse_plate_query(
        entry.plate_query, storage.settings.plates.plate_grammar(), max_edits=entry.threshold
    )
    matched = sum(n for text, n in counts.items() if text and match_score(query, text) is not None)
    return matched, texts.num_rows


# --- reading and changing entries -------------------------------------------------------


def list_entries(storage: Storage, *, include_removed: bool = False) -> list[WatchlistRow]:
    if not has_table(storage.db, WatchlistRow.TABLE):
        return []
    table = watchlist_table(storage.db)
    query = table.search()
    if not include_removed:
        query = query.where(ne("status", EntryStatus.REMOVED.value))
    rows = arrow_to_rows(query.limit(None).to_arrow(), WatchlistRow)
    return sorted(rows, key=lambda r: r.created_at)


def active_entries(storage: Storage, now: dt.datetime) -> list[WatchlistRow]:
    """Entries that may match at ``now``: approved, unexpired, not removed."""
    return [row for row in list_entries(storage) if row.is_active(now)]


def get_entry(storage: Storage, entry_id: str) -> WatchlistRow:
    if has_table(storage.db, WatchlistRow.TABLE):
        found = watchlist_table(storage.db).search().where(eq("id", entry_id))
        rows = arrow_to_rows(found.limit(1).to_arrow(), WatchlistRow)
        if rows:
            return rows[0]
    raise NotFoundError(f"watchlist entry {entry_id!r} does not exist")


def approve(
    storage: Storage, entry_id: str, approved_by: str, now: dt.datetime | None = None
) -> WatchlistRow:
    """Activate a pending entry; the approver must not be the requester (four eyes)."""
    now = now or utcnow()
    approver = _required(approved_by, "approved by (the acting user)")
    row = get_entry(storage, entry_id)
    if row.status != EntryStatus.PENDING:
        raise BadInputError(
            f"watchlist entry {entry_id} is {row.state(now)}, only pending entries can be approved"
        )
    if now >= row.expires_at:
        raise BadInputError(
            f"watchlist entry {entry_id} expired at {row.expires_at.isoformat()}; "
            "enrol it again with a new expiry"
        )
    check_four_eyes(row.requested_by, approver)
    updated = replace(
        row, status=EntryStatus.ACTIVE.value, approved_by=approver, approved_at=now, updated_at=now
    )
    upsert(watchlist_table(storage.db), rows_to_arrow([updated], WatchlistRow.SCHEMA))
    return updated


def remove(
    storage: Storage, entry_id: str, removed_by: str, note: str, now: dt.datetime | None = None
) -> WatchlistRow:
    """Stop an entry matching. The row and its alerts stay; its template goes.

    The template (a face entry's embeddings, a plate entry's plate or pattern) is
    cleared from the row and then purged from the table's history:
    :func:`purge_history` rewrites the files that held it and deletes every older
    version, so ``checkout`` of an earlier version cannot bring it back. The face
    crops kept for reviewers are deleted.
    """
    now = now or utcnow()
    row = get_entry(storage, entry_id)
    if row.status == EntryStatus.REMOVED:
        raise BadInputError(
            f"watchlist entry {entry_id} was already removed by {row.removed_by} "
            f"at {row.removed_at.isoformat() if row.removed_at else '?'}"
        )
    updated = replace(
        row,
        status=EntryStatus.REMOVED.value,
        embeddings=[],
        plate_query="",
        removed_by=_required(removed_by, "removed by (the acting user)"),
        removed_at=now,
        removal_note=_required(note, "removal note"),
        updated_at=now,
    )
    table = watchlist_table(storage.db)
    upsert(table, rows_to_arrow([updated], WatchlistRow.SCHEMA))
    delete_crops(storage, row)
    purge_history(table)
    return updated


def purge_history(table: Table) -> None:
    """Rewrite ``table``'s files without deleted rows and drop every version but the latest.

    Compaction materialises deletions (the replaced row's old copy, with its template,
    lives on in a data file until then); cleanup then deletes the files only earlier
    versions referenced. ``delete_unverified=False`` keeps files a concurrent writer may
    have just written but not committed, so a writer racing this loses nothing: at worst
    its commit conflicts and :func:`citywatch.tables.upsert` retries it. A sweep reading
    the old version at that moment fails that one pass (a transient error); the next
    sweep reads the new version. The watchlist is small and rarely written, so that is
    the price of a template that is really gone (LanceDB warns about it: silenced here).
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"optimize\(cleanup_older_than=0\)")
            table.optimize(cleanup_older_than=dt.timedelta(0), delete_unverified=False)
    except (OSError, RuntimeError, ValueError) as exc:  # lance's commit conflict or I/O error
        raise TransientError(
            f"watchlist entry removed, but its template could not yet be purged from the "
            f"table's history ({exc}): the next retention run purges it"
        ) from exc
