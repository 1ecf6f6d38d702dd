"""Footage naming: <camera_id>/<YYYYMMDDTHHMMSSZ>.<ext>."""

import datetime as dt

import pytest

from citywatch.errors import BadInputError
from citywatch.footage import discover_segments, parse_segment
from citywatch.listing import ObjectInfo
from citywatch.storage import safe_key


def obj(key: str, size: int = 10) -> ObjectInfo:
    return ObjectInfo(url=f"/f/{key}", key=key, size=size)


def test_segment_time_comes_from_the_name() -> None:
    ref = parse_segment(obj("cam-1/20261120T080030Z.mp4"))
    assert ref.id == "cam-1/20261120T080030Z"
    assert ref.start == dt.datetime(2026, 11, 20, 8, 0, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("cam-1/2026-11-20.mp4", "not a UTC start time"),
        ("cam-1/20261340T080000Z.mp4", "not a valid date"),
        ("CAM 1/20261120T080000Z.mp4", "not a valid camera id"),
        ("20261120T080000Z.mp4", "must be at <camera_id>"),
        ("cam-1/x/20261120T080000Z.mp4", "must be at <camera_id>"),
        ("cam-1/20261120T080000Z", "no extension"),
        ("cam-nl\n/20261120T080000Z.mp4", "not a valid camera id"),  # a trailing newline
        ("cam-1/20261120T080000Z\n.mp4", "not a UTC start time"),
    ],
)
def test_misnamed_files_are_reported(key: str, problem: str) -> None:
    with pytest.raises(BadInputError, match=problem):
        parse_segment(obj(key))


def test_discovery_skips_sidecars_and_reports_misnamed() -> None:
    found = discover_segments(
        [
            obj("cam-1/20261120T080030Z.mp4"),
            obj("cam-1/20261120T080000Z.mkv"),
            obj("car-1/20261120T080000Z.gps.csv"),
            obj("cam-1/.partial"),
            obj("cam-1/notes.txt"),
        ]
    )
    assert [s.id for s in found.segments] == ["cam-1/20261120T080000Z", "cam-1/20261120T080030Z"]
    assert len(found.misnamed) == 1 and "notes.txt" in found.misnamed[0]


def test_two_files_with_one_start_are_a_conflict_and_neither_is_indexed() -> None:
    found = discover_segments(
        [
            obj("cam-1/20261120T080000Z.mp4"),
            obj("cam-1/20261120T080000Z.mkv"),
            obj("cam-1/20261120T080100Z.mp4"),
        ]
    )
    assert [s.id for s in found.segments] == ["cam-1/20261120T080100Z"]
    assert len(found.conflicts) == 1
    assert "/f/cam-1/20261120T080000Z.mkv" in found.conflicts[0]
    assert "/f/cam-1/20261120T080000Z.mp4" in found.conflicts[0]
    assert "cam-1/20261120T080000Z" in found.conflicts[0]


def test_start_times_more_than_a_day_ahead_are_refused() -> None:
    now = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)
    found = discover_segments([obj("cam-1/20991120T080000Z.mp4"), obj("cam-1/20261121T070000Z.mp4")], now=now)
    assert [s.id for s in found.segments] == ["cam-1/20261121T070000Z"]  # 23 h ahead: a clock skew
    assert len(found.misnamed) == 1
    assert "20991120T080000Z.mp4" in found.misnamed[0] and "future" in found.misnamed[0]


@pytest.mark.parametrize(
    "key",
    [
        "../etc/passwd",
        "/etc/passwd",
        "a/../../b",
        "s3://other/x",
        "file:///etc/passwd",
        "a\\b",
        "a/\x00",
        "",
        "./a",
        "C:/x",
    ],
)
def test_storage_keys_cannot_escape_the_root(key: str) -> None:
    with pytest.raises(BadInputError):
        safe_key(key)


def test_normal_key_is_kept() -> None:
    assert safe_key("thumbs/cam-1/x.jpg") == "thumbs/cam-1/x.jpg"


# --- issue 13: where footage and probes may come from; what discovery reports ----------


@pytest.mark.parametrize(
    ("root", "location", "accepted"),
    [
        ("/data", "/tmp/probe.jpg", True),
        ("/data", "file:///tmp/probe.jpg", True),
        ("/data", "http://127.0.0.1/probe.jpg", False),  # server-side request forgery
        ("/data", "s3://bucket/probe.jpg", False),  # not the root's scheme
        ("s3://bucket/city", "s3://bucket/city/footage", True),
        ("s3://bucket/city", "https://169.254.169.254/latest/meta-data", False),
        ("s3://bucket/city", "/tmp/probe.jpg", True),
    ],
)
def test_user_locations_are_local_paths_or_the_storage_roots_scheme(
    root: str, location: str, accepted: bool
) -> None:
    from citywatch.settings import Settings
    from citywatch.storage import Storage

    storage = Storage(Settings(storage__root=root))
    if accepted:
        assert storage.resolve(location, "probe")
    else:
        with pytest.raises(BadInputError, match=r"probe .*only local paths"):
            storage.resolve(location, "probe")


def test_symbolic_links_in_the_footage_are_reported_not_followed(tmp_path) -> None:  # noqa: ANN001
    from citywatch.settings import Settings
    from citywatch.storage import Storage
    from citywatch.tasks.index.catalog import plan_index

    outside = tmp_path / "elsewhere" / "20261120T080000Z.mp4"
    outside.parent.mkdir()
    outside.write_bytes(b"video")
    cam = tmp_path / "data" / "footage" / "cam-1"
    cam.mkdir(parents=True)
    (cam / "20261120T080100Z.mp4").write_bytes(b"video")
    (cam / "20261120T080000Z.mp4").symlink_to(outside)
    (tmp_path / "data" / "footage" / "cam-2").symlink_to(outside.parent, target_is_directory=True)
    storage = Storage(Settings(storage__root=str(tmp_path / "data")))
    plan = plan_index(storage, storage.url("footage"))
    assert [s.id for s in plan.pending] == ["cam-1/20261120T080100Z"]
    links = [m for m in plan.discovery.misnamed if "symbolic link" in m]
    assert len(links) == 2 and any("cam-2" in m for m in links)
    assert any("cam-1/20261120T080000Z.mp4" in m for m in links)


def test_a_name_with_a_control_character_is_reported_on_one_line() -> None:
    found = discover_segments([obj("cam-nl\n/20261120T080000Z.mp4"), obj("cam-1/20261120T0800\r00Z.mp4")])
    assert len(found.misnamed) == 2
    assert all("\n" not in m and "\r" not in m for m in found.misnamed)
    assert "'/f/cam-nl\\n/20261120T080000Z.mp4'" in found.misnamed[0]
