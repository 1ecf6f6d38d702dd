"""The tamper-evident audit log: one hash-chained record per guarded action.

Every record carries ``seq`` (1, 2, 3, ...), ``prev_hash`` (the previous record's
hash; 64 zeros for the first) and ``hash = sha256(prev_hash + canonical JSON of every
other field)``. Editing, deleting, inserting or reordering a record breaks the chain
at that record, and :meth:`AuditLog.verify` names it (the record format and the
chain check live in :mod:`citywatch.governance.audit_records`).

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

Each journal entry also carries the writer's Ed25519 signature of the record's hash
(the audit key, :func:`citywatch.governance.checkpoints.audit_key_store`), so a record
forged by someone without the key fails ``verify`` even with every hash recomputed; and
signed checkpoints in write-once storage (:mod:`citywatch.governance.checkpoints`) catch
records cut from the end.
"""

from __future__ import annotations

import base64
import builtins
import dataclasses
import logging
import os
import posixpath
import re
import socket
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from citywatch.errors import BadInputError, NotFoundError, TransientError
from citywatch.filters import all_of, eq
from citywatch.governance.audit_records import (
    GENESIS_HASH,
    OUTCOMES,
    AuditVerdict,
    Outcome,
    journal_signature,
    params_json,
    signed_bytes,
    verify_chain,
)
from citywatch.governance.checkpoint_stores import checkpoint_store
from citywatch.governance.checkpoints import (
    audit_key_store,
    audit_trusted_keys,
    maybe_checkpoint,
    verify_checkpoints,
)
from citywatch.governance.keys import Signer, TrustedKeys
from citywatch.schemas import AuditRow, arrow_to_rows, rows_to_arrow, utcnow
from citywatch.storage import STORAGE_IO_ERRORS, Storage, is_remote
from citywatch.tables import has_table, open_table

if TYPE_CHECKING:
    from lancedb.table import Table

__all__ = ["GENESIS_HASH", "AuditLog", "AuditRow", "AuditVerdict", "Outcome", "params_json", "verify_chain"]

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ACTION = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

JOURNAL_DIR = "audit/seq"
HEAD_HINT = "audit/head"
_CLAIM_ATTEMPTS = 10_000


class AuditLog:
    """Append, list and verify the audit log of one storage root."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.host = socket.gethostname()
        self._signer: Signer | None = None
        journal_url = storage.url(JOURNAL_DIR)
        self._fs, self._journal_path = storage.fs(journal_url)
        protocol = self._fs.protocol
        protocols = {protocol} if isinstance(protocol, str) else set(protocol)
        self._local = bool(protocols & {"file", "local"})
        if not self._local and not protocols & {"s3", "s3a"}:
            raise BadInputError(
                f"storage root {storage.root}: the audit log needs a local or s3:// root "
                "(it relies on create-exclusive writes)"
            )

    # --- appending ---------------------------------------------------------------
    def record(
        self,
        *,
        user: str,
        role: str,
        action: str,
        outcome: Outcome,
        case_id: str = "",
        justification: str = "",
        params: Mapping[str, object] | None = None,
        probe_sha256: str = "",
        result_count: int = 0,
        detail: str = "",
    ) -> AuditRow:
        """Append one record and return it (with its seq and hash)."""
        if outcome not in OUTCOMES:
            raise BadInputError(f"audit outcome {outcome!r} must be one of {list(OUTCOMES)}")
        if not _ACTION.fullmatch(action):
            raise BadInputError(f"audit action {action!r} must be a lowercase identifier")
        if probe_sha256 and not _SHA256.fullmatch(probe_sha256):
            raise BadInputError(f"probe_sha256 {probe_sha256!r} is not a sha256 hex digest")
        if result_count < 0:
            raise BadInputError(f"result_count {result_count} must be >= 0")
        draft = AuditRow(
            seq=0,
            id=uuid.uuid4().hex,
            ts=utcnow(),
            user=user,
            role=role,
            action=action,
            outcome=outcome,
            case_id=case_id,
            justification=justification,
            params=params_json(params),
            probe_sha256=probe_sha256,
            result_count=int(result_count),
            detail=detail,
            host=self.host,
            prev_hash="",
            hash="",
        )
        row = self._claim_next(draft)
        self._write_hint(row.seq)
        self._append_row(row)
        maybe_checkpoint(self.storage, row)
        return row

    def _signature(self, row: AuditRow) -> dict[str, str]:
        if self._signer is None:
            self._signer = audit_key_store(self.storage.settings).ensure()
        value = base64.b64encode(self._signer.sign(signed_bytes(row.hash))).decode()
        return {"key_id": self._signer.key_id, "value": value}

    def _claim_next(self, draft: AuditRow) -> AuditRow:
        seq, prev_hash = self._head()
        for _ in range(_CLAIM_ATTEMPTS):
            linked = dataclasses.replace(draft, seq=seq + 1, prev_hash=prev_hash)
            row = dataclasses.replace(linked, hash=linked.compute_hash())
            if self._create_exclusive(row.seq, row.to_journal(self._signature(row))):
                return row
            winner = self._read_journal(seq + 1)  # someone else took it: link after theirs
            seq, prev_hash = winner.seq, winner.hash
        raise TransientError(f"could not claim an audit sequence number after {_CLAIM_ATTEMPTS} attempts")

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

    def _table(self) -> Table:
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
                if attempt > 1 and table.count_rows(eq("id", row.id)):
                    return  # an earlier attempt did land
                table.add(data)
                return
            except (OSError, RuntimeError, ValueError) as exc:
                if attempt == 8:
                    raise TransientError(
                        f"audit record {row.seq} is in the journal but could not be added to "
                        f"the audit table: {exc}; `AuditLog.restore_missing()` adds it"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    # --- reading -----------------------------------------------------------------
    def rows(self) -> list[AuditRow]:
        """Every row of the audit table, by seq."""
        if not has_table(self.storage.db, AuditRow.TABLE):
            return []
        rows = arrow_to_rows(self._table().to_arrow(), AuditRow)
        return sorted(rows, key=lambda r: r.seq)

    def list(
        self, case_id: str | None = None, user: str | None = None, action: str | None = None, limit: int = 100
    ) -> list[AuditRow]:
        """The latest ``limit`` records matching the filters, oldest first."""
        if limit < 1:
            raise BadInputError(f"--limit {limit} must be at least 1")
        if not has_table(self.storage.db, AuditRow.TABLE):
            return []
        given = (("case_id", case_id), ("user", user), ("action", action))
        parts = [eq(name, value) for name, value in given if value is not None]
        table = self._table()
        query = table.search()
        if parts:
            query = query.where(all_of(*parts))
        found = query.limit(max(1, table.count_rows())).to_arrow()
        rows = sorted(arrow_to_rows(found, AuditRow), key=lambda r: r.seq)
        return rows[-limit:]

    def journal(self) -> dict[int, AuditRow | str]:
        """Every journal entry by seq (an error text for an unreadable one)."""
        return self._journal()[0]

    def _journal(self) -> tuple[dict[int, AuditRow | str], dict[int, dict[str, object]]]:
        """Journal entries and their signatures, by seq."""
        seqs = self._journal_seqs()
        paths = [self._journal_file(s) for s in seqs]
        try:
            blobs = self._fs.cat(paths, on_error="return") if paths else {}
        except STORAGE_IO_ERRORS as exc:
            raise TransientError(f"could not read the audit journal: {exc}") from exc
        out: dict[int, AuditRow | str] = {}
        signatures: dict[int, dict[str, object]] = {}
        for seq, path in zip(seqs, paths):
            blob = blobs.get(path) if isinstance(blobs, dict) else None
            if not isinstance(blob, bytes):
                out[seq] = f"unreadable: {blob}"
                continue
            try:
                out[seq] = AuditRow.from_journal(blob, path)
            except BadInputError as exc:
                out[seq] = str(exc)
            signature = journal_signature(blob)
            if signature is not None:
                signatures[seq] = signature
        return out, signatures

    def verify(
        self, *, anchor: tuple[int, str] | None = None, trusted: TrustedKeys | None = None
    ) -> AuditVerdict:
        """Check the chain record by record, against the journal, the writers' signatures
        and the signed checkpoints; name the first bad record (or checkpoint).

        ``anchor`` (seq, hash): a head written down elsewhere earlier; the record at that
        seq must still carry that hash. ``trusted``: the audit public keys to accept
        (default: ``trusted_keys_file`` and this installation's own audit keys).
        """
        keys = trusted if trusted is not None else audit_trusted_keys(self.storage.settings, [])
        rows = self.rows()
        journal, signatures = self._journal()

        def signature_problem(seq: int, row: AuditRow) -> str:
            found = signatures.get(seq)
            if found is None:
                return "its journal entry is not signed (not written by citywatch: forged?)"
            if not keys:
                return "no trusted audit public key to check its signature: pass --trusted-keys FILE"
            problem = keys.verify(found.get("key_id"), None, signed_bytes(row.hash), found.get("value"))
            return f"its signature does not hold: {problem}" if problem else ""

        chain = verify_chain(
            rows, journal, anchor=anchor, claimed_head=self._read_hint(), signature_problem=signature_problem
        )
        by_seq = {r.seq: r for r in rows}
        marks = verify_checkpoints(by_seq, max(by_seq, default=0), checkpoint_store(self.storage), keys)
        extra = {
            "checkpoints": marks.checked,
            "first_bad_checkpoint": marks.first_bad_checkpoint,
            "covered_seq": marks.last_good_seq,
            "checkpoint_store": marks.location,
        }
        if chain.ok and marks.ok:
            return dataclasses.replace(chain, **extra)  # type: ignore[arg-type]
        # a broken chain pins the record; a checkpoint alone names the first one it cannot vouch for
        first = chain.first_bad_seq if not chain.ok else marks.first_bad_seq
        reasons = [v.reason for v in (chain, marks) if not v.ok]
        checked = first - 1 if first is not None else chain.checked
        return AuditVerdict(
            False,
            checked,
            first,
            "; ".join(reasons),
            checked,
            by_seq[checked].hash if checked in by_seq else "",
            **extra,  # type: ignore[arg-type]
        )

    def restore_missing(self) -> builtins.list[int]:  # ``list`` in this class is the method above
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
