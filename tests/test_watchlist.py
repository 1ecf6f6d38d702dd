"""Watchlist entries: enrolment from real photos, expiry, four eyes, the CLI's refusals.

(Sweeps, alerts and deliveries: tests/test_watchlist_sweep.py.)
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from citywatch.errors import BadInputError, ForbiddenError
from citywatch.governance.alerts import list_alerts
from citywatch.governance.enrolment_crops import first_crop
from citywatch.governance.watchlist import approve, get_entry, parse_expiry, remove
from citywatch.governance.watchlist_faces import enrol_face
from citywatch.sample.media import fetch_media
from citywatch.storage import Storage
from citywatch.tasks.sweep import sweep_once
from tests.watchlist_support import (
    NOW,
    THRESHOLD,
    Faces,
    a_pass,
    faces,  # noqa: F401 - the module's fixture
    make_settings,
    request,
    write_faces,
)

# --- enrolment and entry rules -------------------------------------------------------------


def _no_face_jpeg() -> bytes:
    gradient = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))
    return cv2.imencode(".jpg", cv2.merge([gradient, gradient[::-1], gradient]))[1].tobytes()


@pytest.mark.parametrize(
    "name, expected",
    [
        ("t1.jpg", "6 faces found"),
        ("no_face.jpg", "no face found"),
    ],
)
def test_enrolment_refuses_photos_without_exactly_one_face(
    tmp_path: Path, faces: Faces, name: str, expected: str
) -> None:
    data = _no_face_jpeg() if name == "no_face.jpg" else (fetch_media() / name).read_bytes()
    storage = Storage(make_settings(tmp_path))
    with pytest.raises(BadInputError, match=expected) as err:
        enrol_face(
            storage, faces.model, [(data, name)], request(), default_threshold=THRESHOLD, max_days=30, now=NOW
        )
    assert name in str(err.value)


def test_enrolment_keeps_embeddings_hashes_and_face_crops_not_photos(tmp_path: Path, faces: Faces) -> None:
    """The reviewer's comparison needs the enrolled face: its crop is kept, the photo never;
    removing the entry deletes the crops with the template."""
    storage = Storage(make_settings(tmp_path))
    media = fetch_media()
    photos = [(faces.obama_photo, "obama.jpg"), ((media / "obama3.jpg").read_bytes(), "obama3.jpg")]
    row = enrol_face(
        storage, faces.model, photos, request(), default_threshold=THRESHOLD, max_days=30, now=NOW
    )
    stored = get_entry(storage, row.id)
    assert stored.status == "pending" and len(stored.embeddings) == 2
    assert len(stored.photo_sha256) == 2 and all(len(h) == 64 for h in stored.photo_sha256)
    images = sorted(p for p in (tmp_path / "data").rglob("*") if p.suffix in (".jpg", ".png"))
    assert [p.relative_to(tmp_path / "data").as_posix() for p in images] == sorted(
        f"watchlist/{row.id}/{sha}.jpg" for sha in stored.photo_sha256
    )
    crops = [tmp_path / "data" / "watchlist" / row.id / f"{sha}.jpg" for sha in stored.photo_sha256]
    for crop_file, (data, _name) in zip(crops, photos):
        crop = cv2.imdecode(np.frombuffer(crop_file.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
        photo = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert max(crop.shape[:2]) <= 160 < max(photo.shape[:2])  # the face, not the photo
    assert first_crop(storage, stored) == crops[0].read_bytes()
    remove(storage, row.id, "bob", "case closed", now=NOW)
    assert not any(p.suffix in (".jpg", ".png") for p in (tmp_path / "data").rglob("*"))


def test_enrolment_refuses_photos_of_two_people(tmp_path: Path, faces: Faces) -> None:
    biden = (fetch_media() / "biden.jpg").read_bytes()
    with pytest.raises(BadInputError, match="do not look like the same person"):
        enrol_face(
            Storage(make_settings(tmp_path)),
            faces.model,
            [(faces.obama_photo, "obama.jpg"), (biden, "biden.jpg")],
            request(),
            default_threshold=THRESHOLD,
            max_days=30,
            now=NOW,
        )


@pytest.mark.parametrize(
    "text, error",
    [
        ("7d", None),
        ("12h", None),
        ("2026-11-21T08:00:00Z", None),
        ("31d", "more than 30 days"),
        ("2026-11-19T08:00:00Z", "not in the future"),
        ("next week", "give a duration"),
    ],
)
def test_expiry_is_required_future_and_capped(text: str, error: str | None) -> None:
    if error is None:
        assert NOW < parse_expiry(text, NOW, 30) <= NOW + dt.timedelta(days=30)
    else:
        with pytest.raises(BadInputError, match=error):
            parse_expiry(text, NOW, 30)


@pytest.mark.parametrize(
    "changes, error",
    [
        ({"reason": "curious"}, "not one of"),
        ({"case_id": " "}, "case id is required"),
        ({"threshold": 0.9}, "stricter"),
    ],
)
def test_entry_fields_are_checked(tmp_path: Path, faces: Faces, changes: dict, error: str) -> None:
    with pytest.raises(BadInputError, match=error):
        enrol_face(
            Storage(make_settings(tmp_path)),
            faces.model,
            [(faces.obama_photo, "obama.jpg")],
            request(**changes),
            default_threshold=THRESHOLD,
            max_days=30,
            now=NOW,
        )


def test_four_eyes_and_only_active_entries_match(tmp_path: Path, faces: Faces) -> None:
    settings = make_settings(tmp_path)
    storage = Storage(settings)
    pending = enrol_face(
        storage,
        faces.model,
        [(faces.obama_photo, "obama.jpg")],
        request(),
        default_threshold=THRESHOLD,
        max_days=30,
        now=NOW,
    )
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


def test_cli_refuses_a_group_photo_and_self_approval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from citywatch.cli.main import main

    root = str(tmp_path / "data")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "users.yaml").write_text(
        "users:\n  - {name: alice, roles: [supervisor]}\n  - {name: bob, roles: [supervisor]}\n"
        "  - {name: ann, roles: [analyst]}\n"
    )
    common = [
        "--label",
        "Person A",
        "--reason",
        "missing",
        "--expires",
        "2d",
        "--case",
        "CASE-7",
        "--why",
        "reported missing yesterday",
        "--json",
    ]
    group = str(fetch_media() / "t1.jpg")
    assert (
        main(["--root", root, "--user", "alice", "watchlist", "add", "face", "--photo", group, *common]) == 2
    )
    assert "t1.jpg: 6 faces found" in capsys.readouterr().err
    assert main(["--root", root, "--user", "alice", "watchlist", "add", "plate", "AB 1234", *common]) == 0
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
