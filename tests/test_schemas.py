"""Each row type survives a LanceDB round trip unchanged."""

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from citywatch.errors import BadInputError
from citywatch.schemas import (
    AlertRow,
    AuditRow,
    CameraRow,
    DeliveryRow,
    FaceRow,
    HoldRow,
    PlateRow,
    SegmentRow,
    SweepStateRow,
    WatchlistRow,
    arrow_to_rows,
    rows_to_arrow,
)
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import cameras_table, faces_table, open_table, plates_table, segments_table, upsert

T0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)

CAMERA = CameraRow(
    id="cam-a",
    name="A",
    district="Central",
    lat=22.3,
    lon=114.2,
    kind="fixed",
    height_m=4.0,
    frame_w=1280,
    frame_h=720,
    privacy_masks=[[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]],
    overlay_regions=[[0, 0, 100, 20]],
    registered=True,
)
SEGMENT = SegmentRow(
    id="cam-a/20261120T080000Z",
    camera_id="cam-a",
    uri="/x.mp4",
    start=T0,
    end=T0 + dt.timedelta(seconds=30),
    size_bytes=10,
    sha256="ab",
    state="done",
    error="",
    model="m",
    frames_decoded=450,
    frames_analysed=40,
    faces=3,
    updated_at=T0,
)
FACE = FaceRow(
    id="f1",
    segment_id=SEGMENT.id,
    camera_id="cam-a",
    ts=T0,
    bbox=(1.0, 2.0, 3.0, 4.0),
    det_score=0.9,
    quality=0.5,
    embedding=np.arange(128, dtype=np.float32),
    track_id="t",
    track_start=T0,
    track_end=T0,
    thumb_uri="/t.jpg",
    lat=None,
    lon=None,
    model="m",
)
PLATE = PlateRow(
    id="p1",
    segment_id=SEGMENT.id,
    camera_id="cam-a",
    ts=T0,
    first_ts=T0,
    last_ts=T0,
    text="AB1234",
    confidence=0.9,
    char_confidences=[0.5] * 6,
    reads=3,
    low_confidence=False,
    bbox=(1.0, 2.0, 3.0, 4.0),
    track_id="p1",
    thumb_uri="/p.jpg",
    lat=22.0,
    lon=114.0,
    model="ocr",
)
WATCH = WatchlistRow(
    id="w1",
    kind="face",
    label="subject 1",
    reason="missing",
    case_id="case-7",
    justification="reported missing",
    requested_by="alice",
    created_at=T0,
    expires_at=T0 + dt.timedelta(days=7),
    status="active",
    approved_by="bob",
    approved_at=T0,
    threshold=0.55,
    model="dlib",
    embeddings=[[0.25] * 4],
    photo_sha256=["ab"],
    plate_query="",
    removed_by="",
    removed_at=None,
    removal_note="",
    updated_at=T0,
)
SWEEP_MARK = SweepStateRow(id="faces", after_fragment=3, table_version=9, rows_seen=120, updated_at=T0)
HOLD = HoldRow(id="case-7|t1", case_id="case-7", track_id="t1", created_by="alice", created_at=T0, note="n")
ALERT = AlertRow(
    id="al-1",
    watchlist_id="wl-1",
    kind="plate",
    label="stolen van",
    reason="stolen vehicle",
    case_id="C-1",
    sighting_id="pl-1",
    segment_id="seg-1",
    camera_id="cam-01",
    track_id="t1",
    ts=T0,
    track_start=T0,
    track_end=T0 + dt.timedelta(seconds=4),
    score=0.3,
    threshold=0.6,
    thumb_uri="thumbs/pl-1.jpg",
    lat=22.28,
    lon=None,
    plate_text="AB1234",
    model="plate-rec",
    state="new",
    reviewed_by="",
    reviewed_at=None,
    note="",
    created_at=T0,
)
DELIVERY = DeliveryRow(
    id="dl-1",
    alert_id="al-1",
    sink="ops-room",
    state="pending",
    attempts=0,
    last_error="",
    next_attempt_at=T0,
    claim="",
    delivered_at=None,
    created_at=T0,
    updated_at=T0,
)
AUDIT = AuditRow(
    seq=1,
    id="au-1",
    ts=T0,
    user="alice",
    role="investigator",
    action="search_face",
    outcome="ok",
    case_id="C-1",
    justification="robbery",
    params="{}",
    probe_sha256="",
    result_count=3,
    detail="",
    host="h",
    prev_hash="0" * 64,
    hash="f" * 64,
)


def _keyed(row_type):  # noqa: ANN001, ANN202
    return lambda db: open_table(db, row_type.TABLE, row_type.SCHEMA)


@pytest.mark.parametrize(
    ("row", "opener", "schema"),
    [
        (CAMERA, cameras_table, CameraRow.SCHEMA),
        (SEGMENT, segments_table, SegmentRow.SCHEMA),
        (FACE, lambda db: faces_table(db, 128), FaceRow.schema(128)),
        (PLATE, plates_table, PlateRow.SCHEMA),
        (WATCH, _keyed(WatchlistRow), WatchlistRow.SCHEMA),
        (SWEEP_MARK, _keyed(SweepStateRow), SweepStateRow.SCHEMA),
        (HOLD, _keyed(HoldRow), HoldRow.SCHEMA),
        (ALERT, _keyed(AlertRow), AlertRow.SCHEMA),
        (DELIVERY, _keyed(DeliveryRow), DeliveryRow.SCHEMA),
        (AUDIT, _keyed(AuditRow), AuditRow.SCHEMA),
    ],
)
def test_round_trip(tmp_path: Path, row, opener, schema) -> None:  # noqa: ANN001
    storage = Storage(Settings(storage__root=str(tmp_path)))
    table = opener(storage.db)
    upsert(table, rows_to_arrow([row], schema))
    upsert(table, rows_to_arrow([row], schema))  # idempotent
    back = arrow_to_rows(table.to_arrow(), type(row))
    assert len(back) == 1
    got = back[0]
    for name in type(row).__dataclass_fields__:
        expected, actual = getattr(row, name), getattr(got, name)
        if isinstance(expected, np.ndarray):
            assert np.array_equal(expected, actual)
        elif isinstance(expected, float):
            assert actual == pytest.approx(expected)
        elif isinstance(expected, list) and expected and isinstance(expected[0], float):
            assert actual == pytest.approx(expected)
        else:
            assert actual == expected, name


def test_faces_table_refuses_other_model_dimension(tmp_path: Path) -> None:
    storage = Storage(Settings(storage__root=str(tmp_path)))
    faces_table(storage.db, 128)
    with pytest.raises(BadInputError, match="embedding"):
        faces_table(storage.db, 512)
