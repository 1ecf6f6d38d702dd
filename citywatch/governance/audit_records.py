"""Audit records and the hash chain: the record format, canonical JSON, and the check.

Every record carries ``seq`` (1, 2, 3, ...), ``prev_hash`` (the previous record's
hash; 64 zeros for the first) and ``hash = sha256(prev_hash + canonical JSON of every
other field)``. Editing, deleting, inserting or reordering a record breaks the chain
at that record, and :func:`verify_chain` names it. Storage and concurrent appends are
:mod:`citywatch.governance.audit_log`'s.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal

from citywatch.errors import BadInputError
from citywatch.schemas import SIGNATURE_FIELD, AuditRow, iso_utc

GENESIS_HASH = "0" * 64
OUTCOMES = ("ok", "refused", "failed")
Outcome = Literal["ok", "refused", "failed"]


@dataclass(frozen=True, slots=True)
class AuditVerdict:
    """The result of :meth:`AuditLog.verify`."""

    ok: bool
    checked: int  # records found intact, in order, before the first bad one (all when ok)
    first_bad_seq: int | None  # None when ok
    reason: str  # why first_bad_seq is bad; "" when ok
    head_seq: int = 0  # the last intact record (to write down as an external anchor)
    head_hash: str = ""
    checkpoints: int = 0  # signed checkpoints found good
    first_bad_checkpoint: int | None = None
    covered_seq: int = 0  # records up to here are vouched for by a good checkpoint
    checkpoint_store: str = ""


def signed_bytes(record_hash: str) -> bytes:
    """What a writer signs for one record: its hash, with a domain prefix."""
    return f"citywatch-audit-record/1 {record_hash}".encode()


def journal_signature(data: bytes) -> dict[str, object] | None:
    """The signature object of a journal entry, or None."""
    try:
        found = json.loads(data.decode("utf-8")).get(SIGNATURE_FIELD)
    except (UnicodeDecodeError, ValueError, AttributeError):
        return None
    return found if isinstance(found, dict) else None


def _json_value(value: object) -> object:
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise BadInputError(
            "audit params must not contain raw bytes: record a probe's sha256, never the image"
        )
    if isinstance(value, dt.datetime):
        return iso_utc(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise BadInputError(
        f"audit params value of type {type(value).__name__} is not "
        "JSON-serialisable (use text, numbers, lists or mappings)"
    )


def params_json(params: Mapping[str, object] | None) -> str:
    """Canonical JSON text of an action's parameters."""
    if params is None:
        return "{}"
    if not isinstance(params, Mapping):
        raise BadInputError(f"audit params must be a mapping, got {type(params).__name__}")
    try:
        return json.dumps(
            dict(params),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            default=_json_value,
            allow_nan=False,
        )
    except ValueError as exc:
        raise BadInputError(f"audit params are not valid JSON: {exc}") from exc


def verify_chain(
    rows: list[AuditRow],
    journal: Mapping[int, AuditRow | str],
    *,
    anchor: tuple[int, str] | None = None,
    claimed_head: int = 0,
    signature_problem: Callable[[int, AuditRow], str] | None = None,
) -> AuditVerdict:
    """The verdict on ``rows`` (the table) given ``journal`` (see :meth:`AuditLog.verify`).

    ``claimed_head``: the head hint; writers only ever set it to a seq they claimed, so a
    log that ends before it lost records at its end. ``signature_problem(seq, row)``: why
    the journal entry's signature does not hold ('' when it does).
    """
    by_seq: dict[int, list[AuditRow]] = {}
    for row in rows:
        by_seq.setdefault(row.seq, []).append(row)
    stray = sorted(s for s in by_seq if s < 1)
    last = max([*by_seq, *journal, 0])
    prev_hash, checked = GENESIS_HASH, 0

    def bad(seq: int, reason: str) -> AuditVerdict:
        return AuditVerdict(False, checked, seq, f"record {seq}: {reason}", checked, prev_hash)

    if stray:
        return bad(stray[0], "sequence numbers start at 1 (an inserted record?)")
    for seq in range(1, last + 1):
        found = by_seq.get(seq, [])
        entry = journal.get(seq)
        if not found:
            if isinstance(entry, AuditRow):
                return bad(
                    seq,
                    "missing from the audit table, though the journal has it "
                    "(deleted? `citywatch audit restore` puts it back)",
                )
            return bad(seq, "missing from the audit table and from the journal (deleted?)")
        if len(found) > 1:
            return bad(seq, f"{len(found)} records claim this sequence number (one was inserted)")
        row = found[0]
        if row.hash != row.compute_hash():
            return bad(seq, "its content does not match its hash (changed after it was written)")
        if row.prev_hash != prev_hash:
            return bad(
                seq,
                "its prev_hash does not match the hash of the record before it "
                "(a record was inserted, removed or reordered)",
            )
        if entry is None:
            return bad(seq, "no journal entry (not written by citywatch: forged?)")
        if isinstance(entry, str):
            return bad(seq, f"its journal entry is damaged: {entry}")
        if entry != row:
            return bad(seq, "differs from its journal entry (changed and re-hashed?)")
        problem = signature_problem(seq, row) if signature_problem is not None else ""
        if problem:
            return bad(seq, problem)
        if anchor is not None and anchor[0] == seq and anchor[1] != row.hash:
            return bad(seq, f"its hash {row.hash[:16]}... is not the anchored {anchor[1][:16]}...")
        prev_hash, checked = row.hash, checked + 1
    if claimed_head > last:
        return bad(
            last + 1,
            f"the log ends at record {last}, but record {claimed_head} was "
            "written (records removed from the end?)",
        )
    if anchor is not None and anchor[0] > last:
        return bad(anchor[0], f"the anchored record is gone (the log ends at {last})")
    return AuditVerdict(True, checked, None, "", checked, prev_hash)
