"""Prefect on PostgreSQL: a real PostgreSQL (Debian's, pg_ctl on a temp dir and port), a
Prefect server on it, the index and sweep flows run against it; everything stopped after."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from citywatch.stack.postgres import DB_NAME, DB_USER, LocalPostgres, pg_bin
from citywatch.stack.prefect_server import free_port, start_prefect_server
from tests.conftest import settings_for


def _one_segment(sample_dir: Path, root: Path) -> str:
    from citywatch.sample.dataset import load_ground_truth

    key = load_ground_truth(sample_dir / "sample" / "ground_truth.json").segments[0].key
    for name in ("cameras.yaml", key):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(sample_dir / name, root / name)
    return key


def _flow_runs_in_postgres(pg: LocalPostgres) -> dict[str, str]:
    """flow name -> state of its latest run, read from PostgreSQL itself."""
    query = "SELECT f.name, r.state_type FROM flow_run r JOIN flow f ON f.id = r.flow_id ORDER BY r.created"
    psql = [pg_bin("psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", DB_USER, "-d", DB_NAME]
    env = {**os.environ, "PGPASSWORD": pg.password()}
    done = subprocess.run(
        [*psql, "-tAF", "|", "-c", query], capture_output=True, text=True, env=env, check=True
    )
    return dict(line.split("|", 1) for line in done.stdout.split())


@pytest.mark.slow
def test_index_and_sweep_flows_run_on_prefect_with_postgresql(sample_dir: Path, tmp_path: Path) -> None:
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from citywatch.flows.index_footage import index_footage
    from citywatch.flows.watchlist_sweep import watchlist_sweep
    from citywatch.governance.auth import write_demo_users
    from citywatch.storage import Storage

    # outside pytest's root-only temp folder: under root, PostgreSQL runs as `postgres`
    folder = Path(tempfile.mkdtemp(prefix="citywatch-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    pg = LocalPostgres(folder / "cluster", free_port())
    pg.init()
    pg.start()
    pid = 0
    saved_url = os.environ.get("PREFECT_API_URL")
    try:
        api, pid = start_prefect_server(tmp_path / "prefect", wait_s=300, database_url=pg.url())
        root = tmp_path / "data"
        key = _one_segment(sample_dir, root)
        settings = settings_for(root, tmp_path)
        write_demo_users(Storage(settings))
        os.environ["PREFECT_API_URL"] = api
        with temporary_settings(updates={PREFECT_API_URL: api}):
            indexed = index_footage(settings=settings, in_process=True, return_state=True)
            assert indexed.is_completed(), indexed.message
            summary = indexed.result()
            assert (summary.indexed, summary.failed) == (1, [])
            swept = watchlist_sweep(settings=settings, return_state=True)
            assert swept.is_completed(), swept.message
            assert swept.result().sweep.faces_read + swept.result().sweep.plates_read > 0
            for worker in (APILogWorker, EventsWorker):
                worker.drain_all(timeout=10)
        runs = _flow_runs_in_postgres(pg)
        assert runs["index-footage"] == "COMPLETED" and runs["watchlist-sweep"] == "COMPLETED"
        assert not list((tmp_path / "prefect").glob("*.db"))  # no SQLite database was made
        segments = Storage(settings).db.open_table("segments").to_arrow().to_pylist()
        assert [s["state"] for s in segments] == ["done"] and key.endswith(
            segments[0]["id"].split("/")[1] + ".mp4"
        )
    finally:
        if saved_url is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = saved_url
        if pid:
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        pg.stop()
        stopped = not pg.running()
        shutil.rmtree(folder, ignore_errors=True)
    assert stopped
