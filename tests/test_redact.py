"""Redaction on frames, track filling, subject choice, clip planning and signed manifests.

Real parts: the real RetinaFace detector on real face photos, real LanceDB tables,
real files. No Prefect.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from citywatch.cameras import CameraConfig
from citywatch.errors import BadInputError, NotFoundError
from citywatch.geometry import grow, iou
from citywatch.models.faces import load_face_model
from citywatch.sample.media import fetch_media
from citywatch.schemas import SegmentRow, rows_to_arrow, utcnow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import cameras_table, segments_table, upsert
from citywatch.tasks.export.clip import plan_clip
from citywatch.tasks.export.redact import FrameRedaction, FrameRedactor, MaskLayer, RedactionStyle
from citywatch.tasks.export.redact_plan import (
    ClipTrack,
    SubjectChoice,
    SubjectHint,
    choose_subject,
    fill_track,
    plan_redactions,
)

MODES = ["pixelate", "blur", "fill"]
W, H = 1280, 720


def texture(seed: int = 0) -> np.ndarray:
    """A frame of fine random detail (so any smoothing or copying shows)."""
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def polygon_area_and_perimeter(points: list[list[float]]) -> tuple[float, float]:
    pts = np.asarray(points, dtype=np.float64)
    x, y = pts[:, 0], pts[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    perimeter = float(np.sum(np.hypot(np.diff(x, append=x[0]), np.diff(y, append=y[0]))))
    return area, perimeter


# --- privacy masks ----------------------------------------------------------------------
MASKS = {
    "rectangle": [[600, 0], [1279, 0], [1279, 250], [600, 250]],
    "triangle": [[100, 700], [400, 420], [640, 719]],
    "slanted quad": [[700, 400], [1000, 350], [1100, 600], [760, 650]],
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", list(MASKS))
def test_mask_covers_the_polygon_and_nothing_else(mode: str, shape: str) -> None:
    polygon = MASKS[shape]
    frame = texture()
    out = FrameRedactor.build(RedactionStyle(mode), [polygon], W, H)(frame, FrameRedaction())
    changed = np.any(out != frame, axis=2)
    inside = MaskLayer.build([polygon], W, H).mask > 0
    area, perimeter = polygon_area_and_perimeter(polygon)
    assert abs(int(inside.sum()) - area) <= perimeter  # the raster is the polygon, to a pixel
    assert not changed[~inside].any(), "pixels outside the mask changed"
    if mode == "fill":
        assert (out[inside] == 0).all()
    else:  # fine detail is gone: redacted pixels no longer follow the original
        corr = np.corrcoef(frame[inside].ravel().astype(float), out[inside].ravel().astype(float))[0, 1]
        assert abs(corr) < 0.1
        assert changed[inside].mean() > 0.95


def test_masks_of_another_frame_size_are_refused() -> None:
    redactor = FrameRedactor.build(RedactionStyle(), [MASKS["triangle"]], W, H)
    with pytest.raises(BadInputError, match="1280x720"):
        redactor(np.zeros((480, 640, 3), np.uint8), FrameRedaction())


@pytest.mark.parametrize("style", [{"mode": "smudge"}, {"cells": 0}, {"noise_sd": -1}])
def test_bad_styles_are_refused(style: dict[str, object]) -> None:
    with pytest.raises(BadInputError):
        RedactionStyle(**style)  # type: ignore[arg-type]


# --- faces on real photos ---------------------------------------------------------------
@pytest.fixture(scope="module")
def detector():  # noqa: ANN201
    return load_face_model().detector


@pytest.fixture(scope="module")
def sensitive_detector():  # noqa: ANN201
    """Lower threshold than redaction uses: 'no face found' is a strong claim."""
    return load_face_model(det_threshold=0.3, min_face_px=12).detector


def _paste_face(
    frame: np.ndarray, photo: np.ndarray, face: tuple[float, ...], x: int, y: int, face_h: int
) -> None:
    x1, y1, x2, y2 = grow(face, 0.7, photo.shape[1], photo.shape[0])
    crop = photo[y1:y2, x1:x2]
    scale = face_h / (face[3] - face[1])
    crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = crop.shape[:2]
    frame[y : y + h, x : x + w] = crop


@pytest.fixture(scope="module", params=[140, 48], ids=["near", "far"])
def two_faces(request, detector):  # noqa: ANN001, ANN201
    """A street-sized frame with two real faces of ``param`` px height:
    (frame, subject box, bystander box)."""
    media = fetch_media()
    frame = cv2.GaussianBlur(texture(1), (0, 0), 6)
    for name, x in (("obama.jpg", 150), ("biden.jpg", 750)):
        photo = cv2.imread(str(media / name))
        _paste_face(frame, photo, detector.detect(photo)[0].bbox, x, 200, request.param)
    faces = sorted(detector.detect(frame), key=lambda f: f.bbox[0])
    assert len(faces) == 2, "the test frame must show two detectable faces"
    return frame, faces[0].bbox, faces[1].bbox


@pytest.mark.parametrize("mode", MODES)
def test_bystander_is_unrecognisable_and_subject_untouched(two_faces, sensitive_detector, mode: str) -> None:  # noqa: ANN001
    frame, subject, bystander = two_faces
    blur = grow(bystander, Settings().redact.face_margin, W, H)
    redaction = FrameRedaction(blur=(tuple(map(float, blur)),), keep=(subject,))
    out = FrameRedactor.build(RedactionStyle(mode), [], W, H)(frame, redaction)
    found = sensitive_detector.detect(out)
    assert len(found) == 1, f"faces after redaction: {[f.bbox for f in found]}"
    assert iou(found[0].bbox, subject) > 0.8
    sx1, sy1, sx2, sy2 = grow(subject, 0.0, W, H)
    assert np.array_equal(out[sy1:sy2, sx1:sx2], frame[sy1:sy2, sx1:sx2])
    bx1, by1, bx2, by2 = blur
    outside = np.ones((H, W), bool)
    outside[by1:by2, bx1:bx2] = False
    assert np.array_equal(out[outside], frame[outside])


def test_subject_box_wins_over_bystander_blur_but_masks_win_over_both() -> None:
    frame = texture(2)
    keep = (300.0, 300.0, 400.0, 400.0)
    blur = (250.0, 250.0, 450.0, 450.0)
    mask = [[350, 350], [500, 350], [500, 500], [350, 500]]
    out = FrameRedactor.build(RedactionStyle("fill"), [mask], W, H)(
        frame, FrameRedaction(blur=(blur,), keep=(keep,))
    )
    assert np.array_equal(out[300:350, 300:400], frame[300:350, 300:400])  # kept, not masked
    assert (out[360:400, 360:400] == 0).all()  # kept but masked: the mask wins
    assert (out[260:290, 260:440] == 0).all()  # blurred bystander area


# --- tracks: interpolation, hold, subject ------------------------------------------------
def _box(x: float) -> tuple[float, float, float, float]:
    return (x, 100.0, x + 40.0, 150.0)


@pytest.mark.parametrize(
    ("frames", "xs", "n_frames", "hold", "expected"),
    [
        ((2, 5), (0, 30), 10, 0, {2: (0, "d"), 3: (10, "i"), 4: (20, "i"), 5: (30, "d")}),
        ((3,), (50,), 10, 2, {1: (50, "h"), 2: (50, "h"), 3: (50, "d"), 4: (50, "h"), 5: (50, "h")}),
        ((0, 9), (0, 90), 10, 3, {f: (10 * f, "d" if f in (0, 9) else "i") for f in range(10)}),
    ],
    ids=["miss-interpolated", "held-both-ways", "clipped-to-clip"],
)
def test_fill_track(frames, xs, n_frames, hold, expected) -> None:  # noqa: ANN001
    track = ClipTrack(0, "face", frames, tuple(_box(x) for x in xs))
    filled = fill_track(track, n_frames, hold)
    assert sorted(filled) == sorted(expected)
    for frame, (x, how) in expected.items():
        box, got_how = filled[frame]
        assert got_how == how and box[0] == pytest.approx(x)


def test_held_box_follows_the_motion() -> None:
    track = ClipTrack(0, "face", (0, 1, 2), (_box(0), _box(10), _box(20)))
    box, how = fill_track(track, 10, 3)[5]
    assert how == "h" and box[0] <= 20 and box[2] >= 50 + 40  # covers last and predicted place


@pytest.mark.parametrize(
    ("tracks", "hint", "expected"),
    [
        ([((0, 10), 0.2, 50), ((0, 10), 0.5, 300)], SubjectHint(0.6), ((0,), "embedding")),
        ([((0, 10), 0.2, 50), ((20, 30), 0.4, 50)], SubjectHint(0.6), ((0, 1), "embedding")),
        ([((0, 10), 0.7, 300), ((0, 10), None, 50)], SubjectHint(0.6, 5, _box(55)), ((1,), "position")),
        ([((0, 10), 0.7, 50)], SubjectHint(0.6, 5, _box(500)), ((), "none")),
        ([((0, 10), 0.1, 50)], None, ((), "no-subject")),
    ],
    ids=["nearest", "re-appears-later", "position-fallback", "not-found", "no-subject"],
)
def test_choose_subject(tracks, hint, expected) -> None:  # noqa: ANN001
    clip_tracks = [
        ClipTrack(i, "face", tuple(range(a, b + 1)), tuple(_box(x) for _ in range(a, b + 1)), d)
        for i, ((a, b), d, x) in enumerate(tracks)
    ]
    choice = choose_subject(clip_tracks, hint)
    assert (choice.tracks, choice.matched_by) == expected


def test_plan_keeps_subject_and_grows_bystander_boxes() -> None:
    tracks = [
        ClipTrack(0, "face", (0, 1), (_box(100), _box(100))),
        ClipTrack(1, "face", (0, 1), (_box(600), _box(600))),
        ClipTrack(2, "plate", (2,), ((900.0, 500.0, 1000.0, 530.0),)),
    ]
    frames, log = plan_redactions(
        tracks, SubjectChoice((0,), "embedding"), n_frames=3, width=W, height=H, hold=1, margin=0.5
    )
    assert frames[0].keep == (_box(100),)
    assert frames[0].blur == ((580.0, 75.0, 660.0, 175.0),)
    assert len(frames[2].blur) == 2  # bystander and plate held one frame
    assert [(t.track, t.role) for t in log] == [(0, "subject"), (1, "obscured"), (2, "obscured")]


# --- clip planning on real tables and files ------------------------------------------------
T0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)


@pytest.fixture()
def footage(tmp_path: Path) -> Storage:
    """Camera cam-a with segments at 0, 20 (file deleted) and 40 s, 20 s each."""
    storage = Storage(Settings(storage__root=str(tmp_path / "root"), storage__state_dir=str(tmp_path / "st")))
    camera = CameraConfig(id="cam-a", name="A", frame_size=(W, H)).to_row()
    upsert(cameras_table(storage.db), rows_to_arrow([camera], type(camera).SCHEMA))
    rows = []
    for k in range(3):
        start = T0 + dt.timedelta(seconds=20 * k)
        data = f"segment {k}".encode()
        uri = storage.write_bytes(f"footage/cam-a/{start:%Y%m%dT%H%M%SZ}.mp4", data)
        rows.append(
            SegmentRow(
                id=f"cam-a/{start:%Y%m%dT%H%M%SZ}",
                camera_id="cam-a",
                uri=uri,
                start=start,
                end=start + dt.timedelta(seconds=19.9),
                size_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                state="done",
                error="",
                model="m",
                frames_decoded=300,
                frames_analysed=40,
                faces=0,
                updated_at=utcnow(),
            )
        )
    upsert(segments_table(storage.db), rows_to_arrow(rows, SegmentRow.SCHEMA))
    storage.delete(rows[1].uri)
    return storage


def _at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_a_missing_segment_is_a_gap_not_bridged(footage: Storage) -> None:
    plan = plan_clip(footage, "cam-a", _at(10), _at(50), max_s=600)
    assert [s.segment_id for s in plan.sources] == ["cam-a/20261120T080000Z", "cam-a/20261120T080040Z"]
    assert len(plan.gaps) == 1
    gap = plan.gaps[0]
    assert _at(19.8) <= gap.start <= _at(20) and gap.end == _at(40)
    assert "cam-a/20261120T080020Z is missing" in gap.reason


@pytest.mark.parametrize(
    ("camera", "start", "end", "error", "message"),
    [
        ("cam-b", 0, 10, NotFoundError, "camera 'cam-b' is not registered"),
        ("cam-a", 10, 10, BadInputError, "is empty"),
        ("cam-a", 100, 130, NotFoundError, "no usable footage"),
        ("cam-a", 21, 39, NotFoundError, "is missing"),
        ("cam-a", 0, 4000, BadInputError, "longer than export_max_s"),
    ],
    ids=["unknown-camera", "empty-range", "no-footage", "only-missing", "too-long"],
)
def test_unusable_ranges_are_refused(footage: Storage, camera, start, end, error, message) -> None:  # noqa: ANN001
    with pytest.raises(error, match=message):
        plan_clip(footage, camera, _at(start), _at(end), max_s=3600)


def test_a_changed_segment_is_not_used(footage: Storage) -> None:
    footage.write_bytes("footage/cam-a/20261120T080000Z.mp4", b"edited")
    plan = plan_clip(footage, "cam-a", _at(5), _at(45), max_s=600)
    assert [s.segment_id for s in plan.sources] == ["cam-a/20261120T080040Z"]
    assert "changed since it was indexed" in plan.gaps[0].reason


# --- export requests ------------------------------------------------------------------------
def _request(**fields: object):  # noqa: ANN202
    from citywatch.tasks.export.request import ExportRequest

    return ExportRequest(case_id="C1", justification="unit test of export requests", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "exactly one of"),
        ({"sighting_id": "f", "alert_id": "a"}, "exactly one of"),
        ({"sighting_id": "f", "since": T0}, "go with --camera"),
        ({"camera_id": "cam-a", "since": T0}, "needs both --since and --until"),
        ({"camera_id": "Cam A", "since": T0, "until": T0}, "camera id 'Cam A' is invalid"),
        ({"sighting_id": "f", "pad_s": 9999.0}, "between 0 and 600"),
        ({"alert_id": "a1"}, "no alerts table yet"),
    ],
)
def test_malformed_requests_are_refused(footage: Storage, fields, message) -> None:  # noqa: ANN001
    from citywatch.tasks.export.request import resolve_request

    with pytest.raises(BadInputError, match=message):
        resolve_request(footage, footage.settings, _request(**fields), load_face_model())


def test_a_plate_alert_exports_the_vehicle_pass_with_every_face_blurred(footage: Storage) -> None:
    import pyarrow as pa

    from citywatch.tasks.export.request import resolve_request

    footage.db.create_table(
        "alerts",
        pa.table(
            {
                "id": ["a1"],
                "sighting_id": ["cam-a/x#p0001"],
                "kind": ["plate"],
                "camera_id": ["cam-a"],
                "track_start": pa.array([_at(10)], pa.timestamp("us", tz="UTC")),
                "track_end": pa.array([_at(14)], pa.timestamp("us", tz="UTC")),
            }
        ),
    )
    resolved = resolve_request(
        footage, footage.settings, _request(alert_id="a1", pad_s=3.0), load_face_model()
    )
    assert (resolved.camera_id, resolved.start, resolved.end) == ("cam-a", _at(7), _at(17))
    assert resolved.subject is None and resolved.sighting_id == "cam-a/x#p0001"
