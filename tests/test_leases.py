"""Segment leases: one holder at a time, expiry, same-run re-claim, concurrency."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tasks.index.leases import claim, release

SEG = "cam-a/20261120T080000Z"


def storage_at(root: Path) -> Storage:
    return Storage(Settings(storage__root=str(root)))


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
    settings = Settings(storage__root=str(tmp_path), plates__enabled=False)
    outcome = index_segment.index_segment(ref, camera, settings, "run-a")
    assert outcome.state == "failed" and "empty" in outcome.error  # recorded, not raised
    # the same run's retry re-claims its own lease; another run waits for the expiry
    assert claim(storage_at(tmp_path), SEG, "run-a", 60) is not None
    assert claim(storage_at(tmp_path), SEG, "run-b", 60) is None


# --- heartbeat (issue 13: a killed run blocked its segments for 15 minutes) ------------


def test_a_live_lease_is_renewed_past_its_expiry_and_released_after(tmp_path: Path) -> None:
    import time

    from citywatch.tasks.index.leases import Heartbeat

    storage = storage_at(tmp_path)
    lease = claim(storage, SEG, "run-a", 1.0)
    assert lease is not None
    with Heartbeat(storage, lease, 1.0, 0.2) as beat:
        deadline = time.monotonic() + 3.0  # three times the expiry
        while time.monotonic() < deadline:
            assert claim(storage, SEG, "run-b", 60) is None
            time.sleep(0.1)
    assert not beat.lost and beat.lease.generation > lease.generation
    assert len(list((tmp_path / "leases").rglob("*.json"))) == 1  # older generations dropped
    release(storage, beat.lease)
    assert claim(storage, SEG, "run-b", 60) is not None


_HOLDER = """
import sys, time
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tasks.index.leases import Heartbeat, claim
storage = Storage(Settings(storage__root=sys.argv[1]))
lease = claim(storage, sys.argv[2], "run-killed", 2.0)
with Heartbeat(storage, lease, 2.0, 0.4):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_killed_holders_lease_is_taken_over_within_its_expiry(tmp_path: Path) -> None:
    """A real process holding a lease (heartbeat running) is SIGKILLed: the lease is
    free again within index_lease_s, while it lived no one could take it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path), SEG],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        storage = storage_at(tmp_path)
        alive_until = time.monotonic() + 4.0  # twice the expiry: renewed all along
        while time.monotonic() < alive_until:
            assert claim(storage, SEG, "run-b", 60) is None
            time.sleep(0.2)
        os.kill(holder.pid, signal.SIGKILL)
        killed = time.monotonic()
        holder.wait(timeout=10)
        while claim(storage, SEG, "run-b", 60) is None:
            assert time.monotonic() - killed < 2.0 + 2.0, "the dead holder's lease did not expire"
            time.sleep(0.1)
    finally:
        holder.kill()
        holder.wait(timeout=10)
