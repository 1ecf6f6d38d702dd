"""Requests for a recurring-faces search over the default limits, approved by a second person.

A recurring-faces search over more cameras or a longer window than the defaults
(``recurring_max_cameras`` / ``recurring_max_days``) is recorded as a ``pending``
request of its case; a supervisor other than the requester approves it (four eyes,
as watchlist entries); the requester then runs the search with ``--approval ID`` and
gets results only for a scope inside the approved one, for the same case.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace
from typing import ClassVar

import pyarrow as pa

from citywatch.errors import BadInputError, ForbiddenError, NotFoundError
from citywatch.filters import eq
from citywatch.governance.auth import check_four_eyes
from citywatch.schemas import TS, arrow_to_rows, rows_to_arrow, utcnow
from citywatch.storage import Storage
from citywatch.tables import has_table, open_table, upsert

PENDING = "pending"
APPROVED = "approved"


@dataclass(frozen=True, slots=True)
class ScopeRequestRow:
    """One request to search a scope beyond the default limits, and who approved it."""

    id: str  # "sr-<12 hex>"
    action: str  # the governed action it is for (search_recurring)
    case_id: str
    justification: str
    requested_by: str
    created_at: dt.datetime
    camera_ids: list[str]
    since: dt.datetime
    until: dt.datetime
    over_limits: str  # why it needs approval, as told to the requester
    status: str  # pending | approved
    approved_by: str
    approved_at: dt.datetime | None

    TABLE: ClassVar[str] = "scope_requests"
    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("action", pa.string()),
            pa.field("case_id", pa.string()),
            pa.field("justification", pa.string()),
            pa.field("requested_by", pa.string()),
            pa.field("created_at", TS),
            pa.field("camera_ids", pa.list_(pa.string())),
            pa.field("since", TS),
            pa.field("until", TS),
            pa.field("over_limits", pa.string()),
            pa.field("status", pa.string()),
            pa.field("approved_by", pa.string()),
            pa.field("approved_at", TS),
        ]
    )


def file_request(
    storage: Storage,
    *,
    action: str,
    case_id: str,
    justification: str,
    requested_by: str,
    camera_ids: tuple[str, ...],
    since: dt.datetime,
    until: dt.datetime,
    over_limits: str,
) -> ScopeRequestRow:
    """Record a pending request (the caller has authorized the requester)."""
    now = utcnow()
    row = ScopeRequestRow(
        id=f"sr-{uuid.uuid4().hex[:12]}",
        action=action,
        case_id=case_id,
        justification=justification,
        requested_by=requested_by,
        created_at=now,
        camera_ids=list(camera_ids),
        since=since,
        until=until,
        over_limits=over_limits,
        status=PENDING,
        approved_by="",
        approved_at=None,
    )
    table = open_table(storage.db, ScopeRequestRow.TABLE, ScopeRequestRow.SCHEMA)
    upsert(table, rows_to_arrow([row], ScopeRequestRow.SCHEMA))
    return row


def get_request(storage: Storage, request_id: str) -> ScopeRequestRow:
    if not isinstance(request_id, str) or not request_id.strip():
        raise BadInputError("--approval: give the id of an approved request (sr-...)")
    if has_table(storage.db, ScopeRequestRow.TABLE):
        table = open_table(storage.db, ScopeRequestRow.TABLE, ScopeRequestRow.SCHEMA)
        rows = arrow_to_rows(table.search().where(eq("id", request_id)).limit(1).to_arrow(), ScopeRequestRow)
        if rows:
            return rows[0]
    raise NotFoundError(f"scope request {request_id!r} does not exist")


def approve_request(storage: Storage, request_id: str, case_id: str, approver: str) -> ScopeRequestRow:
    """Approve a pending request of ``case_id``; the approver must not be the requester."""
    row = get_request(storage, request_id)
    if row.case_id != case_id:
        raise ForbiddenError(f"scope request {request_id} belongs to case {row.case_id!r}, not {case_id!r}")
    if row.status != PENDING:
        raise BadInputError(f"scope request {request_id} was already approved by {row.approved_by}")
    check_four_eyes(row.requested_by, approver)
    now = utcnow()
    updated = replace(row, status=APPROVED, approved_by=approver, approved_at=now)
    table = open_table(storage.db, ScopeRequestRow.TABLE, ScopeRequestRow.SCHEMA)
    upsert(table, rows_to_arrow([updated], ScopeRequestRow.SCHEMA))
    return updated


def approved_request(
    storage: Storage, request_id: str, action: str, case_id: str, user: str
) -> ScopeRequestRow:
    """The approved request ``request_id`` for this action, case and requester, or a refusal."""
    row = get_request(storage, request_id)
    if row.action != action or row.case_id != case_id:
        raise ForbiddenError(
            f"scope request {request_id} is for {row.action} in case {row.case_id!r}, "
            f"not {action} in {case_id!r}"
        )
    if row.status != APPROVED:
        raise ForbiddenError(f"scope request {request_id} still waits for a supervisor's approval")
    if row.requested_by != user:
        raise ForbiddenError(
            f"scope request {request_id} was made by {row.requested_by!r}; only they may use it"
        )
    return row
