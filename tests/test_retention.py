"""Retention deletes exactly the expired, unheld rows and their thumbnails."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from citywatch.errors import ForbiddenError, NotFoundError
from citywatch.flows.retention import run_retention
from citywatch.governance.audit_log import AuditLog
from citywatch.governance.auth import write_demo_users
from citywatch.schemas import FaceRow, PlateRow, rows_to_arrow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import faces_table, plates_table, upsert
from citywatch.tasks.retention import add_hold

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
    storage = Storage(Settings(storage_root=str(tmp_path / "data"), user="demo-admin"))
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


def test_retention_needs_admin_and_hold_needs_a_track(root: Storage) -> None:
    with pytest.raises(ForbiddenError):
        run_retention(root.settings.model_copy(update={"user": "demo-investigator"}), now=NOW)
    with pytest.raises(NotFoundError):
        add_hold(root, "CASE-9", "no-such-track", "demo-supervisor", "evidence")
    assert AuditLog(root).rows()[-1].outcome == "refused"
