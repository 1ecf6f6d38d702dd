"""citywatch.analytics helpers on small made-up tables.

Rows are written to a real LanceDB (local and on a moto S3 server) through the same
row types the indexer uses. (Against the indexed sample's ground truth:
tests/test_analytics_sample.py.)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
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

T0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)
DIM = 4


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def camera(cid: str, district: str, lat: float = 22.3, lon: float = 114.2) -> CameraRow:
    return CameraRow(cid, cid.upper(), district, lat, lon, "fixed", 5.0, 1280, 720, [], [], True)


def segment(
    cid: str,
    start_s: float,
    *,
    state: str = "done",
    error: str = "",
    indexed_s: float = 600.0,
    length_s: float = 60.0,
) -> SegmentRow:
    stamp = at(start_s).strftime("%Y%m%dT%H%M%SZ")
    uri = f"/data/footage/{cid}/{stamp}.mp4"
    return SegmentRow(
        f"{cid}/{stamp}",
        cid,
        uri,
        at(start_s),
        at(start_s + length_s) if state == "done" else None,
        1000,
        "x",
        state,
        error.replace("{uri}", uri),
        "m",
        120,
        60,
        3,
        at(indexed_s),
    )


def face(cid: str, track: str, start_s: float, end_s: float, n: int) -> FaceRow:
    return FaceRow(
        f"{track}-{n}",
        f"{cid}/seg",
        cid,
        at(start_s + n),
        (0, 0, 10, 10),
        0.9,
        0.5,
        np.ones(DIM, np.float32),
        track,
        at(start_s),
        at(end_s),
        f"/data/thumbs/{track}-{n}.jpg",
        22.3,
        114.2,
        "m",
    )


def plate(
    text: str, cid: str, first_s: float, last_s: float, *, low: bool = False, pid: str | None = None
) -> PlateRow:
    return PlateRow(
        pid or f"{text}@{cid}@{first_s}",
        f"{cid}/seg",
        cid,
        at(first_s),
        at(first_s),
        at(last_s),
        text,
        0.9,
        [0.9] * len(text),
        5,
        low,
        (0, 0, 10, 10),
        f"t-{text}-{first_s}",
        "/data/thumbs/p.jpg",
        22.3,
        114.2,
        "m",
    )


def plates_frame(rows: list[PlateRow]) -> pl.DataFrame:
    return pl.from_arrow(rows_to_arrow(rows, PlateRow.SCHEMA))  # type: ignore[return-value]


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
PLATES = [
    plate("AB123", "cam-a", 0, 4),
    plate("AB123", "cam-a", 100, 110),
    plate("AB123", "cam-b", 50, 52),
    plate("XY9", "cam-a", 20, 22),
    plate("QQ1", "cam-a", 30, 31, low=True),
]


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


# --- plates ----------------------------------------------------------------------------
def test_plate_frequency_leaves_out_low_confidence_reads() -> None:
    freq = cw.plate_frequency(plates_frame(PLATES))
    assert freq.select("text", "passes", "cameras").rows() == [("AB123", 3, 2), ("XY9", 1, 1)]
    with_low = cw.plate_frequency(plates_frame(PLATES), include_low_confidence=True)
    assert "QQ1" in with_low["text"].to_list()
    assert cw.plate_frequency(plates_frame(PLATES), min_passes=2)["text"].to_list() == ["AB123"]


@pytest.mark.parametrize(
    ("gap_s", "visits"),
    [
        # passes at cam-a: 0..10, 15..20 (5 s later), 80..85 (60 s later), 85..90 (touching)
        (0, [(0, 10, 1), (15, 20, 1), (80, 90, 2)]),
        (5, [(0, 20, 2), (80, 90, 2)]),  # a gap of exactly 5 s is within 5 s
        (59, [(0, 20, 2), (80, 90, 2)]),
        (60, [(0, 90, 4)]),
    ],
)
def test_plate_visits_and_dwell(gap_s: float, visits: list[tuple[float, float, int]]) -> None:
    rows = [
        plate("AB123", "cam-a", 0, 10),
        plate("AB123", "cam-a", 15, 20),
        plate("AB123", "cam-a", 80, 85),
        plate("AB123", "cam-a", 85, 90),
        plate("AB123", "cam-b", 0, 30),
    ]
    found = cw.plate_visits(plates_frame(rows), gap=dt.timedelta(seconds=gap_s))
    cam_a = found.filter(pl.col("camera_id") == "cam-a")
    assert [(r["start"], r["end"], r["passes"]) for r in cam_a.iter_rows(named=True)] == [
        (at(s), at(e), n) for s, e, n in visits
    ]
    assert cam_a["dwell_s"].to_list() == [float(e - s) for s, e, _ in visits]
    assert cam_a["visit"].to_list() == list(range(1, len(visits) + 1))
    assert found.filter(pl.col("camera_id") == "cam-b")["dwell_s"].to_list() == [30.0]


def test_repeat_visits_and_dwell_summary() -> None:
    rows = [
        plate("AB123", "cam-a", 0, 10),
        plate("AB123", "cam-a", 3600, 3630),
        plate("AB123", "cam-a", 7200, 7220),
        plate("AB123", "cam-b", 0, 5),
        plate("XY9", "cam-a", 0, 5),
        plate("XY9", "cam-a", 100, 105),
    ]
    repeats = cw.repeat_visits(plates_frame(rows), gap=dt.timedelta(minutes=10))
    assert repeats.select("text", "camera_id", "visits", "total_dwell_s").rows() == [
        ("AB123", "cam-a", 3, 60.0)
    ]  # XY9 came back within 10 min: one visit
    summary = cw.dwell_summary(cw.plate_visits(plates_frame(rows)))
    assert summary.row(0, named=True) == {
        "camera_id": "cam-a",
        "visits": 4,
        "median_dwell_s": 25.0,
        "mean_dwell_s": 41.25,
        "max_dwell_s": 105.0,
    }


@pytest.mark.parametrize(
    ("second", "window_s", "same_camera", "gap_s"),
    [
        (("cam-a", 100, 110), 0, True, 0.0),  # overlapping passes
        (("cam-a", 130, 140), 10, True, 10.0),  # gap exactly the window: counts
        (("cam-a", 130.001, 140), 10, True, None),  # a millisecond over: does not
        (("cam-a", 60, 89), 11, True, 11.0),  # before the first event
        (("cam-b", 100, 110), 60, True, None),  # another camera
        (("cam-b", 100, 110), 60, False, 0.0),  # ... unless any camera will do
    ],
)
def test_co_occurrence_window_edges(
    second: tuple[str, float, float], window_s: float, same_camera: bool, gap_s: float | None
) -> None:
    cid, start, end = second
    rows = [plate("AB123", "cam-a", 100, 120), plate("XY9", cid, start, end)]
    pairs = cw.co_occurrences(
        cw.plate_events(plates_frame(rows), "ab-123"),
        cw.plate_events(plates_frame(rows), "xy 9"),
        window=dt.timedelta(seconds=window_s),
        same_camera=same_camera,
    )
    assert pairs["gap_s"].to_list() == ([] if gap_s is None else [pytest.approx(gap_s)])
    if gap_s is not None:
        assert (pairs["first_label"][0], pairs["second_label"][0]) == ("AB123", "XY9")


def test_plate_and_face_co_occurrence() -> None:
    sightings = cw.read_sightings_json(json.dumps([sighting_json("f1", "cam-a", 200, 205)]))
    pairs = cw.co_occurrences(
        cw.plate_events(plates_frame(PLATES), "AB123"),
        cw.sighting_events(sightings),
        window=dt.timedelta(minutes=2),
    )
    assert pairs.select("first_id", "second_id", "gap_s").rows() == [(PLATES[1].id, "f1", 90.0)]


# --- a subject's timeline -----------------------------------------------------------------
def sighting_json(
    face_id: str, cid: str, start_s: float, end_s: float, distance: float = 0.4
) -> dict[str, object]:
    """What `citywatch search face --json` writes for one sighting (tasks.report)."""
    iso = lambda t: at(t).isoformat().replace("+00:00", "Z")  # noqa: E731
    return {
        "rank": 1,
        "face_id": face_id,
        "camera_id": cid,
        "camera_name": cid.upper(),
        "ts": iso(start_s),
        "track_start": iso(start_s),
        "track_end": iso(end_s),
        "distance": distance,
        "similarity": 1 - distance,
        "bbox": [0, 0, 1, 1],
        "segment_uri": "",
        "thumb_uri": f"/data/thumbs/{face_id}.jpg",
        "lat": 22.3,
        "lon": 114.2,
    }


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
