"""Exactly-once indexing: two index runs at once over the same new footage give the rows of one."""

from __future__ import annotations

import contextvars
import shutil
import threading
from pathlib import Path

import lancedb
import pytest

from citywatch.governance.auth import write_demo_users
from citywatch.shards import read_index
from citywatch.storage import Storage
from tests.conftest import settings_for

pytestmark = pytest.mark.slow


def _subset(sample_dir: Path, root: Path, cameras: int = 2) -> None:
    """The sample's registry plus the footage of its first ``cameras`` cameras."""
    root.mkdir(parents=True)
    shutil.copy(sample_dir / "cameras.yaml", root / "cameras.yaml")
    for cam in sorted((sample_dir / "footage").iterdir())[:cameras]:
        shutil.copytree(cam, root / "footage" / cam.name)


def _column(db: lancedb.DBConnection, base: str, name: str) -> list[str]:
    """Column ``name`` of the ``base`` table, or of all its day shards."""
    found = read_index(db, base, columns=[name])
    assert found is not None, f"no {base} table"
    return found.column(name).to_pylist()


@pytest.mark.parametrize("sharded", [False, True], ids=["one-table", "day-shards-batched"])
def test_two_concurrent_runs_index_each_segment_once(
    prefect_api: str, sample_dir: Path, tmp_path: Path, sharded: bool
) -> None:
    from citywatch.flows.index_footage import index_footage

    root = tmp_path / "data"
    _subset(sample_dir, root)
    batch = 2 if sharded else 1  # segments per task, committed together
    settings = settings_for(root, tmp_path, storage__shard_by_day=sharded, index__segments_per_task=batch)
    write_demo_users(Storage(settings))
    results = []

    def run() -> None:
        results.append(index_footage(settings=settings, in_process=True))

    # threads do not inherit context variables: carry the test's Prefect settings along
    threads = [threading.Thread(target=contextvars.copy_context().run, args=(run,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    segments = len(list((root / "footage").rglob("*.mp4")))
    assert len(results) == 2
    # every segment was indexed by exactly one of the runs (the other skipped it)
    assert sum(r.indexed for r in results) == segments
    assert all(not r.failed for r in results)

    db = Storage(settings).db
    ids = _column(db, "faces", "id")
    assert len(ids) == len(set(ids)), "duplicate face rows"
    seg_rows = db.open_table("segments").to_arrow().to_pylist()
    assert len(seg_rows) == segments and all(r["state"] == "done" for r in seg_rows)
    assert sum(r["faces"] for r in seg_rows) == len(ids)
    plates = _column(db, "plates", "id")
    assert len(plates) == len(set(plates))
    assert not list((root / "leases").rglob("*.json")), "leases are released"
