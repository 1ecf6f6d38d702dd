"""Cases (id, title, legal basis) and the sightings a case keeps as evidence.

A case is what every governed action in the console is tied to: its legal basis is
the justification the console's searches, evidence and media views are audited with.
Two small tables, keyed on ``id`` like the others (:mod:`citywatch.tables`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import ClassVar

import pyarrow as pa

from citywatch.errors import BadInputError, NotFoundError
from citywatch.filters import eq
from citywatch.schemas import TS, arrow_to_rows, rows_to_arrow, utcnow
from citywatch.shards import read_index
from citywatch.storage import Storage
from citywatch.tables import has_table, open_table, upsert

CASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,63}")
MIN_BASIS = 10


@dataclass(frozen=True, slots=True)
class CaseRow:
    """An investigation: what the console's actions are tied to and justified by."""

    id: str
    title: str
    legal_basis: str
    created_by: str
    created_at: dt.datetime

    TABLE: ClassVar[str] = "cases"
    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("title", pa.string()),
            pa.field("legal_basis", pa.string()),
            pa.field("created_by", pa.string()),
            pa.field("created_at", TS),
        ]
    )


@dataclass(frozen=True, slots=True)
class EvidenceRow:
    """A face or plate sighting a case keeps as evidence, with the investigator's note."""

    id: str  # "<case_id>|<kind>|<sighting_id>"
    case_id: str
    kind: str  # face | plate
    sighting_id: str  # the faces or plates row
    camera_id: str
    ts: dt.datetime
    note: str
    kept_by: str
    kept_at: dt.datetime

    TABLE: ClassVar[str] = "case_evidence"
    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("case_id", pa.string()),
            pa.field("kind", pa.string()),
            pa.field("sighting_id", pa.string()),
            pa.field("camera_id", pa.string()),
            pa.field("ts", TS),
            pa.field("note", pa.string()),
            pa.field("kept_by", pa.string()),
            pa.field("kept_at", TS),
        ]
    )


SIGHTING_TABLES = {"face": "faces", "plate": "plates"}


@dataclass(frozen=True, slots=True)
class SightingRef:
    """What the console may know of one indexed face or plate (its thumbnail stays server-side)."""

    kind: str
    id: str
    camera_id: str
    ts: dt.datetime
    thumb_uri: str


def check_case_id(case_id: str) -> str:
    if not CASE_ID.fullmatch(case_id):
        raise BadInputError(
            f"case id {case_id[:80]!r} must be 1-64 letters, digits, '_ . / -', "
            "starting with a letter or digit"
        )
    return case_id


def new_case(storage: Storage, case_id: str, title: str, legal_basis: str, user: str) -> CaseRow:
    """Create a case; an existing id is refused (open it instead)."""
    check_case_id(case_id)
    title, legal_basis = title.strip(), legal_basis.strip()
    if not 1 <= len(title) <= 200:
        raise BadInputError("title must be 1-200 characters")
    if not MIN_BASIS <= len(legal_basis) <= 1000:
        raise BadInputError(f"legal basis must be {MIN_BASIS}-1000 characters saying why the case needs it")
    if find_case(storage, case_id) is not None:
        raise BadInputError(f"case {case_id!r} exists already: open it instead")
    row = CaseRow(case_id, title, legal_basis, user, utcnow())
    upsert(open_table(storage.db, CaseRow.TABLE, CaseRow.SCHEMA), rows_to_arrow([row], CaseRow.SCHEMA))
    return row


def find_case(storage: Storage, case_id: str) -> CaseRow | None:
    if not has_table(storage.db, CaseRow.TABLE):
        return None
    table = open_table(storage.db, CaseRow.TABLE, CaseRow.SCHEMA)
    rows = arrow_to_rows(table.search().where(eq("id", case_id)).limit(1).to_arrow(), CaseRow)
    return rows[0] if rows else None


def get_case(storage: Storage, case_id: str) -> CaseRow:
    row = find_case(storage, check_case_id(case_id))
    if row is None:
        raise NotFoundError(f"case {case_id!r} does not exist: create it first")
    return row


def list_cases(storage: Storage) -> list[CaseRow]:
    if not has_table(storage.db, CaseRow.TABLE):
        return []
    rows = arrow_to_rows(open_table(storage.db, CaseRow.TABLE, CaseRow.SCHEMA).to_arrow(), CaseRow)
    return sorted(rows, key=lambda r: r.created_at, reverse=True)


def find_sighting(storage: Storage, kind: str, sighting_id: str) -> SightingRef:
    """The indexed face or plate ``sighting_id`` (NotFoundError when there is none)."""
    table_name = SIGHTING_TABLES.get(kind)
    if table_name is None:
        raise BadInputError(f"kind {kind[:20]!r} must be one of {sorted(SIGHTING_TABLES)}")
    if len(sighting_id) > 300:
        raise NotFoundError(f"{kind} {sighting_id[:80]!r} is not in the index")
    columns = ["id", "camera_id", "ts", "thumb_uri"]
    rows = read_index(storage.db, table_name, eq("id", sighting_id), columns, limit=1)
    found = rows.to_pylist() if rows is not None else []
    if not found:
        raise NotFoundError(f"{kind} {sighting_id[:80]!r} is not in the index")
    row = found[0]
    return SightingRef(kind, row["id"], row["camera_id"], row["ts"], row["thumb_uri"])


def keep_evidence(storage: Storage, case_id: str, seen: SightingRef, note: str, user: str) -> EvidenceRow:
    """Keep a sighting as evidence of ``case_id`` (keeping it again replaces the note)."""
    note = note.strip()
    if len(note) > 1000:
        raise BadInputError("note must be at most 1000 characters")
    row = EvidenceRow(
        f"{case_id}|{seen.kind}|{seen.id}",
        case_id,
        seen.kind,
        seen.id,
        seen.camera_id,
        seen.ts,
        note,
        user,
        utcnow(),
    )
    table = open_table(storage.db, EvidenceRow.TABLE, EvidenceRow.SCHEMA)
    upsert(table, rows_to_arrow([row], EvidenceRow.SCHEMA))
    return row


def list_evidence(storage: Storage, case_id: str) -> list[EvidenceRow]:
    if not has_table(storage.db, EvidenceRow.TABLE):
        return []
    table = open_table(storage.db, EvidenceRow.TABLE, EvidenceRow.SCHEMA)
    rows = arrow_to_rows(table.search().where(eq("case_id", case_id)).limit(None).to_arrow(), EvidenceRow)
    return sorted(rows, key=lambda r: r.ts)
