"""Killing a Dask worker process mid-run: the run completes, each segment indexed once."""

from __future__ import annotations

import contextvars
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from citywatch.governance.auth import write_demo_users
from citywatch.storage import Storage
from tests.conftest import settings_for
from tests.test_concurrent_index import _subset

pytestmark = pytest.mark.slow


def _executing(dask_worker) -> int:  # noqa: ANN001 - distributed.Worker
    return len(dask_worker.state.executing)


def _leased(root: Path) -> set[str]:
    """Segments whose lease is held (leases/<camera>/<stamp>/<generation>.json)."""
    return {str(p.parent.relative_to(root / "leases")) for p in (root / "leases").rglob("*.json")}


def _done(settings) -> set[str]:  # noqa: ANN001
    storage = Storage(settings)
    if "segments" not in storage.db.list_tables().tables:
        return set()
    rows = storage.db.open_table("segments").to_arrow().to_pylist()
    return {r["id"] for r in rows if r["state"] == "done"}


def test_run_survives_a_killed_worker(
    prefect_api: str,
    sample_dir: Path,
    indexed,  # noqa: ANN001
    tmp_path: Path,
) -> None:
    from distributed import Client, LocalCluster

    from citywatch.flows.index_footage import run_index

    root = tmp_path / "data"
    _subset(sample_dir, root, cameras=2)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        settings = settings_for(root, tmp_path, dask__address=cluster.scheduler_address)
        write_demo_users(Storage(settings))
        results = []
        runner = threading.Thread(
            target=contextvars.copy_context().run, args=(lambda: results.append(run_index(settings)),)
        )
        runner.start()
        deadline = time.monotonic() + 300
        busy, interrupted = None, set()
        while time.monotonic() < deadline and not (busy and interrupted):
            time.sleep(0.2)  # until a worker is executing a segment it holds the lease of
            executing = client.run(_executing)
            busy = next((addr for addr, n in executing.items() if n), None)
            interrupted = _leased(root) - _done(settings)
        assert busy and interrupted, "no segment was being indexed within 300 s"
        pid = client.run(os.getpid, workers=[busy])[busy]
        os.kill(pid, signal.SIGKILL)
        runner.join(timeout=900)
    assert results, "the index run did not finish"
    assert interrupted <= _done(settings)  # what was being indexed when the worker died got done
    summary = results[0]
    segments = sorted(p.relative_to(root / "footage") for p in (root / "footage").rglob("*.mp4"))
    assert summary.indexed == len(segments) and not summary.failed

    def faces_by_segment(storage: Storage) -> dict[str, int]:
        counts: dict[str, int] = {}
        for seg in storage.db.open_table("faces").to_arrow().column("segment_id").to_pylist():
            counts[seg] = counts.get(seg, 0) + 1
        return counts

    got = faces_by_segment(Storage(settings))
    clean = {
        k: v
        for k, v in faces_by_segment(Storage(indexed.settings)).items()
        if k.split("/")[0] in {s.parts[0] for s in segments}
    }
    assert got == clean  # the same rows as a clean run: nothing lost, nothing twice
