"""Sweep, alerts and deliveries on real photos, real LanceDB, real HTTP.

Face rows are written the way indexing writes them, with embeddings the real model
makes from real photos: the watchlist entry is enrolled from obama.jpg and "captured"
as obama2.jpg (a different photo); biden.jpg is someone not enrolled.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from citywatch.errors import BadInputError
from citywatch.governance.alerts import (
    AlertState,
    DeliveryState,
    deliveries_by_alert,
    list_alerts,
    review,
)
from citywatch.governance.watchlist import add_plate, approve
from citywatch.schemas import PlateRow, rows_to_arrow, utcnow
from citywatch.settings import Settings
from citywatch.stack.prefect_server import free_port
from citywatch.storage import Storage
from citywatch.tables import plates_table, upsert
from citywatch.tasks.sweep import advance_watermarks, commit_alerts, plan_sweep, sweep_once
from citywatch.tasks.sweep.notify import deliver_pending
from tests.watchlist_support import (
    HOOK,
    NOW,
    THRESHOLD,
    Faces,
    Receiver,
    a_pass,
    add_hook,
    enrol_active,
    faces,  # noqa: F401 - the module's fixture
    make_settings,
    request,
    webhook_settings,
    write_faces,
)


def test_enrolled_person_alerts_once_per_pass_others_never(tmp_path: Path, faces: Faces) -> None:
    settings = make_settings(tmp_path)
    storage = Storage(settings)
    entry = enrol_active(storage, faces)
    walk = a_pass(faces, faces.obama, n=4)
    write_faces(
        storage,
        faces,
        walk + a_pass(faces, faces.biden, track=2) + a_pass(faces, faces.obama, camera="cam-b", track=7),
    )
    result = sweep_once(storage, settings, now=NOW)
    assert (result.faces_read, result.alerts_new) == (10, 2)
    alerts = list_alerts(storage)
    assert {(a.camera_id, a.track_id) for a in alerts} == {
        ("cam-a", "cam-a/S1#t0001"),
        ("cam-b", "cam-b/S1#t0007"),
    }
    first = next(a for a in alerts if a.camera_id == "cam-a")
    assert first.watchlist_id == entry.id and first.score < THRESHOLD
    enrolled = np.asarray(entry.embeddings[0], dtype=np.float32)
    closest = min(walk, key=lambda r: float(np.linalg.norm(r.embedding - enrolled)))
    assert first.sighting_id == closest.id  # the track's closest face, with its thumbnail
    assert (first.lat, first.lon, first.thumb_uri) == (22.3, 114.2, closest.thumb_uri)
    assert first.score == pytest.approx(float(np.linalg.norm(closest.embedding - enrolled)), abs=1e-4)
    again = sweep_once(storage, settings, now=NOW)
    assert (again.faces_read, again.alerts_new) == (0, 0)


def test_rows_written_late_with_old_capture_times_are_swept(tmp_path: Path, faces: Faces) -> None:
    settings = make_settings(tmp_path)
    storage = Storage(settings)
    enrol_active(storage, faces)
    write_faces(storage, faces, a_pass(faces, faces.biden))
    sweep_once(storage, settings, now=NOW)
    yesterday = NOW - dt.timedelta(days=1)
    write_faces(storage, faces, a_pass(faces, faces.obama, segment="LATE", ts=yesterday))
    result = sweep_once(storage, settings, now=NOW)
    assert result.alerts_new == 1 and list_alerts(storage)[0].ts.date() == yesterday.date()


def test_crash_before_the_watermark_moves_neither_misses_nor_duplicates(tmp_path: Path, faces: Faces) -> None:
    settings = make_settings(tmp_path)
    storage = Storage(settings)
    enrol_active(storage, faces)
    write_faces(storage, faces, a_pass(faces, faces.obama))
    plan = plan_sweep(storage, settings, NOW)
    assert commit_alerts(storage, plan) == 1  # ... and the process dies here
    write_faces(storage, faces, a_pass(faces, faces.obama, camera="cam-c"))  # lands meanwhile
    result = sweep_once(storage, settings, now=NOW)
    assert result.faces_read == 6 and result.alerts_new == 1  # the re-read adds only cam-c
    assert sorted(a.camera_id for a in list_alerts(storage)) == ["cam-a", "cam-c"]
    # a crash before the alerts were written: the watermark never moved, nothing is lost
    write_faces(storage, faces, a_pass(faces, faces.obama, camera="cam-d"))
    plan_sweep(storage, settings, NOW)  # dies before writing
    assert sweep_once(storage, settings, now=NOW).alerts_new == 1


def test_watermark_never_moves_back(tmp_path: Path, faces: Faces) -> None:
    settings = make_settings(tmp_path)
    storage = Storage(settings)
    write_faces(storage, faces, a_pass(faces, faces.biden))
    stale = plan_sweep(storage, settings, NOW)
    write_faces(storage, faces, a_pass(faces, faces.biden, segment="S2"))
    sweep_once(storage, settings, now=NOW)
    advance_watermarks(storage, stale.watermarks)  # a slower sweep finishing last
    assert sweep_once(storage, settings, now=NOW).faces_read == 0


def _sweep_at_once(settings: Settings, barrier: threading.Barrier, errors: list) -> None:
    try:
        storage = Storage(settings)  # its own LanceDB connection, as another worker would have
        barrier.wait()
        sweep_once(storage, settings, now=NOW)
        deliver_pending(storage, settings, now=NOW)
    except Exception as exc:  # noqa: BLE001 - handed to the test thread
        errors.append(exc)


@pytest.fixture()
def receiver_port() -> Iterator[int]:
    yield free_port()


def test_two_sweeps_at_once_alert_and_post_once(tmp_path: Path, faces: Faces, receiver_port: int) -> None:
    receiver = Receiver(receiver_port)
    try:
        settings = webhook_settings(tmp_path)
        storage = Storage(settings)
        add_hook(storage, f"http://127.0.0.1:{receiver_port}/a")
        enrol_active(storage, faces)
        write_faces(
            storage,
            faces,
            [row for cam in ("cam-a", "cam-b", "cam-c") for row in a_pass(faces, faces.obama, camera=cam)],
        )
        barrier, errors = threading.Barrier(2), []
        sweeps = [threading.Thread(target=_sweep_at_once, args=(settings, barrier, errors)) for _ in range(2)]
        for thread in sweeps:
            thread.start()
        for thread in sweeps:
            thread.join(120)
        assert errors == []
    finally:
        receiver.close()
    alerts_table_rows = storage.db.open_table("alerts").to_arrow()
    ids = alerts_table_rows.column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 3
    deliveries = storage.db.open_table("deliveries").to_arrow().column("id").to_pylist()
    assert len(deliveries) == len(set(deliveries)) == 9  # 3 alerts x (log, prefect, webhook)
    assert sorted(key for key, _ in receiver.received) == sorted(ids)  # one POST per alert


def test_one_pass_is_one_alert_even_when_the_tracker_splits_it(tmp_path: Path, faces: Faces) -> None:
    settings = make_settings(tmp_path)  # alert_pass_gap_s = 10
    storage = Storage(settings)
    enrol_active(storage, faces)
    split = a_pass(faces, faces.obama) + a_pass(faces, faces.obama, track=2, ts=NOW + dt.timedelta(seconds=4))
    write_faces(storage, faces, split)
    assert sweep_once(storage, settings, now=NOW).alerts_new == 1
    # the pass goes on into the next segment, indexed and swept later: still the same pass
    write_faces(storage, faces, a_pass(faces, faces.obama, segment="S2", ts=NOW + dt.timedelta(seconds=9)))
    assert sweep_once(storage, settings, now=NOW).alerts_new == 0
    # walking by again a minute later is a new pass
    write_faces(storage, faces, a_pass(faces, faces.obama, segment="S3", ts=NOW + dt.timedelta(seconds=80)))
    assert sweep_once(storage, settings, now=NOW).alerts_new == 1
    alerts = sorted(list_alerts(storage), key=lambda a: a.track_start)
    assert alerts[0].track_id == "cam-a/S1#t0001" and alerts[0].track_end == NOW + dt.timedelta(seconds=7)


# --- plates -------------------------------------------------------------------------------


def plate_row(text: str, *, track: int, camera: str = "cam-p", gate_score: float = 1.0) -> PlateRow:
    seg = f"{camera}/S1"
    return PlateRow(
        id=f"{seg}#p{track:04d}",
        segment_id=seg,
        camera_id=camera,
        ts=NOW,
        first_ts=NOW,
        last_ts=NOW + dt.timedelta(seconds=2),
        text=text,
        confidence=0.9,
        char_confidences=[0.9] * len(text),
        reads=4,
        low_confidence=False,
        bbox=(1.0, 2.0, 30.0, 12.0),
        track_id=f"{seg}#p{track:04d}",
        thumb_uri=f"thumbs/{seg}/p{track}.jpg",
        lat=22.3,
        lon=114.2,
        model="ocr",
        gate_score=gate_score,
    )


def approved_plate_entry(storage: Storage, text: str, label: str) -> None:
    """An active plate entry for ``text`` (requested, then approved by a second person)."""
    row = add_plate(
        storage,
        text,
        request(reason="stolen_vehicle", label=label),
        default_max_distance=0.6,
        max_days=30,
        now=NOW,
    )
    approve(storage, row.id, "bob", now=NOW)


@pytest.mark.parametrize(
    "entry, read, alerts",
    [
        ("AB1234", "AB1234", 1),
        ("AB 1234", "A81234", 1),  # B read as 8: one confusable swap
        ("AB1234", "AB1284", 0),  # a different plate
        ("AB12*", "AB1299", 1),
        ("?B1234", "XB1234", 1),
        ("AB12*", "CD1299", 0),
    ],
)
def test_plate_entries_match_exactly_patterns_and_confusables(
    tmp_path: Path, entry: str, read: str, alerts: int
) -> None:
    settings = make_settings(tmp_path)
    storage = Storage(settings)
    assert sweep_once(storage, settings, now=NOW).plates_read == 0  # no plates table yet
    approved_plate_entry(storage, entry, "stolen van")
    upsert(
        plates_table(storage.db),
        rows_to_arrow([plate_row(read, track=1), plate_row("ZZ9", track=2)], PlateRow.SCHEMA),
    )
    assert sweep_once(storage, settings, now=NOW).alerts_new == alerts
    if alerts:
        assert list_alerts(storage)[0].plate_text == read


def test_a_sign_read_as_a_plate_never_alerts(tmp_path: Path) -> None:
    """The sweep applies the plate acceptance rule (citywatch/plate_gate.py) to the rows'
    stored gate_score: a sign's text (WHGOV, indexed with plates.gate_enabled=false or by a
    version before the gate) that fits the watchlist entry raises no alert; a plate does."""
    settings = make_settings(tmp_path)
    storage = Storage(settings)
    for entry in ("WHGOV", "AB1234"):
        approved_plate_entry(storage, entry, "stolen")
    upsert(
        plates_table(storage.db),
        rows_to_arrow(
            [plate_row("WHGOV", track=1, gate_score=0.5), plate_row("AB1234", track=2, gate_score=1.0)],
            PlateRow.SCHEMA,
        ),
    )
    assert sweep_once(storage, settings, now=NOW).alerts_new == 1
    assert [a.plate_text for a in list_alerts(storage)] == ["AB1234"]


# --- review and deliveries ------------------------------------------------------------------


def test_dismissed_track_does_not_alert_again(tmp_path: Path, faces: Faces) -> None:
    settings = make_settings(tmp_path)
    storage = Storage(settings)
    enrol_active(storage, faces)
    write_faces(storage, faces, a_pass(faces, faces.obama))
    sweep_once(storage, settings, now=NOW)
    alert = list_alerts(storage)[0]
    with pytest.raises(BadInputError, match="needs a --note"):
        review(storage, alert.id, AlertState.DISMISSED, "bob", "")
    dismissed = review(storage, alert.id, AlertState.DISMISSED, "bob", "a lookalike", now=NOW)
    assert (dismissed.state, dismissed.reviewed_by, dismissed.reviewed_at) == ("dismissed", "bob", NOW)
    with pytest.raises(BadInputError, match="already dismissed by bob"):
        review(storage, alert.id, AlertState.CONFIRMED, "carol", "")
    write_faces(storage, faces, a_pass(faces, faces.obama, n=5))  # the segment re-indexed
    result = sweep_once(storage, settings, now=NOW)
    assert result.faces_read == 5 and result.alerts_new == 0
    assert [a.state for a in list_alerts(storage)] == ["dismissed"]


def test_webhook_down_then_up_alerts_written_failures_recorded_then_delivered(
    tmp_path: Path, faces: Faces, receiver_port: int
) -> None:
    url = f"http://127.0.0.1:{receiver_port}/alerts"  # nothing listens yet
    settings = webhook_settings(tmp_path, alerts__retry_base_s=5)
    storage = Storage(settings)
    add_hook(storage, url)
    enrol_active(storage, faces)
    write_faces(storage, faces, a_pass(faces, faces.obama))
    assert sweep_once(storage, settings, now=NOW).alerts_new == 1  # written regardless
    report = deliver_pending(storage, settings, now=NOW)
    assert report.failed == 1 and "Connection refused" in report.errors[0][1]
    alert = list_alerts(storage)[0]
    hook = next(d for d in deliveries_by_alert(storage, [alert.id])[alert.id] if d.sink == f"webhook:{HOOK}")
    assert (hook.state, hook.attempts) == (DeliveryState.FAILED, 1)
    assert hook.next_attempt_at is not None and hook.next_attempt_at > utcnow()
    assert deliver_pending(storage, settings).claimed == 0  # backing off: not due yet
    receiver = Receiver(receiver_port)
    try:
        later = deliver_pending(storage, settings, now=utcnow() + dt.timedelta(seconds=6))
    finally:
        receiver.close()
    assert (later.delivered, later.failed) == (1, 0)
    assert [key for key, _ in receiver.received] == [alert.id]
    payload = receiver.received[0][1]
    assert payload["label"] == "Person A" and payload["camera_id"] == "cam-a"
    assert "embedding" not in json.dumps(payload)
    hook = next(d for d in deliveries_by_alert(storage, [alert.id])[alert.id] if d.sink == f"webhook:{HOOK}")
    assert (hook.state, hook.attempts, hook.last_error) == (DeliveryState.DELIVERED, 2, "")


# --- the CLI ------------------------------------------------------------------------------
