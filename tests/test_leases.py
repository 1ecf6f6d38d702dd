"""Segment leases: one holder at a time, expiry, same-run re-claim, concurrency."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tasks.index.leases import claim, release

SEG = "cam-a/20261120T080000Z"


def storage_at(root: Path) -> Storage:
    return Storage(Settings(storage_root=str(root)))


def test_one_holder_then_release(tmp_path: Path) -> None:
    storage = storage_at(tmp_path)
    lease = claim(storage, SEG, "run-a", 60)
    assert lease is not None
    assert claim(storage, SEG, "run-b", 60) is None
    assert claim(storage, SEG, "run-a", 60) == lease  # a retried task of the same run
    release(storage, lease)
    assert claim(storage, SEG, "run-b", 60) is not None


def test_expired_lease_is_taken_over(tmp_path: Path) -> None:
    storage = storage_at(tmp_path)
    assert claim(storage, SEG, "crashed-run", -1) is not None  # already expired
    taken = claim(storage, SEG, "run-b", 60)
    assert taken is not None and taken.generation == 1


def _race(args: tuple[str, str]) -> bool:
    root, owner = args
    return claim(storage_at(Path(root)), SEG, owner, 60) is not None


def test_concurrent_claims_have_one_winner(tmp_path: Path) -> None:
    with mp.get_context("spawn").Pool(4) as pool:
        wins = pool.map(_race, [(str(tmp_path), f"run-{i}") for i in range(8)])
    assert sum(wins) == 1


def test_a_lease_that_cannot_be_released_does_not_fail_the_segment(tmp_path: Path, monkeypatch) -> None:
    """The segment's rows are written; a storage hiccup on release must not turn the
    task into a failure (its retry would then count the segment as another run's)."""
    import datetime as dt

    import citywatch.tasks.index.segment as index_segment
    from citywatch.errors import TransientError
    from citywatch.footage import SegmentRef
    from citywatch.schemas import CameraRow
    from citywatch.tasks.index.leases import Lease

    empty = tmp_path / "footage" / "cam-a" / "20261120T080000Z.mp4"
    empty.parent.mkdir(parents=True)
    empty.write_bytes(b"")
    ref = SegmentRef(
        id=SEG,
        camera_id="cam-a",
        start=dt.datetime(2026, 11, 20, 8, tzinfo=dt.UTC),
        uri=str(empty),
        size_bytes=0,
    )
    camera = CameraRow("cam-a", "A", "Central", 22.3, 114.2, "fixed", 5.0, 1280, 720, [], [], True)

    def broken_release(storage: Storage, lease: Lease) -> None:
        raise TransientError("could not delete the lease: connection refused")

    monkeypatch.setattr(index_segment, "release", broken_release)
    settings = Settings(storage_root=str(tmp_path), plates_enabled=False)
    outcome = index_segment.index_segment(ref, camera, settings, "run-a")
    assert outcome.state == "failed" and "empty" in outcome.error  # recorded, not raised
    # the same run's retry re-claims its own lease; another run waits for the expiry
    assert claim(storage_at(tmp_path), SEG, "run-a", 60) is not None
    assert claim(storage_at(tmp_path), SEG, "run-b", 60) is None
