"""Watchlist, sweep, alerts and deliveries on real photos, real LanceDB, real HTTP.

Face rows are written the way indexing writes them, with embeddings the real model
makes from real photos: the watchlist entry is enrolled from obama.jpg and "captured"
as obama2.jpg (a different photo); biden.jpg is someone not enrolled.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from citywatch.alerts import (AlertState, DeliveryState, deliveries_by_alert, list_alerts,
                              review)
from citywatch.errors import BadInputError, ForbiddenError
from citywatch.media import fetch_media
from citywatch.prefect_server import free_port
from citywatch.schemas import FaceRow, PlateRow, rows_to_arrow, utcnow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import faces_table, plates_table, upsert
from citywatch.watchlist import (EntryRequest, WatchlistRow, add_plate, approve, enrol_face,
                                 enrolment_embedding, get_entry, parse_expiry, remove)
from tasks.index_segment import face_model_for
from tasks.notify import deliver_pending
from tasks.sweep import advance_watermarks, commit_alerts, plan_sweep, sweep_once

NOW = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.timezone.utc)
THRESHOLD = 0.55


@dataclass(frozen=True)
class Faces:
    model: object
    obama_photo: bytes
    obama: np.ndarray  # a different photo of the enrolled person, as footage would show
    biden: np.ndarray


@pytest.fixture(scope="module")
def faces() -> Faces:
    media = fetch_media()
    model = face_model_for(Settings())
    other, _ = enrolment_embedding((media / "obama2.jpg").read_bytes(), "obama2.jpg", model)
    biden, _ = enrolment_embedding((media / "biden.jpg").read_bytes(), "biden.jpg", model)
    return Faces(model, (media / "obama.jpg").read_bytes(), other, biden)


def make_settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(storage_root=str(tmp_path / "data"), state_dir=str(tmp_path / "state"), **extra)


def request(**changes: object) -> EntryRequest:
    base = EntryRequest(label="Person A", reason="missing", case_id="CASE-7",
                        justification="reported missing, family worried", requested_by="alice",
                        expires_at=NOW + dt.timedelta(days=7))
    return replace(base, **changes)


def enrol_active(storage: Storage, faces: Faces, **changes: object) -> WatchlistRow:
    row = enrol_face(storage, faces.model, [(faces.obama_photo, "obama.jpg")], request(**changes),
                     default_threshold=THRESHOLD, max_days=30, now=NOW)
    return approve(storage, row.id, "bob", now=NOW)


def face_row(faces: Faces, vector: np.ndarray, *, camera: str = "cam-a", segment: str = "S1",
             track: int = 1, index: int = 0, ts: dt.datetime = NOW) -> FaceRow:
    seg = f"{camera}/{segment}"
    at = ts + dt.timedelta(seconds=index)
    return FaceRow(id=f"{seg}#t{track:04d}@{index:07d}", segment_id=seg, camera_id=camera, ts=at,
                   bbox=(10.0, 10.0, 60.0, 60.0), det_score=0.9, quality=0.5,
                   embedding=vector + np.float32(0.002 * index), track_id=f"{seg}#t{track:04d}",
                   track_start=ts, track_end=ts + dt.timedelta(seconds=3),
                   thumb_uri=f"thumbs/{seg}/{track}_{index}.jpg", lat=22.3, lon=114.2,
                   model=faces.model.name)


def write_faces(storage: Storage, faces: Faces, rows: list[FaceRow]) -> None:
    dim = faces.model.embedder.dim
    upsert(faces_table(storage.db, dim), rows_to_arrow(rows, FaceRow.schema(dim)))


def a_pass(faces: Faces, vector: np.ndarray, n: int = 3, **where: object) -> list[FaceRow]:
    """One track of ``n`` faces (what indexing writes for one person walking by)."""
    return [face_row(faces, vector, index=i, **where) for i in range(n)]


# --- enrolment and entry rules -------------------------------------------------------------


def _no_face_jpeg() -> bytes:
    gradient = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))
    return cv2.imencode(".jpg", cv2.merge([gradient, gradient[::-1], gradient]))[1].tobytes()


@pytest.mark.parametrize("name, expected", [
    ("t1.jpg", "6 faces found"),
    ("no_face.jpg", "no face found"),
])
def test_enrolment_refuses_photos_without_exactly_one_face(tmp_path: Path, faces: Faces,
                                                           name: str, expected: str) -> None:
    data = _no_face_jpeg() if name == "no_face.jpg" else (fetch_media() / name).read_bytes()
    storage = Storage(make_settings(tmp_path))
    with pytest.raises(BadInputError, match=expected) as err:
        enrol_face(storage, faces.model, [(data, name)], request(), default_threshold=THRESHOLD,
                   max_days=30, now=NOW)
    assert name in str(err.value)


def test_enrolment_keeps_embeddings_and_hashes_not_photos(tmp_path: Path, faces: Faces) -> None:
    storage = Storage(make_settings(tmp_path))
    media = fetch_media()
    photos = [(faces.obama_photo, "obama.jpg"), ((media / "obama3.jpg").read_bytes(), "obama3.jpg")]
    row = enrol_face(storage, faces.model, photos, request(), default_threshold=THRESHOLD,
                     max_days=30, now=NOW)
    stored = get_entry(storage, row.id)
    assert stored.status == "pending" and len(stored.embeddings) == 2
    assert len(stored.photo_sha256) == 2 and all(len(h) == 64 for h in stored.photo_sha256)
    assert not any(p.suffix in (".jpg", ".png") for p in (tmp_path / "data").rglob("*"))


def test_enrolment_refuses_photos_of_two_people(tmp_path: Path, faces: Faces) -> None:
    biden = (fetch_media() / "biden.jpg").read_bytes()
    with pytest.raises(BadInputError, match="do not look like the same person"):
        enrol_face(Storage(make_settings(tmp_path)), faces.model,
                   [(faces.obama_photo, "obama.jpg"), (biden, "biden.jpg")], request(),
                   default_threshold=THRESHOLD, max_days=30, now=NOW)


@pytest.mark.parametrize("text, error", [
    ("7d", None),
    ("12h", None),
    ("2026-11-21T08:00:00Z", None),
    ("31d", "more than 30 days"),
    ("2026-11-19T08:00:00Z", "not in the future"),
    ("next week", "give a duration"),
])
def test_expiry_is_required_future_and_capped(text: str, error: str | None) -> None:
    if error is None:
        assert NOW < parse_expiry(text, NOW, 30) <= NOW + dt.timedelta(days=30)
    else:
        with pytest.raises(BadInputError, match=error):
            parse_expiry(text, NOW, 30)


@pytest.mark.parametrize("changes, error", [
    ({"reason": "curious"}, "not one of"),
    ({"case_id": " "}, "case id is required"),
    ({"threshold": 0.9}, "stricter"),
])
def test_entry_fields_are_checked(tmp_path: Path, faces: Faces, changes: dict, error: str) -> None:
    with pytest.raises(BadInputError, match=error):
        enrol_face(Storage(make_settings(tmp_path)), faces.model, [(faces.obama_photo, "obama.jpg")],
                   request(**changes), default_threshold=THRESHOLD, max_days=30, now=NOW)


def test_four_eyes_and_only_active_entries_match(tmp_path: Path, faces: Faces) -> None:
    settings = make_settings(tmp_path)
    storage = Storage(settings)
    pending = enrol_face(storage, faces.model, [(faces.obama_photo, "obama.jpg")], request(),
                         default_threshold=THRESHOLD, max_days=30, now=NOW)
    with pytest.raises(ForbiddenError, match="four-eyes"):
        approve(storage, pending.id, "alice", now=NOW)
    write_faces(storage, faces, a_pass(faces, faces.obama))
    assert sweep_once(storage, settings, now=NOW).alerts_new == 0  # pending: no match
    approve(storage, pending.id, "bob", now=NOW)
    write_faces(storage, faces, a_pass(faces, faces.obama, segment="S2"))
    expired_at = NOW + dt.timedelta(days=8)
    assert sweep_once(storage, settings, now=expired_at).alerts_new == 0  # expired
    write_faces(storage, faces, a_pass(faces, faces.obama, segment="S3"))
    assert sweep_once(storage, settings, now=NOW).alerts_new == 1  # active
    removed = remove(storage, pending.id, "carol", "found safe", now=NOW)
    assert removed.embeddings == [] and get_entry(storage, pending.id).removed_by == "carol"
    write_faces(storage, faces, a_pass(faces, faces.obama, segment="S4"))
    assert sweep_once(storage, settings, now=NOW).alerts_new == 0  # removed
    assert len(list_alerts(storage)) == 1  # its history stays


# --- matching, exactly once -------------------------------------------------------------------


def test_enrolled_person_alerts_once_per_pass_others_never(tmp_path: Path, faces: Faces) -> None:
    settings = make_settings(tmp_path)
    storage = Storage(settings)
    entry = enrol_active(storage, faces)
    walk = a_pass(faces, faces.obama, n=4)
    write_faces(storage, faces, walk + a_pass(faces, faces.biden, track=2)
                + a_pass(faces, faces.obama, camera="cam-b", track=7))
    result = sweep_once(storage, settings, now=NOW)
    assert (result.faces_read, result.alerts_new) == (10, 2)
    alerts = list_alerts(storage)
    assert {(a.camera_id, a.track_id) for a in alerts} == {("cam-a", "cam-a/S1#t0001"),
                                                           ("cam-b", "cam-b/S1#t0007")}
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


def test_crash_before_the_watermark_moves_neither_misses_nor_duplicates(tmp_path: Path,
                                                                         faces: Faces) -> None:
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


class Receiver:
    """A real HTTP server on 127.0.0.1 that records the alert POSTs it gets."""

    def __init__(self, port: int) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.headers["Idempotency-Key"], json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver_port() -> Iterator[int]:
    yield free_port()


def test_two_sweeps_at_once_alert_and_post_once(tmp_path: Path, faces: Faces,
                                                 receiver_port: int) -> None:
    receiver = Receiver(receiver_port)
    try:
        settings = make_settings(tmp_path, alert_webhook_urls=[f"http://127.0.0.1:{receiver_port}/a"])
        storage = Storage(settings)
        enrol_active(storage, faces)
        write_faces(storage, faces, [row for cam in ("cam-a", "cam-b", "cam-c")
                                     for row in a_pass(faces, faces.obama, camera=cam)])
        barrier, errors = threading.Barrier(2), []
        sweeps = [threading.Thread(target=_sweep_at_once, args=(settings, barrier, errors))
                  for _ in range(2)]
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


def test_one_pass_is_one_alert_even_when_the_tracker_splits_it(tmp_path: Path,
                                                                faces: Faces) -> None:
    settings = make_settings(tmp_path)  # alert_pass_gap_s = 10
    storage = Storage(settings)
    enrol_active(storage, faces)
    split = a_pass(faces, faces.obama) + a_pass(faces, faces.obama, track=2,
                                                ts=NOW + dt.timedelta(seconds=4))
    write_faces(storage, faces, split)
    assert sweep_once(storage, settings, now=NOW).alerts_new == 1
    # the pass goes on into the next segment, indexed and swept later: still the same pass
    write_faces(storage, faces, a_pass(faces, faces.obama, segment="S2",
                                       ts=NOW + dt.timedelta(seconds=9)))
    assert sweep_once(storage, settings, now=NOW).alerts_new == 0
    # walking by again a minute later is a new pass
    write_faces(storage, faces, a_pass(faces, faces.obama, segment="S3",
                                       ts=NOW + dt.timedelta(seconds=80)))
    assert sweep_once(storage, settings, now=NOW).alerts_new == 1
    alerts = sorted(list_alerts(storage), key=lambda a: a.track_start)
    assert alerts[0].track_id == "cam-a/S1#t0001" and alerts[0].track_end == NOW + dt.timedelta(seconds=7)


# --- plates -------------------------------------------------------------------------------


def plate_row(text: str, *, track: int, camera: str = "cam-p") -> PlateRow:
    seg = f"{camera}/S1"
    return PlateRow(id=f"{seg}#p{track:04d}", segment_id=seg, camera_id=camera, ts=NOW,
                    first_ts=NOW, last_ts=NOW + dt.timedelta(seconds=2), text=text, confidence=0.9,
                    char_confidences=[0.9] * len(text), reads=4, low_confidence=False,
                    bbox=(1.0, 2.0, 30.0, 12.0), track_id=f"{seg}#p{track:04d}",
                    thumb_uri=f"thumbs/{seg}/p{track}.jpg", lat=22.3, lon=114.2, model="ocr")


@pytest.mark.parametrize("entry, read, alerts", [
    ("AB1234", "AB1234", 1),
    ("AB 1234", "A81234", 1),  # B read as 8: one confusable swap
    ("AB1234", "AB1284", 0),  # a different plate
    ("AB12*", "AB1299", 1),
    ("?B1234", "XB1234", 1),
    ("AB12*", "CD1299", 0),
])
def test_plate_entries_match_exactly_patterns_and_confusables(tmp_path: Path, entry: str,
                                                               read: str, alerts: int) -> None:
    settings = make_settings(tmp_path)
    storage = Storage(settings)
    assert sweep_once(storage, settings, now=NOW).plates_read == 0  # no plates table yet
    row = add_plate(storage, entry, request(reason="stolen_vehicle", label="stolen van"),
                    default_max_distance=0.6, max_days=30, now=NOW)
    approve(storage, row.id, "bob", now=NOW)
    upsert(plates_table(storage.db), rows_to_arrow([plate_row(read, track=1),
                                                    plate_row("ZZ9", track=2)], PlateRow.SCHEMA))
    assert sweep_once(storage, settings, now=NOW).alerts_new == alerts
    if alerts:
        assert list_alerts(storage)[0].plate_text == read


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
        tmp_path: Path, faces: Faces, receiver_port: int) -> None:
    url = f"http://127.0.0.1:{receiver_port}/alerts"  # nothing listens yet
    settings = make_settings(tmp_path, alert_webhook_urls=[url], alert_retry_base_s=5)
    storage = Storage(settings)
    enrol_active(storage, faces)
    write_faces(storage, faces, a_pass(faces, faces.obama))
    assert sweep_once(storage, settings, now=NOW).alerts_new == 1  # written regardless
    report = deliver_pending(storage, settings, now=NOW)
    assert report.failed == 1 and "Connection refused" in report.errors[0][1]
    alert = list_alerts(storage)[0]
    hook = next(d for d in deliveries_by_alert(storage, [alert.id])[alert.id]
                if d.sink == f"webhook:{url}")
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
    hook = next(d for d in deliveries_by_alert(storage, [alert.id])[alert.id]
                if d.sink == f"webhook:{url}")
    assert (hook.state, hook.attempts, hook.last_error) == (DeliveryState.DELIVERED, 2, "")


# --- the CLI ------------------------------------------------------------------------------


def test_cli_refuses_a_group_photo_and_self_approval(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from citywatch.cli import main

    root = str(tmp_path / "data")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "users.yaml").write_text(
        "users:\n  - {name: alice, roles: [supervisor]}\n  - {name: bob, roles: [supervisor]}\n"
        "  - {name: ann, roles: [analyst]}\n")
    common = ["--label", "Person A", "--reason", "missing", "--expires", "2d", "--case", "CASE-7",
              "--why", "reported missing yesterday", "--json"]
    group = str(fetch_media() / "t1.jpg")
    assert main(["--root", root, "--user", "alice", "watchlist", "add", "face", "--photo", group,
                 *common]) == 2
    assert "t1.jpg: 6 faces found" in capsys.readouterr().err
    assert main(["--root", root, "--user", "alice", "watchlist", "add", "plate", "AB 1234",
                 *common]) == 0
    entry = json.loads(capsys.readouterr().out)
    assert (entry["plate_query"], entry["state"], entry["requested_by"]) == ("AB1234", "pending", "alice")
    why = ["--why", "matches the case file, approved"]
    assert main(["--root", root, "--user", "alice", "watchlist", "approve", entry["id"], *why]) == 3
    assert "four-eyes" in capsys.readouterr().err
    assert main(["--root", root, "--user", "ann", "watchlist", "approve", entry["id"], *why]) == 3
    assert "may not watchlist_approve" in capsys.readouterr().err
    assert main(["--root", root, "--user", "bob", "watchlist", "approve", entry["id"], *why]) == 0
    capsys.readouterr()
    assert main(["--root", root, "--user", "bob", "watchlist", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(e["id"], e["state"], e["approved_by"]) for e in listed] == [(entry["id"], "active", "bob")]
