"""Signed audit records and signed checkpoints in write-once storage: the tamper table.

A log of ten records with a checkpoint every three records (checkpoints 1-4 vouch
for records 1, 4, 7 and 10) is attacked the ways someone with write access to the
storage root would; each attack must be detected, naming the first bad record or
checkpoint. The attacker here has the audit prefix (table, journal, head hint) but not
the checkpoint store, unless a row says otherwise. S3 Object Lock is tested on moto.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from citywatch.cli.main import main
from citywatch.errors import BadInputError
from citywatch.governance.audit_log import HEAD_HINT, AuditLog
from citywatch.governance.audit_records import signed_bytes
from citywatch.governance.checkpoint_stores import checkpoint_location
from citywatch.governance.checkpoints import HINT, audit_key_store, write_checkpoint
from citywatch.governance.keys import FileKeyStore, sign_document
from citywatch.schemas import AuditRow, rows_to_arrow
from citywatch.settings import Settings
from citywatch.storage import Storage
from tests.s3 import KEY, REGION

RECORDS = 10
EVERY = 3  # checkpoints after records 1, 4, 7, 10


def settings_at(root: Path, **extra: object) -> Settings:
    return Settings(
        storage__root=str(root / "data"),
        storage__state_dir=str(root / "state"),
        audit__checkpoint_every=EVERY,
        **extra,  # type: ignore[arg-type]
    )


def write_records(log: AuditLog, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        log.record(
            user=f"user{n % 3}",
            role="investigator",
            action="search_face",
            outcome="ok",
            case_id=f"CASE-{n}",
            justification="looking for a missing person",
            result_count=n,
        )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("checkpointed")
    write_records(AuditLog(Storage(settings_at(base))), RECORDS)
    return base


@pytest.fixture()
def scratch(pristine: Path, tmp_path: Path) -> Path:
    """A copy of root, state (keys) and checkpoint store, at the same relative places."""
    shutil.copytree(pristine, tmp_path, dirs_exist_ok=True)
    old = checkpoint_location(Storage(settings_at(pristine)))
    new = checkpoint_location(Storage(settings_at(tmp_path)))
    shutil.copytree(old, new)
    return tmp_path


def log_at(base: Path) -> AuditLog:
    return AuditLog(Storage(settings_at(base)))


def checkpoint_dir(base: Path) -> Path:
    return Path(checkpoint_location(Storage(settings_at(base))))


# --- what an attacker does ----------------------------------------------------------------------
Tamper = Callable[[AuditLog, Path], None]


def _journal_write(log: AuditLog, row: AuditRow, signer: FileKeyStore | None) -> None:
    signature = None
    if signer is not None:
        value = base64.b64encode(signer.sign(signed_bytes(row.hash))).decode()
        signature = {"key_id": signer.key_id, "value": value}
    Path(log._journal_file(row.seq)).write_bytes(row.to_journal(signature))


def _rewrite_from(seq: int, *, drop: bool, stolen_key: bool) -> Tamper:
    """Rewrite records ``seq``.. consistently: table, journal and hint, every hash recomputed."""

    def tamper(log: AuditLog, base: Path) -> None:
        rows = log.rows()
        signer = audit_key_store(log.storage.settings).ensure() if stolen_key else None
        kept, rewritten = rows[: seq - 1], rows[seq:] if drop else rows[seq - 1 :]
        prev = kept[-1].hash
        new_rows = []
        for number, row in enumerate(rewritten, start=seq):
            if not drop and number == seq:
                row = dataclasses.replace(row, case_id="OTHER-CASE")
            row = dataclasses.replace(row, seq=number, prev_hash=prev)
            row = dataclasses.replace(row, hash=row.compute_hash())
            new_rows.append(row)
            prev = row.hash
        log._table().delete(f"seq >= {seq}")
        log._table().add(rows_to_arrow(new_rows, AuditRow.SCHEMA))
        for stale in range(seq, len(rows) + 1):
            Path(log._journal_file(stale)).unlink()
        for row in new_rows:
            _journal_write(log, row, signer)
        log.storage.write_bytes(HEAD_HINT, str(new_rows[-1].seq if new_rows else seq - 1).encode())

    return tamper


def _truncate(first: int) -> Tamper:
    def tamper(log: AuditLog, base: Path) -> None:  # records, journal and hint all agree
        log._table().delete(f"seq >= {first}")
        for seq in range(first, RECORDS + 1):
            Path(log._journal_file(seq)).unlink()
        log.storage.write_bytes(HEAD_HINT, str(first - 1).encode())
        log.storage.write_bytes(HINT, b'{"number": 1, "seq": 1, "time": 0}')

    return tamper


def _forged_append(*, own_key: bool) -> Tamper:
    def tamper(log: AuditLog, base: Path) -> None:
        last = log.rows()[-1]
        forged = dataclasses.replace(
            last, seq=last.seq + 1, id="f" * 32, user="mallory", case_id="COVER-UP", prev_hash=last.hash
        )
        forged = dataclasses.replace(forged, hash=forged.compute_hash())
        log._table().add(rows_to_arrow([forged], AuditRow.SCHEMA))
        signer = FileKeyStore(base / "mallory" / "key.pem", "audit").ensure() if own_key else None
        _journal_write(log, forged, signer)
        log.storage.write_bytes(HEAD_HINT, str(forged.seq).encode())

    return tamper


def _swap(a: int, b: int) -> Tamper:
    def tamper(log: AuditLog, base: Path) -> None:
        table = log._table()
        table.update(where=f"seq = {a}", values={"seq": -1})
        table.update(where=f"seq = {b}", values={"seq": a})
        table.update(where="seq = -1", values={"seq": b})

    return tamper


def _insert(at: int) -> Tamper:
    def tamper(log: AuditLog, base: Path) -> None:
        rows = log.rows()
        before = rows[at - 2]
        forged = dataclasses.replace(before, seq=at, id="e" * 32, user="mallory", prev_hash=before.hash)
        forged = dataclasses.replace(forged, hash=forged.compute_hash())
        log._table().update(where=f"seq >= {at}", values_sql={"seq": "seq + 1"})
        log._table().add(rows_to_arrow([forged], AuditRow.SCHEMA))

    return tamper


def _delete_checkpoint(number: int) -> Tamper:
    return lambda log, base: (checkpoint_dir(base) / f"{number:012d}.json").unlink()


def _forge_checkpoint(number: int) -> Tamper:
    def tamper(log: AuditLog, base: Path) -> None:  # replaced by one signed with another key
        path = checkpoint_dir(base) / f"{number:012d}.json"
        document = json.loads(path.read_bytes())
        forger = FileKeyStore(base / "mallory" / "audit.pem", "audit").ensure()
        document["signer"] = {"algorithm": "Ed25519", "key_id": forger.key_id}
        document["signer"]["fingerprint"] = forger.fingerprint
        document["seq"] = 8  # "the log ended at 8"
        body = {k: v for k, v in document.items() if k != "signature"}
        document["signature"] = sign_document(body, forger)
        path.unlink()
        path.write_text(json.dumps(document))

    return tamper


TAMPERING = [  # (what was done, tamper, first bad record, first bad checkpoint, reason fragment)
    ("edit", lambda log, _: log._table().update(where="seq = 5", values={"user": "x"}), 5, None, "its hash"),
    ("delete", lambda log, base: log._table().delete("seq = 6"), 6, None, "missing from the audit table"),
    ("reorder", _swap(3, 8), 3, None, "does not match its hash"),
    ("insert", _insert(4), 4, 2, "differs from its journal entry"),
    ("truncate", _truncate(9), 9, 4, "records were removed from the end"),
    ("forged append, hashes recomputed", _forged_append(own_key=False), 11, None, "is not signed"),
    ("forged append, signed with own key", _forged_append(own_key=True), 11, None, "not a trusted key"),
    ("consistent rewrite", _rewrite_from(5, drop=True, stolen_key=False), 5, 3, "is not signed"),
    ("consistent rewrite, stolen key", _rewrite_from(5, drop=False, stolen_key=True), 5, 3, "rewritten"),
    ("checkpoint deleted", _delete_checkpoint(2), None, 2, "is missing"),
    ("checkpoint forged with another key", _forge_checkpoint(4), None, 4, "not a trusted key"),
]


@pytest.mark.parametrize(
    ("tamper", "bad_seq", "bad_checkpoint", "reason"),
    [pytest.param(t, s, c, r, id=name) for name, t, s, c, r in TAMPERING],
)
def test_every_tampering_is_detected_and_named(
    scratch: Path, tamper: Tamper, bad_seq: int | None, bad_checkpoint: int | None, reason: str
) -> None:
    assert log_at(scratch).verify().ok
    tamper(log_at(scratch), scratch)
    verdict = log_at(scratch).verify()
    assert not verdict.ok
    assert (verdict.first_bad_seq, verdict.first_bad_checkpoint) == (bad_seq, bad_checkpoint), verdict.reason
    assert reason in verdict.reason


def test_the_pristine_log_is_vouched_for_by_four_checkpoints(pristine: Path) -> None:
    verdict = log_at(pristine).verify()
    assert (verdict.ok, verdict.checked, verdict.checkpoints, verdict.covered_seq) == (True, 10, 4, 10)
    files = sorted(p.name for p in checkpoint_dir(pristine).iterdir())
    assert files == [f"{n:012d}.json" for n in (1, 2, 3, 4)]
    assert [json.loads((checkpoint_dir(pristine) / f).read_text())["seq"] for f in files] == [1, 4, 7, 10]


def test_a_hint_from_the_future_does_not_stop_checkpoints(scratch: Path) -> None:
    log = log_at(scratch)
    log.storage.write_bytes(HINT, json.dumps({"number": 9, "seq": 10**9, "time": 4e9}).encode())
    write_records(log, 1, start=RECORDS)
    assert log_at(scratch).verify().covered_seq == RECORDS + 1


def test_cli_names_the_truncation_and_exits_1(
    scratch: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from citywatch.governance.auth import write_demo_users

    settings = settings_at(scratch)
    write_demo_users(Storage(settings))
    _truncate(9)(log_at(scratch), scratch)
    args = ["--root", settings.storage.root, "--user", "demo-admin", "audit", "verify"]
    monkeypatch.setenv("CITYWATCH_STORAGE__STATE_DIR", settings.storage.state_dir)
    monkeypatch.setenv("CITYWATCH_AUDIT__CHECKPOINT_EVERY", str(EVERY))
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "BROKEN at record 9" in out and "checkpoint 4" in out


def test_a_checkpoint_store_inside_the_storage_root_is_refused(tmp_path: Path) -> None:
    settings = settings_at(tmp_path, audit__checkpoint_url=str(tmp_path / "data" / "audit" / "cp"))
    with pytest.raises(BadInputError, match="inside the storage root"):
        checkpoint_location(Storage(settings))


# --- S3 Object Lock ---------------------------------------------------------------------------
def _client(endpoint: str):  # noqa: ANN202
    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=KEY, region_name=REGION
    )


def test_s3_object_lock_checkpoints_cannot_be_removed_unseen(s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    client = _client(s3_server.endpoint)
    client.create_bucket(Bucket="audit-worm", ObjectLockEnabledForBucket=True)
    root = s3_server.bucket()
    settings = s3_server.settings(
        f"{root}/city",
        storage__state_dir=str(tmp_path / "state"),
        audit__checkpoint_every=EVERY,
        audit__checkpoint_url="s3://audit-worm/checkpoints",
    )
    log = AuditLog(Storage(settings))
    write_records(log, 4)
    listed = client.list_objects_v2(Bucket="audit-worm", Prefix="checkpoints/")["Contents"]
    keys = [o["Key"] for o in listed]
    assert keys == ["checkpoints/000000000001.json", "checkpoints/000000000002.json"]
    head = client.head_object(Bucket="audit-worm", Key=keys[0])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > dt.datetime.now(dt.UTC) + dt.timedelta(days=3000)
    version = client.list_object_versions(Bucket="audit-worm", Prefix=keys[0])["Versions"][0]["VersionId"]
    with pytest.raises(client.exceptions.ClientError, match="AccessDenied"):
        client.delete_object(Bucket="audit-worm", Key=keys[0], VersionId=version)
    assert AuditLog(Storage(settings)).verify().ok
    client.delete_object(Bucket="audit-worm", Key=keys[1])  # leaves a delete marker only
    verdict = AuditLog(Storage(settings)).verify()
    assert (verdict.ok, verdict.first_bad_checkpoint) == (False, 2)
    assert "someone deleted it" in verdict.reason


def test_s3_store_without_object_lock_is_refused(s3_server, tmp_path: Path) -> None:  # noqa: ANN001
    root = s3_server.bucket()
    plain = s3_server.bucket("plain")
    settings = s3_server.settings(
        f"{root}/city", storage__state_dir=str(tmp_path / "state"), audit__checkpoint_url=f"{plain}/cp"
    )
    with pytest.raises(BadInputError, match="has no Object Lock"):
        write_checkpoint(Storage(settings), 1, "0" * 64)


def test_cli_checkpoint_covers_the_head_now(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from citywatch.governance.auth import write_demo_users

    settings = settings_at(tmp_path).updated(audit__checkpoint_every=1000)
    write_demo_users(Storage(settings))
    write_records(AuditLog(Storage(settings)), 3)  # checkpoint 1 covers record 1 only
    assert log_at(tmp_path).verify().covered_seq == 1
    monkeypatch.setenv("CITYWATCH_STORAGE__STATE_DIR", settings.storage.state_dir)
    args = ["--root", settings.storage.root, "audit", "checkpoint"]
    assert main(["--user", "demo-investigator", *args]) == 3
    assert main(["--user", "demo-admin", *args]) == 0
    assert "checkpoint 2 covers record 4" in capsys.readouterr().out  # 4: the refusal just audited
    verdict = AuditLog(Storage(settings)).verify()
    assert (verdict.ok, verdict.checkpoints, verdict.covered_seq) == (True, 2, 4)
