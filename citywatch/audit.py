"""The tamper-evident audit log: one hash-chained record per guarded action.

Every record carries ``seq`` (1, 2, 3, ...), ``prev_hash`` (the previous record's
hash; 64 zeros for the first) and ``hash = sha256(prev_hash + canonical JSON of every
other field)``. Editing, deleting, inserting or reordering a record breaks the chain
at that record, and :meth:`AuditLog.verify` names it.

Appends are safe from many processes at once (Dask workers, a CLI, a scheduled flow,
on one machine or many). A writer claims sequence number N by creating the journal
object ``audit/seq/<N:012d>.json`` with create-exclusive semantics; the object holds
the whole record, so the claim and the chain link are one atomic step:

- local roots: the record is written to a temporary file and hard-linked to its
  final name (``link`` fails if the name exists, and readers never see half a file);
- s3 roots: a conditional ``PutObject`` with ``If-None-Match: *`` (AWS S3 since 2024,
  MinIO, moto), through s3fs's ``pipe_file(mode="create")``.

A writer that loses the race reads the winner's record (for its hash) and tries
N + 1. Only then is the row appended to the LanceDB table ``audit``, which is what
``list`` queries and ``verify`` checks, record by record, against the journal.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import logging
import os
import posixpath
import re
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, ClassVar, Literal

import pyarrow as pa

from citywatch.errors import BadInputError, NotFoundError, TransientError
from citywatch.filters import sql_string
from citywatch.schemas import TS, arrow_to_rows, rows_to_arrow, utcnow
from citywatch.storage import STORAGE_IO_ERRORS, Storage, is_remote
from citywatch.tables import has_table, open_table

if TYPE_CHECKING:
    from lancedb.table import Table

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
JOURNAL_DIR = "audit/seq"
HEAD_HINT = "audit/head"
OUTCOMES = ("ok", "refused", "failed")
Outcome = Literal["ok", "refused", "failed"]
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ACTION = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_CLAIM_ATTEMPTS = 10_000


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audited action. ``hash`` covers every other field (see module doc)."""

    seq: int
    id: str
    ts: dt.datetime
    user: str
    role: str  # the actor's roles, comma-separated ("" when the user is unknown)
    action: str  # an auth.Action value
    outcome: str  # ok | refused | failed
    case_id: str
    justification: str
    params: str  # canonical JSON of the action's parameters (never images or vectors)
    probe_sha256: str  # sha256 of a probe image, "" when none; never the image itself
    result_count: int
    detail: str  # why it was refused or failed; "" when ok
    host: str
    prev_hash: str
    hash: str

    TABLE: ClassVar[str] = "audit"
    SCHEMA: ClassVar[pa.Schema] = pa.schema([
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("ts", TS),
        pa.field("user", pa.string()),
        pa.field("role", pa.string()),
        pa.field("action", pa.string()),
        pa.field("outcome", pa.string()),
        pa.field("case_id", pa.string()),
        pa.field("justification", pa.string()),
        pa.field("params", pa.string()),
        pa.field("probe_sha256", pa.string()),
        pa.field("result_count", pa.int64()),
        pa.field("detail", pa.string()),
        pa.field("host", pa.string()),
        pa.field("prev_hash", pa.string()),
        pa.field("hash", pa.string()),
    ])

    def fields_json(self) -> dict[str, object]:
        """Every field as JSON values (timestamps as ISO 8601 UTC, microseconds)."""
        out: dict[str, object] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dt.datetime):
                value = iso_utc(value)
            out[f.name] = value
        return out

    def canonical(self) -> str:
        """Canonical JSON of every field but ``hash`` (sorted keys, no spaces)."""
        body = self.fields_json()
        body.pop("hash")
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def compute_hash(self) -> str:
        return hashlib.sha256((self.prev_hash + self.canonical()).encode("utf-8")).hexdigest()

    def to_journal(self) -> bytes:
        return json.dumps(self.fields_json(), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_journal(cls, data: bytes, source: str) -> "AuditRow":
        try:
            body = json.loads(data.decode("utf-8"))
            body["ts"] = dt.datetime.fromisoformat(body["ts"])
            return cls(**body)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise BadInputError(f"audit journal entry {source} is not a valid record: {exc}") from exc


@dataclass(frozen=True, slots=True)
class AuditVerdict:
    """The result of :meth:`AuditLog.verify`."""

    ok: bool
    checked: int  # records found intact, in order, before the first bad one (all when ok)
    first_bad_seq: int | None  # None when ok
    reason: str  # why first_bad_seq is bad; "" when ok
    head_seq: int = 0  # the last intact record (to write down as an external anchor)
    head_hash: str = ""


def iso_utc(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise BadInputError(f"audit time {value!r} must be timezone-aware")
    return value.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def _json_value(value: object) -> object:
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise BadInputError("audit params must not contain raw bytes: record a probe's "
                            "sha256, never the image")
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
    raise BadInputError(f"audit params value of type {type(value).__name__} is not "
                        "JSON-serialisable (use text, numbers, lists or mappings)")


def params_json(params: Mapping[str, object] | None) -> str:
    """Canonical JSON text of an action's parameters."""
    if params is None:
        return "{}"
    if not isinstance(params, Mapping):
        raise BadInputError(f"audit params must be a mapping, got {type(params).__name__}")
    try:
        return json.dumps(dict(params), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False, default=_json_value, allow_nan=False)
    except ValueError as exc:
        raise BadInputError(f"audit params are not valid JSON: {exc}") from exc


class AuditLog:
    """Append, list and verify the audit log of one storage root."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.host = socket.gethostname()
        journal_url = storage.url(JOURNAL_DIR)
        self._fs, self._journal_path = storage.fs(journal_url)
        protocol = self._fs.protocol
        protocols = {protocol} if isinstance(protocol, str) else set(protocol)
        self._local = bool(protocols & {"file", "local"})
        if not self._local and not protocols & {"s3", "s3a"}:
            raise BadInputError(
                f"storage root {storage.root}: the audit log needs a local or s3:// root "
                "(it relies on create-exclusive writes)")

    # --- appending ---------------------------------------------------------------
    def record(self, *, user: str, role: str, action: str, outcome: Outcome,
               case_id: str = "", justification: str = "",
               params: Mapping[str, object] | None = None, probe_sha256: str = "",
               result_count: int = 0, detail: str = "") -> AuditRow:
        """Append one record and return it (with its seq and hash)."""
        if outcome not in OUTCOMES:
            raise BadInputError(f"audit outcome {outcome!r} must be one of {list(OUTCOMES)}")
        if not _ACTION.match(action):
            raise BadInputError(f"audit action {action!r} must be a lowercase identifier")
        if probe_sha256 and not _SHA256.match(probe_sha256):
            raise BadInputError(f"probe_sha256 {probe_sha256!r} is not a sha256 hex digest")
        if result_count < 0:
            raise BadInputError(f"result_count {result_count} must be >= 0")
        draft = AuditRow(
            seq=0, id=uuid.uuid4().hex, ts=utcnow(), user=user, role=role, action=action,
            outcome=outcome, case_id=case_id, justification=justification,
            params=params_json(params), probe_sha256=probe_sha256,
            result_count=int(result_count), detail=detail, host=self.host,
            prev_hash="", hash="")
        row = self._claim_next(draft)
        self._write_hint(row.seq)
        self._append_row(row)
        return row

    def _claim_next(self, draft: AuditRow) -> AuditRow:
        seq, prev_hash = self._head()
        for _ in range(_CLAIM_ATTEMPTS):
            linked = dataclasses.replace(draft, seq=seq + 1, prev_hash=prev_hash)
            row = dataclasses.replace(linked, hash=linked.compute_hash())
            if self._create_exclusive(row.seq, row.to_journal()):
                return row
            winner = self._read_journal(seq + 1)  # someone else took it: link after theirs
            seq, prev_hash = winner.seq, winner.hash
        raise TransientError(f"could not claim an audit sequence number after "
                             f"{_CLAIM_ATTEMPTS} attempts")

    def _head(self) -> tuple[int, str]:
        """The last claimed (seq, hash): the hint, then probing forward in the journal."""
        seq = self._read_hint()
        last: AuditRow | None = None
        if seq > 0:
            try:
                last = self._read_journal(seq)
            except NotFoundError:  # hint ahead of a damaged journal: fall back to a listing
                seq = max(self._journal_seqs(), default=0)
                last = self._read_journal(seq) if seq else None
        while True:
            try:
                last = self._read_journal(seq + 1)
            except NotFoundError:
                break
            seq += 1
        return (last.seq, last.hash) if last is not None else (0, GENESIS_HASH)

    def _journal_file(self, seq: int) -> str:
        return posixpath.join(self._journal_path, f"{seq:012d}.json")

    def _create_exclusive(self, seq: int, data: bytes) -> bool:
        return self.storage.create_exclusive(self.storage.url(f"{JOURNAL_DIR}/{seq:012d}.json"), data)

    def _read_journal(self, seq: int) -> AuditRow:
        path = self._journal_file(seq)
        try:
            data = self._fs.cat_file(path)
        except FileNotFoundError as exc:
            raise NotFoundError(f"audit journal entry {seq} does not exist") from exc
        except STORAGE_IO_ERRORS as exc:
            raise TransientError(f"could not read audit journal entry {path}: {exc}") from exc
        return AuditRow.from_journal(data, path)

    def _journal_seqs(self) -> list[int]:
        try:
            names = self._fs.ls(self._journal_path, detail=False)
        except FileNotFoundError:
            return []
        seqs = []
        for name in names:
            stem = posixpath.basename(str(name))
            if re.fullmatch(r"\d{12}\.json", stem):
                seqs.append(int(stem[:12]))
        return sorted(seqs)

    def _read_hint(self) -> int:
        try:
            return int(self.storage.read_bytes(self.storage.url(HEAD_HINT)).decode().strip())
        except (NotFoundError, ValueError, UnicodeDecodeError):
            return 0

    def _write_hint(self, seq: int) -> None:
        """Best effort: a stale hint only costs the next writer a few probes."""
        data = str(seq).encode()
        url = self.storage.url(HEAD_HINT)
        try:
            if is_remote(url):
                self.storage.write_bytes(HEAD_HINT, data)
            else:
                tmp = Path(f"{url}.{uuid.uuid4().hex}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, url)
        except (OSError, TransientError) as exc:
            log.warning("could not update the audit head hint: %s", exc)

    def _table(self) -> "Table":
        for attempt in range(5):  # several processes may create it at the same moment
            try:
                return open_table(self.storage.db, AuditRow.TABLE, AuditRow.SCHEMA)
            except (OSError, RuntimeError, ValueError, TransientError) as exc:  # db unreachable
                if attempt == 4:
                    raise TransientError(f"could not open the audit table: {exc}") from exc
                time.sleep(0.05 * (attempt + 1))
        raise TransientError("could not open the audit table")

    def _append_row(self, row: AuditRow) -> None:
        data = rows_to_arrow([row], AuditRow.SCHEMA)
        delay = 0.05
        for attempt in range(1, 9):
            try:
                table = self._table()
                if attempt > 1 and table.count_rows(f"id = {sql_string(row.id)}"):
                    return  # an earlier attempt did land
                table.add(data)
                return
            except (OSError, RuntimeError, ValueError) as exc:
                if attempt == 8:
                    raise TransientError(
                        f"audit record {row.seq} is in the journal but could not be added to "
                        f"the audit table: {exc}; `AuditLog.restore_missing()` adds it") from exc
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    # --- reading -----------------------------------------------------------------
    def rows(self) -> list[AuditRow]:
        """Every row of the audit table, by seq."""
        if not has_table(self.storage.db, AuditRow.TABLE):
            return []
        rows = arrow_to_rows(self._table().to_arrow(), AuditRow)
        return sorted(rows, key=lambda r: r.seq)

    def list(self, case_id: str | None = None, user: str | None = None,
             action: str | None = None, limit: int = 100) -> list[AuditRow]:
        """The latest ``limit`` records matching the filters, oldest first."""
        if limit < 1:
            raise BadInputError(f"--limit {limit} must be at least 1")
        if not has_table(self.storage.db, AuditRow.TABLE):
            return []
        parts = []
        for column, value in (("case_id", case_id), ("user", user), ("action", action)):
            if value is not None:
                parts.append(f"`{column}` = {sql_string(value)}")
        table = self._table()
        query = table.search()
        if parts:
            query = query.where(" AND ".join(parts))
        found = query.limit(max(1, table.count_rows())).to_arrow()
        rows = sorted(arrow_to_rows(found, AuditRow), key=lambda r: r.seq)
        return rows[-limit:]

    def journal(self) -> dict[int, AuditRow | str]:
        """Every journal entry by seq (an error text for an unreadable one)."""
        seqs = self._journal_seqs()
        paths = [self._journal_file(s) for s in seqs]
        try:
            blobs = self._fs.cat(paths, on_error="return") if paths else {}
        except STORAGE_IO_ERRORS as exc:
            raise TransientError(f"could not read the audit journal: {exc}") from exc
        out: dict[int, AuditRow | str] = {}
        for seq, path in zip(seqs, paths):
            blob = blobs.get(path) if isinstance(blobs, dict) else None
            if not isinstance(blob, bytes):
                out[seq] = f"unreadable: {blob}"
                continue
            try:
                out[seq] = AuditRow.from_journal(blob, path)
            except BadInputError as exc:
                out[seq] = str(exc)
        return out

    def verify(self, *, anchor: tuple[int, str] | None = None) -> AuditVerdict:
        """Check the chain record by record and against the journal; name the first bad one.

        ``anchor`` (seq, hash): a head written down elsewhere earlier; the record at that
        seq must still carry that hash (catches a rewrite of the whole chain).
        """
        return verify_chain(self.rows(), self.journal(), anchor=anchor,
                            claimed_head=self._read_hint())

    def restore_missing(self) -> list[int]:
        """Add journal records missing from the table (a writer died between the two)."""
        have = {r.seq for r in self.rows()}
        restored = []
        for seq, entry in sorted(self.journal().items()):
            if seq in have or not isinstance(entry, AuditRow):
                continue
            if entry.seq != seq or entry.hash != entry.compute_hash():
                continue  # a damaged entry is never copied; verify reports it
            self._append_row(entry)
            restored.append(seq)
        return restored


def verify_chain(rows: list[AuditRow], journal: Mapping[int, AuditRow | str], *,
                 anchor: tuple[int, str] | None = None, claimed_head: int = 0) -> AuditVerdict:
    """The verdict on ``rows`` (the table) given ``journal`` (see :meth:`AuditLog.verify`).

    ``claimed_head``: the head hint; writers only ever set it to a seq they claimed, so a
    log that ends before it lost records at its end.
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
                return bad(seq, "missing from the audit table, though the journal has it "
                                "(deleted? `citywatch audit restore` puts it back)")
            return bad(seq, "missing from the audit table and from the journal (deleted?)")
        if len(found) > 1:
            return bad(seq, f"{len(found)} records claim this sequence number (one was inserted)")
        row = found[0]
        if row.hash != row.compute_hash():
            return bad(seq, "its content does not match its hash (changed after it was written)")
        if row.prev_hash != prev_hash:
            return bad(seq, "its prev_hash does not match the hash of the record before it "
                            "(a record was inserted, removed or reordered)")
        if entry is None:
            return bad(seq, "no journal entry (not written by citywatch: forged?)")
        if isinstance(entry, str):
            return bad(seq, f"its journal entry is damaged: {entry}")
        if entry != row:
            return bad(seq, "differs from its journal entry (changed and re-hashed?)")
        if anchor is not None and anchor[0] == seq and anchor[1] != row.hash:
            return bad(seq, f"its hash {row.hash[:16]}... is not the anchored {anchor[1][:16]}...")
        prev_hash, checked = row.hash, checked + 1
    if claimed_head > last:
        return bad(last + 1, f"the log ends at record {last}, but record {claimed_head} was "
                             "written (records removed from the end?)")
    if anchor is not None and anchor[0] > last:
        return bad(anchor[0], f"the anchored record is gone (the log ends at {last})")
    return AuditVerdict(True, checked, None, "", checked, prev_hash)
