"""Batched commits (``index.segments_per_task``): a task indexes consecutive segments of
one camera, each under its own lease, and writes their rows in one commit per table;
a corrupt segment in the batch is recorded and the others land."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import lancedb

from citywatch.flows.index_footage import task_batches
from citywatch.footage import SegmentRef, format_stamp
from citywatch.sample.signs import SIGN_CAMERA
from citywatch.schemas import CameraRow
from citywatch.settings import Settings
from citywatch.shards import read_index
from citywatch.storage import Storage
from citywatch.tables import segments_table, table_names
from citywatch.tasks.index.catalog import register_cameras
from citywatch.tasks.index.segment import index_segments
from tests.conftest import settings_for
from tests.short_segments import render_sign_camera

START = dt.datetime(2026, 11, 20, 8, tzinfo=dt.UTC)


def _ref(camera: str, minute: int, root: Path | None = None) -> SegmentRef:
    start = START + dt.timedelta(minutes=minute)
    uri = str(root / "footage" / camera / f"{format_stamp(start)}.mp4") if root else f"{camera}/{minute}"
    size = Path(uri).stat().st_size if root else 1
    return SegmentRef(f"{camera}/{format_stamp(start)}", camera, start, uri, size)


def test_batches_are_consecutive_segments_of_one_camera() -> None:
    pending = [_ref("cam-b", 1), _ref("cam-a", 2), _ref("cam-a", 0), _ref("cam-b", 0), _ref("cam-a", 1)]
    batches = task_batches(pending, 2)
    assert [[r.id for r in b] for b in batches] == [
        [_ref("cam-b", 0).id, _ref("cam-b", 1).id],
        [_ref("cam-a", 0).id, _ref("cam-a", 1).id],
        [_ref("cam-a", 2).id],
    ]
    assert task_batches(pending, 1) == [[r] for r in pending]  # one per task: pending's order


def _versions(db: lancedb.DBConnection) -> dict[str, int]:
    return {name: int(db.open_table(name).version) for name in table_names(db)}


def _one_camera(
    sample_dir: Path, tmp_path: Path, **overrides: object
) -> tuple[Settings, CameraRow, list[Path]]:
    """A store with the sample's first camera; its segment files in time order."""
    root = tmp_path / "data"
    camera_dir = sorted((sample_dir / "footage").iterdir())[0]
    (root / "footage").mkdir(parents=True)
    shutil.copy(sample_dir / "cameras.yaml", root / "cameras.yaml")
    shutil.copytree(camera_dir, root / "footage" / camera_dir.name)
    settings = settings_for(root, tmp_path, storage__shard_by_day=True, **overrides)
    cameras, _ = register_cameras(Storage(settings), settings, {camera_dir.name})
    return settings, cameras[camera_dir.name], sorted((root / "footage" / camera_dir.name).glob("*.mp4"))


def _file_ref(camera: CameraRow, path: Path) -> SegmentRef:
    start = dt.datetime.strptime(path.stem, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    return SegmentRef(f"{camera.id}/{path.stem}", camera.id, start, str(path), path.stat().st_size)


def test_a_batch_writes_once_per_table_and_records_its_corrupt_segment(
    sample_dir: Path, tmp_path: Path
) -> None:
    settings, camera, (first, second) = _one_camera(sample_dir, tmp_path)
    stamp = dt.datetime.strptime(second.stem, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    corrupt = second.with_name(f"{format_stamp(stamp + dt.timedelta(minutes=5))}.mp4")
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 500)
    storage = Storage(settings)

    def ref(path: Path) -> SegmentRef:
        return _file_ref(camera, path)

    (alone,) = index_segments([ref(first)], camera, settings, "run-a")
    assert alone.state == "done"
    before = _versions(storage.db)
    outcomes = index_segments([ref(second), ref(corrupt)], camera, settings, "run-a")
    assert [o.state for o in outcomes] == ["done", "failed"]
    assert corrupt.name in outcomes[1].error
    after = _versions(storage.db)
    # one commit per table for the whole batch (faces and plates day shards, plate texts, segments)
    written = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name)}
    assert written and all(n == 1 for n in written.values()), written
    assert {n for n in written if n.startswith("faces_d")} and "segments" in written
    faces = read_index(storage.db, "faces", columns=["segment_id"])
    assert faces is not None
    assert set(faces.column("segment_id").to_pylist()) <= {ref(first).id, ref(second).id}
    segments = {r["id"]: r["state"] for r in storage.db.open_table("segments").to_arrow().to_pylist()}
    assert segments == {ref(first).id: "done", ref(second).id: "done", ref(corrupt).id: "failed"}
    assert outcomes[0].faces == sum(1 for s in faces.column("segment_id").to_pylist() if s == ref(second).id)


def test_commit_after_s_commits_a_slow_batch_segment_by_segment(tmp_path: Path) -> None:
    """index.commit_after_s: once the bound has passed, a batch writes what it has, so the
    first segment's rows do not wait for the last; each segment still lands once, whole."""
    root = tmp_path / "data"
    refs = render_sign_camera(root, [START, START + dt.timedelta(seconds=8)])
    settings = settings_for(root, tmp_path, storage__shard_by_day=True, index__commit_after_s=0.001)
    storage = Storage(settings)
    cameras, _ = register_cameras(storage, settings, {SIGN_CAMERA})
    segments_table(storage.db)  # created before counting its commits
    before = _versions(storage.db)
    outcomes = index_segments(refs, cameras[SIGN_CAMERA], settings, "run-a")
    assert [o.state for o in outcomes] == ["done", "done"]
    after = _versions(storage.db)
    assert after["segments"] - before.get("segments", 0) == 2  # one commit per segment
    segments = {r["id"]: r["state"] for r in storage.db.open_table("segments").to_arrow().to_pylist()}
    assert segments == {ref.id: "done" for ref in refs}
