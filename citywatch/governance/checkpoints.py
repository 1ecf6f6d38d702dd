"""Signed audit checkpoints in write-once storage, and checking the log against them.

A checkpoint says "record ``seq`` of this audit log had hash ``head_hash`` at ``time``",
signed (Ed25519) with the audit key, which the service keeps and the storage root never
holds. Checkpoints are numbered 1, 2, 3, ... and each carries the digest of the one
before it, so they form a chain of their own: one deleted from the middle breaks it.
One is written after every ``audit_checkpoint_every`` records, or at the first record
``audit_checkpoint_minutes`` after the last one (and by ``citywatch audit checkpoint``).
The stores are in :mod:`citywatch.governance.checkpoint_stores`.

:func:`verify_checkpoints` checks every checkpoint (signature by a trusted key, number,
link, the record it names still carrying its hash) and names the first bad one and the
first record after the last good one. What it catches and what it cannot is in
docs/governance.md ("Audit checkpoints").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from citywatch.errors import BadInputError, CitywatchError, NotFoundError
from citywatch.governance.checkpoint_stores import CheckpointStore, Stored, checkpoint_store
from citywatch.governance.keys import (
    ALGORITHM,
    FileKeyStore,
    Signer,
    TrustedKeys,
    canonical_json,
    sign_document,
    trusted_keys,
)
from citywatch.schemas import AuditRow, iso_utc
from citywatch.settings import Settings
from citywatch.storage import Storage

log = logging.getLogger(__name__)

FORMAT = "citywatch-audit-checkpoint/1"
AUDIT_KEY_FILE = "keys/audit_ed25519.pem"
HINT = "audit/checkpoint_hint"  # last checkpoint (number, seq, time): only a hint, checked
ZERO = "0" * 64
_WRITE_ATTEMPTS = 20


def audit_key_store(settings: Settings) -> FileKeyStore:
    path = settings.audit.key_file or str(Path(settings.storage.state_dir).expanduser() / AUDIT_KEY_FILE)
    return FileKeyStore(path, "audit")


def audit_trusted_keys(settings: Settings, key_files: list[str]) -> TrustedKeys:
    """``key_files`` + ``settings.export.trusted_keys_file`` + this installation's audit keys (read only)."""
    files = [*key_files, *([settings.export.trusted_keys_file] if settings.export.trusted_keys_file else [])]
    return trusted_keys(files, audit_key_store(settings))


def name_of(number: int) -> str:
    return f"{number:012d}.json"


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _document(number: int, seq: int, head_hash: str, prev: str, root: str, signer: Signer) -> bytes:
    body: dict[str, object] = {
        "format": FORMAT,
        "number": number,
        "seq": seq,
        "head_hash": head_hash,
        "time": iso_utc(dt.datetime.now(dt.UTC)),
        "prev_digest": prev,
        "root": root,
        "signer": {"algorithm": ALGORITHM, "key_id": signer.key_id, "fingerprint": signer.fingerprint},
    }
    return canonical_json({**body, "signature": sign_document(body, signer)})


@dataclass(frozen=True)
class Written:
    number: int
    seq: int
    location: str


def write_checkpoint(storage: Storage, seq: int, head_hash: str) -> Written | None:
    """Checkpoint record ``seq`` (hash ``head_hash``) unless a later one already covers it."""
    store = checkpoint_store(storage)
    signer = audit_key_store(storage.settings).ensure()
    for _ in range(_WRITE_ATTEMPTS):
        names = store.names()
        number, prev = 1, ZERO
        if names:
            latest = store.read(names[-1])
            document = json.loads(latest)
            if int(document["seq"]) >= seq:
                return None
            number, prev = int(document["number"]) + 1, digest_of(latest)
        if store.put(name_of(number), _document(number, seq, head_hash, prev, storage.root, signer)):
            _write_hint(storage, number, seq)
            return Written(number, seq, store.location)
    raise CitywatchError(
        f"could not write an audit checkpoint to {store.location}: too many concurrent writers"
    )


def _write_hint(storage: Storage, number: int, seq: int) -> None:
    hint = {"number": number, "seq": seq, "time": dt.datetime.now(dt.UTC).timestamp()}
    try:
        storage.write_bytes(HINT, json.dumps(hint).encode())
    except CitywatchError as exc:
        log.warning("could not update the audit checkpoint hint: %s", exc)


def checkpoint_due(storage: Storage, row: AuditRow) -> bool:
    """After ``row``: is a checkpoint due? The hint is trusted only when it is plausible."""
    settings = storage.settings
    try:
        hint = json.loads(storage.read_bytes(storage.url(HINT)))
        seq, at = int(hint["seq"]), float(hint["time"])
    except (NotFoundError, ValueError, KeyError, TypeError):
        return True
    now = dt.datetime.now(dt.UTC).timestamp()
    if seq > row.seq or at > now + 60:  # a hint from the future: someone wants no checkpoints
        return True
    return (
        row.seq - seq >= settings.audit.checkpoint_every or now - at >= 60 * settings.audit.checkpoint_minutes
    )


def maybe_checkpoint(storage: Storage, row: AuditRow) -> None:
    """Write a checkpoint after ``row`` when one is due; a store outage only logs (retried next time)."""
    try:
        if checkpoint_due(storage, row):
            write_checkpoint(storage, row.seq, row.hash)
    except BadInputError as exc:
        log.error("audit checkpoint not written (configuration): %s", exc)
    except (CitywatchError, OSError) as exc:
        log.warning("audit checkpoint not written, will retry at the next record: %s", exc)


# --- verification ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckpointVerdict:
    ok: bool
    checked: int  # checkpoints found good, in order, before the first bad one
    first_bad_checkpoint: int | None
    first_bad_seq: int | None  # the first record after the last good checkpoint, when records are at fault
    reason: str
    last_good_seq: int  # records up to here are covered by a good checkpoint
    location: str


def _check_document(stored: Stored, trusted: TrustedKeys) -> tuple[dict[str, object] | None, str]:
    try:
        document = json.loads(stored.data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"not valid JSON: {exc}"
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return None, f"not a {FORMAT} document"
    body = {k: v for k, v in document.items() if k != "signature"}
    found = document.get("signer")
    signer: dict[str, object] = found if isinstance(found, dict) else {}
    try:
        data = canonical_json(body)
    except BadInputError as exc:
        return None, str(exc)
    problem = trusted.verify(signer.get("key_id"), signer.get("fingerprint"), data, document.get("signature"))
    if problem:
        return None, f"forged or altered: {problem}"
    if any(not isinstance(document.get(k), int) for k in ("number", "seq")):
        return None, "number and seq must be integers"
    return document, ""


def verify_checkpoints(
    rows: Mapping[int, AuditRow], last_seq: int, store: CheckpointStore, trusted: TrustedKeys
) -> CheckpointVerdict:
    """Check every checkpoint in ``store`` and the records (by seq) they vouch for."""
    checked, good_seq, prev = 0, 0, ZERO

    def bad(number: int, reason: str, seq: int | None = None) -> CheckpointVerdict:
        return CheckpointVerdict(
            False, checked, number, seq, f"checkpoint {number}: {reason}", good_seq, store.location
        )

    stored = store.read_all()
    if stored and not trusted:
        return bad(1, "no trusted audit public key to check it with: pass --trusted-keys FILE")
    for expected, item in enumerate(stored, start=1):
        number = int(item.name[:12])
        if number != expected:
            return bad(expected, f"is missing from {store.location} (deleted?): the next one is {number}")
        if item.problems:
            return bad(number, "; ".join(item.problems))
        document, problem = _check_document(item, trusted)
        if document is None:
            return bad(number, problem)
        seq, head_hash = int(document["seq"]), document.get("head_hash")  # type: ignore[call-overload]
        if document.get("number") != number:
            return bad(number, f"its content says it is checkpoint {document.get('number')}")
        if document.get("prev_digest") != prev:
            return bad(number, "does not link to the checkpoint before it (one was replaced or removed)")
        if seq < good_seq:
            return bad(number, f"covers record {seq}, before the previous checkpoint's {good_seq}")
        when = document.get("time")
        if seq > last_seq:
            return bad(
                number,
                f"record {seq} had hash {str(head_hash)[:16]}... at {when}, but the log now ends at "
                f"record {last_seq}: records were removed from the end",
                max(good_seq, last_seq) + 1,
            )
        row = rows.get(seq)
        if row is None or row.hash != head_hash:
            return bad(
                number,
                f"record {seq} had hash {str(head_hash)[:16]}... at {when}; it is now "
                f"{'gone' if row is None else row.hash[:16] + '...'}: records {good_seq + 1}..{seq} "
                "were rewritten",
                good_seq + 1,
            )
        checked, good_seq, prev = checked + 1, seq, digest_of(item.data)
    return CheckpointVerdict(True, checked, None, None, "", good_seq, store.location)
