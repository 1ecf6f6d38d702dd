"""Index runs in the audit log: a start before any work, an end after; a crash leaves no end.

The crashing runs are real index flow runs (real Prefect server) in a child process whose
segment task is replaced: one kills the process (``os._exit``) when the first segment
starts, one raises. ``citywatch audit runs`` (admin) then shows what an admin would see.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from citywatch.governance.audit_log import AuditLog
from citywatch.governance.auth import write_demo_users
from citywatch.governance.run_records import INDEX_END, INDEX_START, index_runs
from citywatch.storage import Storage
from tests.conftest import settings_for

REPO = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent(
    """
    import os, sys
    from prefect import task
    from citywatch.flows import index_footage as flow_module
    from citywatch.settings import Settings

    mode = sys.argv[1]

    @task(name="index-segment")
    def replaced(refs, camera, settings, run_token, label):
        if mode == "crash":
            os._exit(9)  # the machine is lost half-way: nothing after this runs
        raise RuntimeError("the segment task broke")

    flow_module.index_segments_task = replaced
    flow_module.index_footage(settings=Settings(), in_process=True)
    """
)


def _root_with_footage(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for stamp in ("20260101T000000Z", "20260101T000100Z"):
        path = root / "footage" / "cam-a" / f"{stamp}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not really a video")
    return root


def _env(root: Path, tmp_path: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CITYWATCH_")}
    environ.update(
        PYTHONPATH=str(REPO),
        CITYWATCH_STORAGE__ROOT=str(root),
        CITYWATCH_STORAGE__STATE_DIR=str(tmp_path / "state"),
        CITYWATCH_USER="demo-admin",
    )
    return environ


def _audit_runs(root: Path, tmp_path: Path, *extra: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "citywatch.cli.main", "audit", "runs", "--json", *extra],
        capture_output=True,
        text=True,
        env=_env(root, tmp_path),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    runs: list[dict[str, object]] = json.loads(done.stdout)
    return runs


@pytest.mark.parametrize("mode", ["crash", "raise"])
def test_a_run_that_dies_half_way_leaves_a_start_without_an_end(
    prefect_api: str, tmp_path: Path, mode: str
) -> None:
    root = _root_with_footage(tmp_path)
    write_demo_users(Storage(settings_for(root, tmp_path)))
    child = subprocess.run(
        [sys.executable, "-c", CHILD, mode],
        capture_output=True,
        text=True,
        env=_env(root, tmp_path),
        timeout=600,
    )
    assert child.returncode != 0, child.stdout + child.stderr

    runs = _audit_runs(root, tmp_path)
    assert len(runs) == 1
    run = runs[0]
    assert run["user"] == "demo-admin" and run["footage"] == str(root / "footage")
    if mode == "crash":
        assert run["end_seq"] is None and run["state"].startswith("no end record")
        assert _audit_runs(root, tmp_path, "--unfinished") == runs
    else:  # the run raised: its end record says so
        assert run["state"] == "failed" and "the segment task broke" in run["detail"]
        assert _audit_runs(root, tmp_path, "--unfinished") == []

    rows = AuditLog(Storage(settings_for(root, tmp_path))).rows()
    start = next(r for r in rows if r.action == INDEX_START)
    assert start.result_count == 2 and start.detail == "2 segments to index"
    assert start.seq == run["start_seq"]


@pytest.mark.slow
def test_a_finished_run_has_a_start_then_an_end_with_its_counts(indexed) -> None:  # noqa: ANN001
    log = AuditLog(Storage(indexed.settings))
    runs = index_runs(log)
    assert len(runs) == 1 and runs[0].end is not None and runs[0].state == "finished"
    end = runs[0].end
    summary = indexed.summary
    assert end.result_count == summary.indexed and not summary.failed
    params = json.loads(end.params)
    assert (params["faces"], params["plates"], params["failed"]) == (summary.faces, summary.plates, 0)
    actions = [r.action for r in log.rows()]
    assert actions.index(INDEX_START) < actions.index(INDEX_END)
    # the start came before any segment was written: no segment row is older than it
    segments = Storage(indexed.settings).db.open_table("segments").to_arrow()
    first_written = min(segments.column("updated_at").to_pylist())
    assert runs[0].started <= first_written
