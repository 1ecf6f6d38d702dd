"""The S3 service goes down during an index run and comes back: the run completes, the
failed attempts are retried, nothing is lost and nothing is written twice.

The test runs its own moto server (the session one must stay up) and indexes a few of
the sample's segments from a bucket with the real flow on 2 Dask worker processes. As
soon as the first segment's lease appears (a task has started), the server is stopped:
connections are refused. The clients retry on their own first (botocore, s3fs and
LanceDB's object store ride out a blip of a few seconds), so the server stays down
until Prefect records a failed attempt of an ``index-segment`` task (about 10 s), then
comes back on the same port with the same objects, before that task's next attempt
(2 s later). The rows must be those of a clean run (the shared ``indexed`` fixture).
"""

from __future__ import annotations

import contextvars
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from citywatch.governance.auth import write_demo_users
from citywatch.settings import Settings
from citywatch.storage import Storage
from tests.s3 import MotoServer, upload

pytestmark = pytest.mark.slow
T = TypeVar("T")

# faces and plates (queens-rd), and a mobile camera whose GPS sidecar is read from s3 too
KEYS = (
    "footage/cam-queens-rd/20261120T080000Z.mp4",
    "footage/cam-queens-rd/20261120T080020Z.mp4",
    "footage/car-patrol-kt3/20261120T080012Z.mp4",
    "footage/car-patrol-kt3/20261120T080012Z.gps.csv",
)
SEGMENT_IDS = {k.removeprefix("footage/").removesuffix(".mp4") for k in KEYS if k.endswith(".mp4")}
OUTAGE_MAX_S = 60.0  # the longest wait for a failed attempt before giving up


def wait_for(what: str, probe: Callable[[], T], timeout_s: float, every_s: float = 0.2) -> T:
    deadline = time.monotonic() + timeout_s
    while not (found := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)
    return found


def has_lease(storage: Storage) -> bool:
    fs, path = storage.fs(storage.url("leases"))
    return bool(fs.find(path))


def segment_task_runs(tag: str) -> list:  # prefect TaskRun
    """The run's ``index-segment`` task runs (named ``index <segment id>``)."""
    from prefect import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterTags

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(task_run_filter=TaskRunFilter(tags=TaskRunFilterTags(all_=[tag])))
    return [r for r in runs if r.name.startswith("index ")]  # not the subflow's own run


def failed_attempts(tag: str) -> list:  # prefect TaskRun
    return [r for r in segment_task_runs(tag) if r.state_name == "AwaitingRetry" or r.run_count > 1]


def attempt_errors(run) -> list[str]:  # noqa: ANN001 - prefect TaskRun
    """Why the run's failed attempts failed (Prefect's "Retry n/m will start" log lines)."""
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterTaskRunId

    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(task_run_id=LogFilterTaskRunId(any_=[run.id])))
    return [entry.message for entry in logs if " - Retry " in entry.message]


def rows_by_segment(settings: Settings, table: str) -> dict[str, list[str]]:
    """The ids of ``table``'s rows of the test's segments, by segment."""
    rows = Storage(settings).db.open_table(table).to_arrow().select(["id", "segment_id"])
    out: dict[str, list[str]] = {}
    for row in rows.to_pylist():
        if row["segment_id"] in SEGMENT_IDS:
            out.setdefault(row["segment_id"], []).append(row["id"])
    return {seg: sorted(ids) for seg, ids in out.items()}


def test_index_run_rides_out_an_s3_outage(
    prefect_api: str,
    sample_dir: Path,
    indexed,  # noqa: ANN001
    tmp_path: Path,
    record_property,
) -> None:  # noqa: ANN001
    from prefect import tags

    from citywatch.flows.index_footage import run_index

    moto = MotoServer()
    s3 = moto.start()
    try:
        settings = s3.settings(
            f"{s3.bucket()}/city",
            storage__state_dir=str(tmp_path / "state"),
            dask__workers=2,
            user="demo-admin",
        )
        storage = Storage(settings)
        upload(settings, sample_dir, ["cameras.yaml", *KEYS])
        write_demo_users(storage)
        tag = f"s3-outage-{uuid.uuid4().hex[:8]}"
        results: list[object] = []

        def run() -> None:
            with tags(tag):
                results.append(run_index(settings))

        # threads do not inherit context variables: carry the test's Prefect settings along
        runner = threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True)
        runner.start()
        wait_for("the first segment's lease", lambda: has_lease(storage), 300)
        moto.stop()
        down = time.monotonic()
        wait_for(
            "a failed attempt of a segment task", lambda: failed_attempts(tag), OUTAGE_MAX_S, every_s=0.25
        )
        moto.start()  # same port, same buckets and objects
        outage_s = time.monotonic() - down
        runner.join(timeout=600)
        assert results, "the index run did not finish"
        record_property("outage_s", round(outage_s, 1))  # shown in --junitxml reports
        check_rows_as_clean_run(settings, indexed.settings, results[0])
        record_property("retried", check_retried(tag))
    finally:
        moto.stop()


def check_rows_as_clean_run(settings: Settings, clean: Settings, summary) -> None:  # noqa: ANN001
    """Every segment done, the rows of a clean run, once each; no stray files, no leases."""
    storage = Storage(settings)
    assert (summary.indexed, summary.failed) == (len(SEGMENT_IDS), [])
    segments = storage.db.open_table("segments").to_arrow().to_pylist()
    assert sorted((s["id"], s["state"]) for s in segments) == sorted(
        (i, "done") for i in SEGMENT_IDS
    )  # one row per segment, all done
    thumbs: set[str] = set()
    for table in ("faces", "plates"):
        rows = storage.db.open_table(table).to_arrow().select(["id", "thumb_uri"]).to_pylist()
        twice = [i for i, n in Counter(r["id"] for r in rows).items() if n > 1]
        assert not twice, f"{table} rows written twice: {twice}"
        expected = rows_by_segment(clean, table)
        assert expected, f"the clean run has no {table} in these segments: nothing to compare"
        assert rows_by_segment(settings, table) == expected
        thumbs |= {r["thumb_uri"] for r in rows}
    faces = rows_by_segment(settings, "faces")
    assert {s["id"]: s["faces"] for s in segments} == {i: len(faces.get(i, ())) for i in SEGMENT_IDS}
    fs, path = storage.fs(storage.url("thumbs"))
    assert {f"s3://{p}" for p in fs.find(path)} == thumbs  # each row's thumbnail, nothing else
    assert not has_lease(storage), "leases are released"


def check_retried(tag: str) -> dict[str, list[str]]:
    """The outage really hit the run: some segment task failed an attempt and was retried."""
    runs = segment_task_runs(tag)
    assert sorted((r.name, r.state_name) for r in runs) == sorted(
        (f"index {i}", "Completed") for i in SEGMENT_IDS
    )  # one task run per segment
    retried = {r.name: attempt_errors(r) for r in runs if r.run_count > 1}
    assert retried, "no segment task failed during the outage: the test proved nothing"
    return retried
