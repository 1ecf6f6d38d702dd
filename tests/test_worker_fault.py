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
        settings = settings_for(root, tmp_path, dask_address=cluster.scheduler_address)
        write_demo_users(Storage(settings))
        results = []
        runner = threading.Thread(
            target=contextvars.copy_context().run, args=(lambda: results.append(run_index(settings)),)
        )
        runner.start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not any(client.processing().values()):
            time.sleep(0.2)
        time.sleep(3)  # let the first tasks get into decoding/detection
        busy = next(addr for addr, tasks in client.processing().items() if tasks)
        pid = client.run(os.getpid, workers=[busy])[busy]
        os.kill(pid, signal.SIGKILL)
        runner.join(timeout=900)
    assert results, "the index run did not finish"
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
