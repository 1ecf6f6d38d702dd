"""citywatch.analytics helpers on small made-up tables.

Rows are written to a real LanceDB (local and on a moto S3 server) through the same
row types the indexer uses. (Against the indexed sample's ground truth:
tests/test_analytics_sample.py.)
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from citywatch import analytics as cw
from citywatch.errors import BadInputError, ForbiddenError
from citywatch.governance.audit_log import AuditLog
from citywatch.governance.auth import write_demo_users
from citywatch.schemas import CameraRow, FaceRow, PlateRow, SegmentRow, rows_to_arrow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import cameras_table, faces_table, plates_table, segments_table, upsert
from citywatch.tasks.publish import publish_analytics
from tests.analytics_support import (
    DIM,
    PLATES,
    T0,
    at,
    camera,
    face,
    plate,
    segment,
    sighting_json,
)

CAMERAS = [camera("cam-a", "Central"), camera("cam-b", "Central"), camera("cam-c", "Sha Tin")]
SEGMENTS = [
    segment("cam-a", 0, indexed_s=90),
    segment("cam-b", 0, indexed_s=100),
    segment("cam-a", 60, indexed_s=150),
    segment("cam-c", 0, state="failed", error="segment {uri} is empty (0 bytes)", indexed_s=95),
    segment("cam-c", 60, state="failed", error="segment {uri} is empty (0 bytes)", indexed_s=160),
    segment("cam-b", 60, state="failed", error="cannot decode: moov atom not found", indexed_s=161),
]
FACES = (
    [face("cam-a", "a#t1", 0, 5, n) for n in range(3)]
    + [face("cam-a", "a#t2", 3700, 3710, n) for n in range(2)]
    + [face("cam-b", "b#t1", 10, 12, n) for n in range(3)]
)


def write_tables(settings: Settings) -> None:
    db = Storage(settings).db
    upsert(cameras_table(db), rows_to_arrow(CAMERAS, CameraRow.SCHEMA))
    upsert(segments_table(db), rows_to_arrow(SEGMENTS, SegmentRow.SCHEMA))
    upsert(faces_table(db, DIM), rows_to_arrow(FACES, FaceRow.schema(DIM)))
    upsert(plates_table(db), rows_to_arrow(PLATES, PlateRow.SCHEMA))
    write_demo_users(Storage(settings))
    publish_analytics(Storage(settings))  # what the index flow does after a run


@pytest.fixture(scope="module")
def made_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("analytics") / "data"
    write_tables(Settings(storage__root=str(root)))
    return root


@pytest.fixture()
def tables(made_root: Path, tmp_path: Path) -> cw.AnalyticsTables:
    root = tmp_path / "data"
    shutil.copytree(made_root, root)
    return cw.open_tables(Settings(storage__root=str(root), user="demo-analyst"))


# --- opening: roles, audit, no embeddings ---------------------------------------------
@pytest.mark.parametrize(
    ("user", "error"),
    [
        ("demo-analyst", None),
        ("demo-investigator", None),
        ("demo-supervisor", None),
        ("demo-admin", ForbiddenError),  # admins run the system, they do not read sightings
        (None, ForbiddenError),
        ("mallory", ForbiddenError),
    ],
)
def test_open_tables_needs_a_role_that_reads_analytics(
    made_root: Path, tmp_path: Path, user: str | None, error: type[Exception] | None
) -> None:
    root = tmp_path / "data"
    shutil.copytree(made_root, root)
    settings = Settings(storage__root=str(root), user=user)
    if error:
        with pytest.raises(error):
            cw.open_tables(settings)
    else:
        assert cw.open_tables(settings).actor.user == user
    last = AuditLog(Storage(settings)).rows()[-1]
    assert (last.action, last.outcome) == ("analytics_read", "refused" if error else "ok")


def test_tables_never_carry_embeddings_or_thumbnails(tables: cw.AnalyticsTables) -> None:
    faces = tables.faces()
    assert faces.height == len(FACES)
    assert {"embedding", "thumb_uri"}.isdisjoint(faces.columns)
    assert "thumb_uri" not in tables.plates().columns
    con = tables.duckdb()
    assert con.sql("select count(distinct track_id) from faces").fetchall() == [(3,)]
    face_columns = {row[0] for row in con.sql("describe faces").fetchall()}
    assert "embedding" not in face_columns


@pytest.mark.parametrize(
    ("where", "faces", "error"),
    [
        (cw.Slice(), 8, None),
        (cw.Slice(camera_ids=("cam-b",)), 3, None),
        (cw.Slice(district="Central"), 8, None),
        (cw.Slice(district="Sha Tin"), 0, None),
        (cw.Slice(since=at(3000)), 2, None),
        (cw.Slice(camera_ids=("cam-a",), until=at(100)), 3, None),
        (cw.Slice(camera_ids=("cam-x",)), 0, "no such camera"),
        (cw.Slice(district="Nowhere"), 0, "no camera in that district"),
        (cw.Slice(camera_ids=("cam-c",), district="Central"), 0, "exclude every camera"),
        (cw.Slice(since=at(10), until=at(0)), 0, "is after"),
    ],
)
def test_slices(tables: cw.AnalyticsTables, where: cw.Slice, faces: int, error: str | None) -> None:
    if error:
        with pytest.raises(BadInputError, match=error):
            tables.faces(where)
    else:
        assert tables.faces(where).height == faces


def test_missing_tables_read_as_empty(tmp_path: Path) -> None:
    settings = Settings(storage__root=str(tmp_path / "empty"), user="demo-analyst")
    write_demo_users(Storage(settings))
    empty = cw.open_tables(settings)
    assert empty.plates().is_empty() and "text" in empty.plates().columns
    assert cw.plate_frequency(empty.plates()).is_empty()
    assert cw.activity(empty.faces(), empty.cameras()).is_empty()


@pytest.fixture()
def s3_settings(s3_server) -> Settings:  # noqa: ANN001 - tests.s3.S3Server
    return s3_server.settings(f"{s3_server.bucket('city')}/prod")


def test_s3_root(s3_settings: Settings) -> None:
    write_tables(s3_settings)
    tables = cw.open_tables(s3_settings.model_copy(update={"user": "demo-analyst"}))
    counts = cw.activity(tables.faces(), tables.cameras(), by=("camera",))
    assert dict(zip(counts["camera_id"], counts["tracks"])) == {"cam-a": 2, "cam-b": 1, "cam-c": 0}


def write_patrol_root(root: Path) -> Settings:
    """A patrol car (mobile camera) with two segments, GPS sidecars and plates read on the way;
    plus the fixed cameras' tables. Used here and by tests/test_notebooks.py."""
    settings = Settings(storage__root=str(root))
    write_tables(settings)
    storage = Storage(settings)
    car = CameraRow("car-1", "Patrol car 1", "", None, None, "mobile", None, 1280, 720, [], [], True)
    segments, plates = [], []
    for k, start_s in enumerate((0, 60)):
        stamp = at(start_s).strftime("%Y%m%dT%H%M%SZ")
        uri = storage.write_bytes(f"footage/car-1/{stamp}.mp4", b"not decoded here")
        lines = ["ts,lat,lon"] + [f"{t},{22.30 + 0.001 * (start_s + t)},{114.17}" for t in range(0, 60, 10)]
        storage.write_bytes(f"footage/car-1/{stamp}.gps.csv", "\n".join(lines).encode())
        segments.append(
            SegmentRow(
                f"car-1/{stamp}",
                "car-1",
                uri,
                at(start_s),
                at(start_s + 60),
                16,
                "x",
                "done",
                "",
                "m",
                120,
                60,
                0,
                at(200 + k),
            )
        )
        plates.append(plate("PC1234", "car-1", start_s + 15, start_s + 17))
    plates.append(plate("AB123", "car-1", 40, 42))
    plates = [
        dataclasses.replace(p, lat=22.30 + 0.001 * (p.first_ts - T0).total_seconds(), lon=114.17)
        for p in plates
    ]  # where the car was
    db = storage.db
    upsert(cameras_table(db), rows_to_arrow([car], CameraRow.SCHEMA))
    upsert(segments_table(db), rows_to_arrow(segments, SegmentRow.SCHEMA))
    upsert(plates_table(db), rows_to_arrow(plates, PlateRow.SCHEMA))
    publish_analytics(storage)
    return settings


def test_gps_route_of_a_patrol_car(tmp_path: Path) -> None:
    settings = write_patrol_root(tmp_path / "data")
    tables = cw.open_tables(settings.model_copy(update={"user": "demo-analyst"}))
    route = tables.gps_route("car-1")
    assert route.height == 12 and route["ts"].is_sorted()
    assert route.row(0) == ("car-1/20261120T080000Z", T0, 22.30, 114.17)
    assert route["lat"][-1] == pytest.approx(22.30 + 0.001 * 110)
    assert tables.gps_route("car-1", cw.Slice(since=at(30))).height == 6
    assert tables.gps_route("cam-a").is_empty()  # fixed cameras have no sidecars


# --- activity ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("by", "expected"),
    [
        (("camera",), {("cam-a",): 2, ("cam-b",): 1, ("cam-c",): 0}),
        (("district",), {("Central",): 3, ("Sha Tin",): 0}),
        (("hour",), {(T0,): 2, (at(3600),): 1}),
        (("camera", "hour"), {("cam-a", T0): 1, ("cam-b", T0): 1, ("cam-a", at(3600)): 1}),
    ],
)
def test_activity_counts_tracks_not_rows(
    tables: cw.AnalyticsTables, by: tuple[str, ...], expected: dict[tuple[object, ...], int]
) -> None:
    counts = cw.activity(tables.faces(), tables.cameras(), by=by)  # type: ignore[arg-type]
    keys = [{"camera": "camera_id", "district": "district", "hour": "hour"}[b] for b in by]
    got = {tuple(row[:-1]): row[-1] for row in counts.select(*keys, "tracks").iter_rows()}
    assert got == expected


def test_activity_hours_in_local_time(tables: cw.AnalyticsTables) -> None:
    counts = cw.activity(tables.faces(), tables.cameras(), by=("hour",), tz="Asia/Hong_Kong")
    assert [h.hour for h in counts["hour"]] == [16, 17]  # 08:00 and 09:00 UTC


def test_activity_refuses_unknown_dimension(tables: cw.AnalyticsTables) -> None:
    with pytest.raises(BadInputError, match="'street'"):
        cw.activity(tables.faces(), tables.cameras(), by=("street",))  # type: ignore[arg-type]


# --- a subject's timeline -----------------------------------------------------------------
def test_subject_timeline_merges_split_tracks(tables: cw.AnalyticsTables) -> None:
    doc = [
        sighting_json("f3", "cam-a", 300, 310),
        sighting_json("f1", "cam-a", 0, 10, 0.5),
        sighting_json("f2", "cam-a", 40, 50, 0.3),
        sighting_json("f4", "cam-b", 100, 104),
    ]
    timeline = cw.subject_timeline(cw.read_sightings_json(json.dumps(doc)), tables.cameras())
    assert timeline.select("camera_id", "start", "end", "sightings", "best_face_id").rows() == [
        ("cam-a", at(0), at(50), 2, "f2"),
        ("cam-b", at(100), at(104), 1, "f4"),
        ("cam-a", at(300), at(310), 1, "f3"),
    ]
    assert timeline["dwell_s"].to_list() == [50.0, 4.0, 10.0]
    assert timeline["district"].to_list() == ["Central"] * 3
    assert cw.camera_sequence(timeline) == ["cam-a", "cam-b", "cam-a"]
    assert "embedding" not in timeline.columns


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[1]", "must be an object"),
        ('[{"face_id": "f", "ts": "2026-11-20T08:00:00Z"}]', "'camera_id' is missing"),
        ('{"x": 1}', "expected a list"),
        ("/nonexistent/case.json", "cannot read sightings"),
        ("[{]", "not valid JSON"),
    ],
)
def test_bad_sightings_json(text: str, error: str) -> None:
    with pytest.raises(BadInputError, match=error):
        cw.read_sightings_json(text)


def test_bad_time_in_sightings_json() -> None:
    bad = {**sighting_json("f", "cam-a", 0, 1), "ts": "yesterday"}
    with pytest.raises(BadInputError, match=r"\[0\]: ts 'yesterday' is not an ISO time"):
        cw.read_sightings_json(json.dumps([bad]))


# --- pipeline health -----------------------------------------------------------------
def test_pipeline_health(tables: cw.AnalyticsTables) -> None:
    segments = tables.segments()
    assert cw.segments_by_state(segments).select("state", "segments").rows() == [("done", 3), ("failed", 3)]
    reasons = cw.failures_by_reason(segments)
    assert reasons.select("reason", "segments", "cameras").rows() == [
        ("segment <segment> is empty (0 bytes)", 2, 1),
        ("cannot decode: moov atom not found", 1, 1),
    ]
    lag = cw.index_lag(segments).filter(pl.col("state") == "done")
    assert lag["lag_s"].to_list() == [30.0, 40.0, 30.0]  # indexed at 90/100/150, ended 60/60/120
    per_minute = cw.throughput(segments, every="1m")
    assert per_minute.select("segments", "failed", "footage_s").rows() == [(3, 1, 120.0), (3, 2, 60.0)]
    health = cw.pipeline_health(segments)
    assert (health.segments, health.done, health.failed, health.footage_s) == (6, 3, 3, 180.0)
    assert (health.lag_median_s, health.lag_max_s) == (30.0, 40.0)  # of done segments only
    assert health.realtime_factor == pytest.approx(180.0 / 71.0)
