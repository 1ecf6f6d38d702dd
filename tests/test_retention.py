"""Retention deletes exactly the expired, unheld rows and their thumbnails."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from citywatch.derived import DerivedDataset
from citywatch.errors import ForbiddenError, NotFoundError
from citywatch.flows.retention import run_retention
from citywatch.governance.audit_log import AuditLog
from citywatch.governance.auth import Action, write_demo_users
from citywatch.schemas import FaceRow, PlateRow, SegmentRow, rows_to_arrow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import faces_table, plates_table, segments_table, upsert
from citywatch.tasks.retention import add_hold, hold_segments

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def _face(storage: Storage, fid: str, days_old: float, track: str) -> FaceRow:
    ts = NOW - dt.timedelta(days=days_old)
    thumb = storage.write_bytes(f"thumbs/cam-a/{fid}.jpg", b"jpeg")
    return FaceRow(
        id=fid,
        segment_id="cam-a/20261001T000000Z",
        camera_id="cam-a",
        ts=ts,
        bbox=(0.0, 0.0, 1.0, 1.0),
        det_score=0.9,
        quality=0.5,
        embedding=np.zeros(128, np.float32),
        track_id=track,
        track_start=ts,
        track_end=ts,
        thumb_uri=thumb,
        lat=None,
        lon=None,
        model="m",
    )


def _plate(storage: Storage, pid: str, days_old: float) -> PlateRow:
    ts = NOW - dt.timedelta(days=days_old)
    thumb = storage.write_bytes(f"thumbs/cam-a/{pid}.jpg", b"jpeg")
    return PlateRow(
        id=pid,
        segment_id="s",
        camera_id="cam-a",
        ts=ts,
        first_ts=ts,
        last_ts=ts,
        text="AB1234",
        confidence=0.9,
        char_confidences=[0.9] * 6,
        reads=3,
        low_confidence=False,
        bbox=(0.0, 0.0, 1.0, 1.0),
        track_id=pid,
        thumb_uri=thumb,
        lat=None,
        lon=None,
        model="ocr",
    )


@pytest.fixture()
def root(tmp_path: Path) -> Storage:
    storage = Storage(Settings(storage__root=str(tmp_path / "data"), user="demo-admin"))
    write_demo_users(storage)
    faces = [
        _face(storage, "old-1", 40, "t-old"),
        _face(storage, "old-2", 32, "t-old"),
        _face(storage, "held", 60, "t-held"),
        _face(storage, "new", 5, "t-new"),
        _face(storage, "edge", 30.9, "t-edge"),
    ]
    upsert(faces_table(storage.db, 128), rows_to_arrow(faces, FaceRow.schema(128)))
    plates = [_plate(storage, "p-old", 100), _plate(storage, "p-mid", 40)]
    upsert(plates_table(storage.db), rows_to_arrow(plates, PlateRow.SCHEMA))
    return storage


def test_expired_unheld_rows_and_thumbnails_go_nothing_else(root: Storage) -> None:
    add_hold(root, "CASE-9", "t-held", "demo-supervisor", "evidence in case 9")
    summary = run_retention(root.settings, now=NOW)
    faces = {r["id"] for r in root.db.open_table("faces").to_arrow().to_pylist()}
    plates = {r["id"] for r in root.db.open_table("plates").to_arrow().to_pylist()}
    assert faces == {"held", "new", "edge"}
    assert plates == {"p-mid"}
    thumbs = {p.stem for p in Path(root.root, "thumbs", "cam-a").iterdir()}
    assert thumbs == {"held", "new", "edge", "p-mid"}
    assert (summary.faces.deleted_rows, summary.faces.held_rows) == (2, 1)
    assert summary.plates.deleted_rows == 1
    record = AuditLog(root).rows()[-1]
    assert (record.action, record.outcome, record.result_count) == ("retention_run", "ok", 3)
    assert AuditLog(root).verify().ok
    # the analyst dataset follows: what retention deleted is not in it, nor in its history
    derived = DerivedDataset(root.settings).db
    assert {r["id"] for r in derived.open_table("faces").to_arrow().to_pylist()} == faces
    assert {r["id"] for r in derived.open_table("plates").to_arrow().to_pylist()} == plates
    assert len(derived.open_table("faces").list_versions()) == 1


def test_retention_needs_admin_and_hold_needs_a_track(root: Storage) -> None:
    with pytest.raises(ForbiddenError):
        run_retention(root.settings.model_copy(update={"user": "demo-investigator"}), now=NOW)
    with pytest.raises(NotFoundError):
        add_hold(root, "CASE-9", "no-such-track", "demo-supervisor", "evidence")
    assert AuditLog(root).rows()[-1].outcome == "refused"


def _segment(storage: Storage, camera: str, days_old: float) -> SegmentRow:
    start = NOW - dt.timedelta(days=days_old)
    key = f"footage/{camera}/{start:%Y%m%dT%H%M%SZ}.mp4"
    uri = storage.write_bytes(key, b"video " + key.encode())
    return SegmentRow(
        id=f"{camera}/{start:%Y%m%dT%H%M%SZ}",
        camera_id=camera,
        uri=uri,
        start=start,
        end=start + dt.timedelta(seconds=60),
        size_bytes=10,
        sha256="0" * 64,
        state="done",
        error="",
        model="m",
        frames_decoded=1,
        frames_analysed=1,
        faces=0,
        updated_at=start,
    )


def test_footage_past_retention_goes_unless_an_export_holds_it(root: Storage) -> None:
    from citywatch.governance.auth import Actor, GovernedRun, Role

    old, held, recent = (_segment(root, "cam-a", d) for d in (100, 120, 2))
    upsert(segments_table(root.db), rows_to_arrow([old, held, recent], SegmentRow.SCHEMA))
    actor = Actor("demo-investigator", (Role.INVESTIGATOR,))
    run = GovernedRun(actor, Action.EXPORT, "CASE-9", "evidence of the robbery on cam-a")
    hold_segments(root, run, [held.id], "cam-a-export-1")
    settings = root.settings.updated(retention__footage_days=90)
    summary = run_retention(settings, now=NOW)
    assert summary.footage is not None
    assert (summary.footage.deleted_files, summary.footage.held_files) == (1, 1)
    assert not Path(old.uri).exists() and Path(held.uri).exists() and Path(recent.uri).exists()
    hold = next(r for r in AuditLog(root).rows() if r.action == "case_hold")
    assert (hold.user, hold.case_id, hold.outcome) == ("demo-investigator", "CASE-9", "ok")
    assert held.id in hold.params and "cam-a-export-1" in hold.params
    assert "footage: 1 files deleted, 1 held" in AuditLog(root).rows()[-1].detail
    assert AuditLog(root).verify().ok


def test_footage_is_kept_when_no_footage_retention_is_set(root: Storage) -> None:
    segment = _segment(root, "cam-a", 400)
    upsert(segments_table(root.db), rows_to_arrow([segment], SegmentRow.SCHEMA))
    assert run_retention(root.settings, now=NOW).footage is None
    assert Path(segment.uri).exists()


def test_expired_watchlist_entries_forget_their_template_and_crops(root: Storage) -> None:
    """Past its expiry an entry matches nothing; its template and crops go with the daily run."""
    from citywatch.governance.watchlist import EntryRequest, add_plate, get_entry, watchlist_table

    def entry(plate: str, days: int) -> str:
        request = EntryRequest(
            label=f"car {plate}",
            reason="stolen_vehicle",
            case_id="CASE-7",
            justification="car used in the robbery of 20 Nov",
            requested_by="demo-investigator",
            expires_at=NOW - dt.timedelta(days=40) + dt.timedelta(days=days),
        )
        row = add_plate(
            root, plate, request, default_max_distance=0.6, max_days=90, now=NOW - dt.timedelta(days=40)
        )
        return row.id

    expired, live = entry("KT8080", 10), entry("HX517", 60)
    run_retention(root.settings, now=NOW)
    assert get_entry(root, expired).plate_query == "" and get_entry(root, expired).embeddings == []
    assert get_entry(root, live).plate_query == "HX517"
    # gone from the table's history too, not only from its latest version
    table = watchlist_table(root.db)
    for version in table.list_versions():
        table.checkout(version["version"])
        plates = {r["plate_query"] for r in table.to_arrow().to_pylist()}
        assert "KT8080" not in plates
    record = AuditLog(root).rows()[-1]
    assert record.action == "retention_run" and expired in record.detail
