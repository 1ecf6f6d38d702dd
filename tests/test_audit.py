"""The audit log: hash chain, tamper detection, concurrent appends (local and s3), CLI."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import multiprocessing
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from citywatch.cli.main import main
from citywatch.errors import BadInputError
from citywatch.governance.audit_log import GENESIS_HASH, AuditLog, params_json
from citywatch.governance.auth import write_demo_users
from citywatch.schemas import AuditRow, arrow_to_rows, rows_to_arrow
from citywatch.settings import Settings
from citywatch.storage import Storage

SINCE = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
RECORDS = [  # (user, role, action, outcome, case_id, result_count)
    ("ivy", "investigator", "search_face", "ok", "CASE-1", 4),
    ("ann", "analyst", "search_face", "refused", "", 0),
    ("ivy", "investigator", "search_plate", "ok", "CASE-2", 1),
    ("sam", "supervisor", "watchlist_approve", "ok", "CASE-1", 1),
    ("ivy", "investigator", "export", "failed", "CASE-1", 0),
    ("ada", "admin", "audit_read", "ok", "", 5),
]


def log_at(root: Path) -> AuditLog:
    return AuditLog(Storage(Settings(storage__root=str(root))))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root holding the six RECORDS (copy it before changing anything)."""
    root = tmp_path_factory.mktemp("audit") / "data"
    log = log_at(root)
    for user, role, action, outcome, case_id, count in RECORDS:
        log.record(
            user=user,
            role=role,
            action=action,
            outcome=outcome,
            case_id=case_id,
            justification="suspect in the 2026-11-20 robbery" if case_id else "",
            params={"camera_ids": ["cam-a"], "since": SINCE},
            probe_sha256="ab" * 32 if action == "search_face" else "",
            result_count=count,
            detail="" if outcome == "ok" else "refused or failed",
        )
    return root


@pytest.fixture()
def scratch(pristine: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(pristine, root)
    return root


def test_records_link_into_a_chain_that_verifies(pristine: Path) -> None:
    log = log_at(pristine)
    rows = log.rows()
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:]))
    assert all(r.hash == r.compute_hash() for r in rows)
    assert rows[0].params == '{"camera_ids":["cam-a"],"since":"2026-11-20T00:00:00.000000+00:00"}'
    verdict = log.verify()
    assert (verdict.ok, verdict.checked, verdict.first_bad_seq, verdict.reason) == (True, 6, None, "")
    assert verdict.head_hash == rows[-1].hash


def test_row_round_trips_through_arrow(pristine: Path) -> None:
    rows = log_at(pristine).rows()
    assert arrow_to_rows(rows_to_arrow(rows, AuditRow.SCHEMA), AuditRow) == rows


@pytest.mark.parametrize(
    ("filters", "seqs"),
    [
        ({}, [1, 2, 3, 4, 5, 6]),
        ({"case_id": "CASE-1"}, [1, 4, 5]),
        ({"user": "ivy"}, [1, 3, 5]),
        ({"action": "search_face"}, [1, 2]),
        ({"user": "ivy", "case_id": "CASE-1"}, [1, 5]),
        ({"user": "nobody"}, []),
        ({"user": "o'brien"}, []),  # quotes are escaped, not injected
        ({"limit": 2}, [5, 6]),
    ],
)
def test_list_filters(pristine: Path, filters: dict[str, object], seqs: list[int]) -> None:
    assert [r.seq for r in log_at(pristine).list(**filters)] == seqs  # type: ignore[arg-type]


def _update(seq: int, **values: object) -> Callable[[AuditLog], None]:
    return lambda log: log._table().update(where=f"seq = {seq}", values=values)


def _swap(a: int, b: int) -> Callable[[AuditLog], None]:
    def tamper(log: AuditLog) -> None:
        table = log._table()
        table.update(where=f"seq = {a}", values={"seq": -1})
        table.update(where=f"seq = {b}", values={"seq": a})
        table.update(where="seq = -1", values={"seq": b})

    return tamper


def _rehashed_edit(seq: int) -> Callable[[AuditLog], None]:
    def tamper(log: AuditLog) -> None:  # a careful forger recomputes the record's hash
        row = next(r for r in log.rows() if r.seq == seq)
        edited = dataclasses.replace(row, case_id="OTHER-CASE")
        edited = dataclasses.replace(edited, hash=edited.compute_hash())
        log._table().delete(f"seq = {seq}")
        log._table().add(rows_to_arrow([edited], AuditRow.SCHEMA))

    return tamper


def _forged(seq: int, shift_from: int | None = None) -> Callable[[AuditLog], None]:
    def tamper(log: AuditLog) -> None:  # a well-formed record linked to its predecessor
        rows = log.rows()
        prev = next((r.hash for r in rows if r.seq == seq - 1), GENESIS_HASH)
        forged = dataclasses.replace(rows[0], seq=seq, id="f" * 32, user="mallory", prev_hash=prev, hash="")
        forged = dataclasses.replace(forged, hash=forged.compute_hash())
        if shift_from is not None:
            log._table().update(where=f"seq >= {shift_from}", values_sql={"seq": "seq + 1"})
        log._table().add(rows_to_arrow([forged], AuditRow.SCHEMA))

    return tamper


def _edit_journal(seq: int) -> Callable[[AuditLog], None]:
    def tamper(log: AuditLog) -> None:
        path = Path(log._journal_file(seq))
        path.write_bytes(path.read_bytes().replace(b'"ivy"', b'"eve"'))

    return tamper


def _cut_tail(first: int) -> Callable[[AuditLog], None]:
    def tamper(log: AuditLog) -> None:  # records and journal entries both removed
        log._table().delete(f"seq >= {first}")
        for seq in range(first, len(RECORDS) + 1):
            Path(log._journal_file(seq)).unlink()

    return tamper


TAMPERING = [  # (what was done, tamper, first bad seq, reason fragment)
    ("edit user", _update(3, user="mallory"), 3, "does not match its hash"),
    ("edit action", _update(2, action="analytics_read"), 2, "does not match its hash"),
    ("edit outcome", _update(2, outcome="ok"), 2, "does not match its hash"),
    ("edit case", _update(4, case_id="CASE-9"), 4, "does not match its hash"),
    ("edit params", _update(1, params="{}"), 1, "does not match its hash"),
    ("edit result count", _update(6, result_count=0), 6, "does not match its hash"),
    ("edit time", _update(5, ts=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)), 5, "does not match its hash"),
    ("edit probe hash", _update(1, probe_sha256="cd" * 32), 1, "does not match its hash"),
    ("edit and re-hash", _rehashed_edit(3), 3, "differs from its journal entry"),
    ("delete", lambda log: log._table().delete("seq = 4"), 4, "missing from the audit table"),
    ("delete the last", lambda log: log._table().delete("seq = 6"), 6, "missing from the audit table"),
    ("cut the tail", _cut_tail(5), 5, "records removed from the end"),
    ("swap two seqs", _swap(2, 5), 2, "does not match its hash"),
    ("insert a duplicate seq", _forged(3), 3, "2 records claim"),
    ("insert and renumber", _forged(3, shift_from=3), 3, "differs from its journal entry"),
    ("append a forged record", _forged(7), 7, "no journal entry"),
    ("edit the journal", _edit_journal(5), 5, "differs from its journal entry"),
]


@pytest.mark.parametrize(
    ("tamper", "bad_seq", "reason"), [pytest.param(t, s, r, id=name) for name, t, s, r in TAMPERING]
)
def test_verify_names_the_first_tampered_record(
    scratch: Path, tamper: Callable[[AuditLog], None], bad_seq: int, reason: str
) -> None:
    tamper(log_at(scratch))
    verdict = log_at(scratch).verify()
    assert not verdict.ok
    assert verdict.first_bad_seq == bad_seq
    assert verdict.checked == bad_seq - 1
    assert reason in verdict.reason


def test_anchor_catches_a_rewritten_chain(pristine: Path) -> None:
    log = log_at(pristine)
    head = log.verify()
    assert log.verify(anchor=(head.head_seq, head.head_hash)).ok
    wrong = log.verify(anchor=(3, "0" * 64))
    assert (wrong.ok, wrong.first_bad_seq) == (False, 3)
    assert "anchored" in wrong.reason
    gone = log.verify(anchor=(9, head.head_hash))
    assert (gone.ok, gone.first_bad_seq) == (False, 9)


def test_restore_missing_row_from_journal(scratch: Path) -> None:
    """A writer that died between the journal and the table leaves a gap; restore fills it."""
    log = log_at(scratch)
    log._table().delete("seq = 4")
    assert log.verify().first_bad_seq == 4
    assert log.restore_missing() == [4]
    assert log.verify().ok
    assert log.restore_missing() == []
    after = log.record(user="ada", role="admin", action="audit_restore", outcome="ok")
    assert after.seq == 7 and log.verify().checked == 7


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"probe": b"\xff\xd8 jpeg bytes"}, "never the image"),
        ({"vector": object()}, "not JSON-serialisable"),
        ({"x": float("nan")}, "not valid JSON"),
        (["not", "a", "mapping"], "must be a mapping"),
    ],
)
def test_params_refuse_images_and_junk(params: object, error: str) -> None:
    with pytest.raises(BadInputError, match=error):
        params_json(params)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"outcome": "maybe"}, "outcome"),
        ({"action": "Search Face"}, "action"),
        ({"probe_sha256": "not-a-hash"}, "probe_sha256"),
        ({"result_count": -1}, "result_count"),
    ],
)
def test_record_refuses_bad_fields(tmp_path: Path, kwargs: dict[str, object], error: str) -> None:
    fields: dict[str, object] = {
        "user": "ivy",
        "role": "investigator",
        "action": "search_face",
        "outcome": "ok",
        **kwargs,
    }
    with pytest.raises(BadInputError, match=error):
        log_at(tmp_path).record(**fields)  # type: ignore[arg-type]


# --- several processes appending at once ----------------------------------------
def _append_many(settings: dict[str, object], who: str, count: int, barrier: object) -> None:
    log = AuditLog(Storage(Settings(**settings)))  # type: ignore[arg-type]
    barrier.wait()  # type: ignore[attr-defined]
    for i in range(count):
        log.record(
            user=who, role="investigator", action="search_face", outcome="ok", params={"i": i}, result_count=i
        )


def run_concurrently(settings: dict[str, object], processes: int, each: int) -> None:
    ctx = multiprocessing.get_context("spawn")  # no fork after LanceDB's threads start
    barrier = ctx.Barrier(processes)
    workers = [
        ctx.Process(target=_append_many, args=(settings, f"w{k}", each, barrier)) for k in range(processes)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=240)
    assert [w.exitcode for w in workers] == [0] * processes


def check_linear(log: AuditLog, processes: int, each: int) -> None:
    verdict = log.verify()
    assert verdict.ok, verdict.reason
    assert verdict.checked == processes * each
    rows = log.rows()
    assert [r.seq for r in rows] == list(range(1, processes * each + 1))
    for k in range(processes):  # each writer's records appear in the order it wrote them
        mine = [json.loads(r.params)["i"] for r in rows if r.user == f"w{k}"]
        assert mine == list(range(each))


def test_concurrent_appends_local(tmp_path: Path) -> None:
    settings = {"storage__root": str(tmp_path / "data")}
    run_concurrently(settings, processes=4, each=25)
    check_linear(AuditLog(Storage(Settings(**settings))), 4, 25)  # type: ignore[arg-type]


@pytest.fixture()
def s3_settings(s3_server) -> dict[str, object]:  # noqa: ANN001 - tests.s3.S3Server
    """A real S3 API (moto server) with a fresh bucket."""
    return {
        "storage__root": f"{s3_server.bucket('city')}/prod",
        "s3__endpoint_url": s3_server.endpoint,
        "s3__access_key_id": "testing",
        "s3__secret_access_key": "testing",
        "s3__allow_http": True,
    }


def test_concurrent_appends_s3(s3_settings: dict[str, object]) -> None:
    """The claim is a conditional PUT (If-None-Match: *): two writers never share a seq."""
    run_concurrently(s3_settings, processes=2, each=4)
    log = AuditLog(Storage(Settings(**s3_settings)))  # type: ignore[arg-type]
    check_linear(log, 2, 4)
    assert not log._create_exclusive(3, b"{}")  # an existing claim is never overwritten
    assert log._read_journal(3).seq == 3


def test_s3_tampering_detected(s3_settings: dict[str, object]) -> None:
    log = AuditLog(Storage(Settings(**s3_settings)))  # type: ignore[arg-type]
    for i in range(3):
        log.record(user="ivy", role="investigator", action="export", outcome="ok", result_count=i)
    log._table().update(where="seq = 2", values={"result_count": 99})
    verdict = log.verify()
    assert (verdict.ok, verdict.first_bad_seq) == (False, 2)


def test_refuses_other_storage_schemes() -> None:
    with pytest.raises(BadInputError, match="local or s3"):
        AuditLog(Storage(Settings(storage__root="memory://city")))


# --- CLI -----------------------------------------------------------------------------
@pytest.fixture()
def cli_root(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_demo_users(Storage(Settings(storage__root=str(scratch))))
    monkeypatch.setenv("CITYWATCH_STORAGE__ROOT", str(scratch))
    monkeypatch.delenv("CITYWATCH_USER", raising=False)
    return scratch


@pytest.mark.parametrize(
    ("user", "code", "message"),
    [
        ("demo-admin", 0, "audit log intact: 6 records"),
        ("demo-supervisor", 0, "audit log intact: 6 records"),
        ("demo-investigator", 3, "may not audit_read: that needs the role admin or supervisor"),
        ("demo-analyst", 3, "may not audit_read"),
        (None, 3, "set CITYWATCH_USER"),
        ("stranger", 3, "'stranger' is not in the users file"),
    ],
)
def test_cli_verify_needs_admin_or_supervisor(
    cli_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    user: str | None,
    code: int,
    message: str,
) -> None:
    if user:
        monkeypatch.setenv("CITYWATCH_USER", user)
    assert main(["audit", "verify"]) == code
    out = capsys.readouterr()
    assert message in out.out + out.err
    last = log_at(cli_root).rows()[-1]  # the attempt itself is audited
    assert (last.seq, last.action, last.outcome) == (7, "audit_read", "ok" if code == 0 else "refused")
    assert last.user == (user or "")


def test_cli_verify_reports_the_bad_record(
    cli_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log_at(cli_root)._table().delete("seq = 2")
    monkeypatch.setenv("CITYWATCH_USER", "demo-admin")
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert "BROKEN at record 2" in out and "missing from the audit table" in out
    assert main(["audit", "verify", "--json"]) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert (verdict["ok"], verdict["first_bad_seq"], verdict["checked"]) == (False, 2, 1)
    assert main(["audit", "verify", "--anchor", "not-an-anchor"]) == 2


def test_cli_list_filters_and_json(
    cli_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYWATCH_USER", "demo-supervisor")
    assert main(["audit", "list", "--case", "CASE-1", "--user", "ivy", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["seq"], r["action"], r["outcome"]) for r in rows] == [
        (1, "search_face", "ok"),
        (5, "export", "failed"),
    ]
    assert rows[0]["probe_sha256"] == "ab" * 32 and rows[0]["justification"]
    assert main(["audit", "list", "--action", "audit_read"]) == 0
    out = capsys.readouterr().out
    assert "demo-supervisor" in out and "2 records" in out  # this list and the one before
    reader = log_at(cli_root).rows()[-1]
    assert json.loads(reader.params)["action"] == "audit_read" and reader.result_count == 2
