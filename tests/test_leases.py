"""Segment leases: one holder at a time, expiry, same-run re-claim, concurrency."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from citywatch.settings import Settings
from citywatch.storage import Storage
from tasks.leases import claim, release

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
