"""Incremental discovery (issue 19 item 2): a tick lists what is new, a reconcile lists all.

Real LanceDB and real folders (and moto's S3 server for the S3 listing). The footage
files are empty: listing and planning never open them.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

from citywatch.footage import format_stamp, parse_stamp
from citywatch.schemas import DiscoveryMarkRow, SegmentRow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import segments_table
from citywatch.tasks.index.catalog import Plan, plan_index
from citywatch.tasks.index.discovery import load_marks, save_marks
from citywatch.tasks.index.selection import segment_selection, select_pending

BASE = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
CAMERAS = 100
PER_CAMERA = 1000  # 100 x 1000 = 100,000 segments


def stamp(minutes: int) -> str:
    return format_stamp(BASE + dt.timedelta(minutes=minutes))


def write_rows(
    storage: Storage,
    ids: list[str],
    *,
    state: str = "done",
    size: int = 0,
    starts: list[dt.datetime] | None = None,
) -> None:
    """Segment rows for ``ids`` (``<camera>/<stamp>``), written in one batch."""
    cams = [i.split("/")[0] for i in ids]
    starts = starts or [parse_stamp(i.split("/")[1]) for i in ids]
    folder = storage.url("footage")
    n = len(ids)
    columns = {
        "id": ids,
        "camera_id": cams,
        "uri": [f"{folder}/{i}.mp4" for i in ids],
        "start": starts,
        "end": starts,
        "size_bytes": [size] * n,
        "sha256": [""] * n,
        "state": [state] * n,
        "error": [""] * n,
        "model": ["test"] * n,
        "frames_decoded": [0] * n,
        "frames_analysed": [0] * n,
        "faces": [0] * n,
        "plates_rejected_text": [0] * n,
        "updated_at": [NOW] * n,
    }
    segments_table(storage.db).add(pa.table(columns, schema=SegmentRow.SCHEMA))


def plan(storage: Storage, mode: str = "auto", *, now: dt.datetime = NOW, **kw: object) -> Plan:
    return plan_index(storage, storage.url("footage"), mode=mode, now=now, **kw)  # type: ignore[arg-type]


def pending_ids(p: Plan) -> list[str]:
    return [ref.id for ref in p.pending]


@dataclass(frozen=True)
class Big:
    storage: Storage
    footage: Path


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder in memory where the machine has one (/dev/shm): 100,000 files are created
    there in a fraction of the time a busy disk takes; else an ordinary temp folder."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path_factory.mktemp("discovery")
        return
    folder = Path(tempfile.mkdtemp(prefix="citywatch-discovery-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def big(scratch: Path) -> Big:
    """100,000 indexed segments (empty files, rows marked done) and their cameras' marks."""
    root = scratch / "data"
    footage = root / "footage"
    ids: list[str] = []
    starts = [BASE + dt.timedelta(minutes=m * 5) for m in range(PER_CAMERA)]
    names = [format_stamp(start) for start in starts]
    for c in range(CAMERAS):
        cam = footage / f"cam-{c:03d}"
        cam.mkdir(parents=True)
        for name in names:
            os.close(os.open(f"{cam}/{name}.mp4", os.O_CREAT | os.O_WRONLY, 0o644))
            ids.append(f"cam-{c:03d}/{name}")
    storage = Storage(Settings(storage__root=str(root)))
    write_rows(storage, ids, starts=starts * CAMERAS)
    # the marks a reconcile would leave (test_a_full_reconcile... runs one for real)
    newest = {f"cam-{c:03d}": stamp((PER_CAMERA - 1) * 5) for c in range(CAMERAS)}
    save_marks(storage, storage.url("footage"), newest, NOW, full=True)
    return Big(storage, footage)


def test_a_tick_finds_a_new_segment_among_100000_old_ones(big: Big) -> None:
    new = f"{stamp(PER_CAMERA * 5 + 1)}"
    (big.footage / "cam-007" / f"{new}.mp4").write_bytes(b"video")
    tick = plan(big.storage)
    assert not tick.full_listing
    assert pending_ids(tick) == [f"cam-007/{new}"]
    # the tick listed one segment per camera (the newest known) and the new one, not history
    assert len(tick.discovery.segments) <= CAMERAS + 2
    # the mark holds at the pending segment, so the next tick (the index run's own plan) lists it again
    assert load_marks(big.storage, big.storage.url("footage")).stamps["cam-007"] == new
    assert pending_ids(plan(big.storage)) == [f"cam-007/{new}"]


def test_a_full_reconcile_finds_a_segment_older_than_the_mark(big: Big) -> None:
    lost = stamp(3)  # between two indexed segments: its notification was "lost"
    (big.footage / "cam-042" / f"{lost}.mp4").write_bytes(b"late upload")
    assert f"cam-042/{lost}" not in pending_ids(plan(big.storage))  # a tick does not look back
    reconciled = plan(big.storage, "reconcile")
    assert reconciled.full_listing and f"cam-042/{lost}" in pending_ids(reconciled)
    assert reconciled.already_done == CAMERAS * PER_CAMERA
    # the camera's mark went back to it: ticks list it until it is indexed
    assert load_marks(big.storage, big.storage.url("footage")).stamps["cam-042"] == lost
    assert f"cam-042/{lost}" in pending_ids(plan(big.storage))


# --- the existing guarantees, on a tick ------------------------------------------


@pytest.fixture
def small(tmp_path: Path) -> Big:
    footage = tmp_path / "data" / "footage"
    for cam in ("cam-a", "cam-b"):
        (footage / cam).mkdir(parents=True)
        for m in range(3):
            (footage / cam / f"{stamp(m)}.mp4").write_bytes(b"v")
    storage = Storage(Settings(storage__root=str(tmp_path / "data")))
    write_rows(storage, [f"{cam}/{stamp(m)}" for cam in ("cam-a", "cam-b") for m in range(3)], size=1)
    assert not plan(storage, "reconcile").pending
    return Big(storage, footage)


def test_a_tick_is_a_full_listing_once_a_day(small: Big) -> None:
    lost = f"{stamp(0)[:-3]}30Z"  # 30 s after the first segment: older than the marks
    (small.footage / "cam-b" / f"{lost}.mp4").write_bytes(b"v")
    assert not plan(small.storage, now=NOW + dt.timedelta(hours=23)).pending
    later = plan(small.storage, now=NOW + dt.timedelta(days=1, seconds=1))  # index.full_reconcile_every_s
    assert later.full_listing and pending_ids(later) == [f"cam-b/{lost}"]
    every = Storage(small.storage.settings.updated(index__full_reconcile_every_s=0))
    assert plan(every).full_listing  # 0: every run lists everything


def test_a_tick_refuses_a_conflict_and_keeps_reporting_it(small: Big) -> None:
    (small.footage / "cam-a" / f"{stamp(10)}.mp4").write_bytes(b"v")
    (small.footage / "cam-a" / f"{stamp(10)}.mkv").write_bytes(b"v")
    for _ in range(2):  # the mark holds at the conflict: reported on every tick
        tick = plan(small.storage)
        assert not tick.full_listing and not tick.pending
        assert len(tick.discovery.conflicts) == 1 and f"cam-a/{stamp(10)}" in tick.discovery.conflicts[0]
    (small.footage / "cam-a" / f"{stamp(10)}.mkv").unlink()
    assert pending_ids(plan(small.storage)) == [f"cam-a/{stamp(10)}"]


def test_a_tick_reports_misnamed_files_and_links(small: Big, tmp_path: Path) -> None:
    (small.footage / "cam-b" / "zz-not-a-stamp.mp4").write_bytes(b"v")
    (small.footage / "stray.mp4").write_bytes(b"v")
    (small.footage / "Bad Camera").mkdir()
    (small.footage / "Bad Camera" / f"{stamp(20)}.mp4").write_bytes(b"v")
    (tmp_path / "outside.mp4").write_bytes(b"v")
    (small.footage / "cam-a" / f"{stamp(30)}.mp4").symlink_to(tmp_path / "outside.mp4")
    tick = plan(small.storage)
    assert not tick.full_listing and not tick.pending
    text = "\n".join(tick.discovery.misnamed)
    assert "zz-not-a-stamp" in text and "stray.mp4" in text and "'Bad Camera'" in text
    assert "symbolic link" in text and stamp(30) in text


def test_failed_segments_are_not_retried_unless_asked(small: Big) -> None:
    name = stamp(40)
    (small.footage / "cam-b" / f"{name}.mp4").write_bytes(b"v")
    write_rows(small.storage, [f"cam-b/{name}"], state="failed", size=1)
    tick = plan(small.storage)
    assert not tick.pending and tick.previously_failed == 1
    assert load_marks(small.storage, small.storage.url("footage")).stamps["cam-b"] == name  # settled
    retry = plan(small.storage, retry_failed=True)  # a full listing: the failed may be older than marks
    assert retry.full_listing and pending_ids(retry) == [f"cam-b/{name}"]


def test_selection_and_marks_per_footage_location(small: Big) -> None:
    for cam, m in (("cam-a", 50), ("cam-b", 51)):
        (small.footage / cam / f"{stamp(m)}.mp4").write_bytes(b"v")
    selection = segment_selection(["cam-b"], None, None)
    kept, left_out = select_pending(plan(small.storage), selection)
    assert pending_ids(kept) == [f"cam-b/{stamp(51)}"] and left_out == 1
    assert pending_ids(plan(small.storage)) == [f"cam-a/{stamp(50)}", f"cam-b/{stamp(51)}"]  # both left
    table = small.storage.db.open_table(DiscoveryMarkRow.TABLE)
    assert table.count_rows() == 3  # one row per camera and the location's own: ticks never add rows


def test_a_camera_clock_ahead_does_not_move_the_mark_past_now(small: Big) -> None:
    ahead = format_stamp(NOW + dt.timedelta(hours=2))
    (small.footage / "cam-a" / f"{ahead}.mp4").write_bytes(b"v")
    write_rows(small.storage, [f"cam-a/{ahead}"], size=1)
    assert not plan(small.storage).pending
    assert load_marks(small.storage, small.storage.url("footage")).stamps["cam-a"] == format_stamp(NOW)
    (small.footage / "cam-a" / f"{format_stamp(NOW + dt.timedelta(minutes=1))}.mp4").write_bytes(b"v")
    later = plan(small.storage, now=NOW + dt.timedelta(minutes=2))
    assert pending_ids(later) == [f"cam-a/{format_stamp(NOW + dt.timedelta(minutes=1))}"]


def test_on_s3_a_tick_lists_from_the_mark_and_a_reconcile_finds_the_lost(s3_server) -> None:  # noqa: ANN001
    settings = s3_server.settings(f"{s3_server.bucket()}/city")
    storage = Storage(settings)
    fs, root = storage.fs(storage.root)
    ids = [f"cam-{c}/{stamp(m)}" for c in ("a", "b") for m in range(0, 30, 2)]
    for seg in ids:
        fs.pipe_file(f"{root}/footage/{seg}.mp4", b"v")
    write_rows(storage, ids, size=1)
    assert not plan(storage, "reconcile").pending
    fs.pipe_file(f"{root}/footage/cam-a/{stamp(40)}.mp4", b"v")
    fs.pipe_file(f"{root}/footage/cam-b/{stamp(3)}.mp4", b"v")  # older than cam-b's mark
    fs.pipe_file(f"{root}/footage/cam-b/{stamp(28)}.mkv", b"v")  # conflicts with an indexed one
    tick = plan(storage)
    assert not tick.full_listing and pending_ids(tick) == [f"cam-a/{stamp(40)}"]
    assert len(tick.discovery.segments) == 2  # cam-a: the mark and the new one; cam-b: only the conflict
    assert len(tick.discovery.conflicts) == 1
    reconciled = plan(storage, "reconcile")
    assert pending_ids(reconciled) == [f"cam-b/{stamp(3)}", f"cam-a/{stamp(40)}"]


def test_marks_are_compacted_as_they_change(small: Big, monkeypatch: pytest.MonkeyPatch) -> None:
    from citywatch.tasks.index import discovery

    monkeypatch.setattr(discovery, "COMPACT_EVERY", 1)
    url = small.storage.url("footage")
    for m in range(3):
        discovery.save_marks(small.storage, url, {"cam-a": stamp(100 + m)}, NOW, full=False)
    table = small.storage.db.open_table(DiscoveryMarkRow.TABLE)
    assert table.stats()["fragment_stats"]["num_fragments"] == 1 and table.count_rows() == 3
    assert load_marks(small.storage, url).stamps == {"cam-a": stamp(102), "cam-b": stamp(2)}


def test_the_full_walk_lists_what_fsspec_finds(tmp_path: Path) -> None:
    """``Storage.list_all`` (one os.scandir walk) = ``list_files`` + ``list_links``."""
    footage = tmp_path / "footage"
    (footage / "cam-a" / "nested" / "deeper").mkdir(parents=True)
    (footage / "cam-b").mkdir()
    for path in ("cam-a/20261101T000000Z.mp4", "cam-a/nested/x.mp4", "cam-a/nested/deeper/y", "top.txt"):
        (footage / path).write_bytes(b"12345")
    (footage / "cam-b" / ".hidden.mp4").write_bytes(b"1")
    (footage / "cam-b" / "link.mp4").symlink_to(footage / "top.txt")
    (footage / "cam-c").symlink_to(footage / "cam-a", target_is_directory=True)
    storage = Storage(Settings(storage__root=str(tmp_path)))
    walked = storage.list_all(str(footage))
    assert walked.files == storage.list_files(str(footage))
    assert walked.links == storage.list_links(str(footage))
    assert len(walked.files) == 5 and len(walked.links) == 2
