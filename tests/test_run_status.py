"""The index artifact of an incremental run (issue 19): its lag table without a full listing.

Real LanceDB and real folders; no Prefect (``run_status`` and the markdown are plain).
"""

from __future__ import annotations

import datetime as dt

import pytest

from citywatch.storage import Storage
from citywatch.tasks import status as status_module
from citywatch.tasks.index.report_artifact import index_run_markdown
from citywatch.tasks.status import pipeline_status, run_status
from tests.test_discovery import BASE, Big, pending_ids, plan, stamp, write_rows
from tests.test_discovery import small as small  # noqa: F401  (the fixture)


class _Run:
    footage = "footage"
    found = 1
    already_done = 0
    skipped_failed = 0
    indexed = 1
    skipped_leased = 0
    failed: list[tuple[str, str]] = []
    misnamed: list[str] = []
    conflicts: list[str] = []
    faces = 0
    plates = 0
    footage_s = 60.0
    wall_s = 1.0


def test_an_incremental_run_shows_lag_without_a_full_listing(
    small: Big, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage: Storage = small.storage
    # cam-a gets a new segment that this run indexes; cam-b one that waits (held elsewhere)
    (small.footage / "cam-a" / f"{stamp(10)}.mp4").write_bytes(b"v")
    (small.footage / "cam-b" / f"{stamp(20)}.mp4").write_bytes(b"v")
    tick = plan(storage)
    assert not tick.full_listing
    assert sorted(pending_ids(tick)) == [f"cam-a/{stamp(10)}", f"cam-b/{stamp(20)}"]
    write_rows(storage, [f"cam-a/{stamp(10)}"], size=1)  # what the run indexed
    newest: dict[str, dt.datetime] = {}
    for ref in tick.discovery.segments:
        newest[ref.camera_id] = max(ref.start, newest.get(ref.camera_id, ref.start))

    def no_full_listing(*_: object, **__: object) -> None:
        raise AssertionError("the incremental artifact listed all footage")

    monkeypatch.setattr(Storage, "list_all", no_full_listing)
    monkeypatch.setattr(Storage, "list_files", no_full_listing)
    monkeypatch.setattr(status_module, "plan_index", no_full_listing)
    monkeypatch.setattr(status_module, "read_segments", no_full_listing)
    status = run_status(storage, storage.url("footage"), newest, pending_ids(tick))
    lag = {c.camera_id: c for c in status.cameras}
    assert lag["cam-a"].lag_s == 0 and lag["cam-a"].backlog == 0
    assert lag["cam-a"].newest_indexed == BASE + dt.timedelta(minutes=10)
    assert lag["cam-b"].newest_footage == BASE + dt.timedelta(minutes=20)
    assert lag["cam-b"].newest_indexed == BASE + dt.timedelta(minutes=2)
    assert lag["cam-b"].lag_s == 18 * 60 and lag["cam-b"].backlog == 1
    assert (status.segments_done, status.segments_failed, status.backlog) == (7, 0, 1)
    assert status.lag_from_marks
    markdown = index_run_markdown(_Run(), status)
    assert "Incremental run" in markdown and "| cam-b |" in markdown

    # a camera with nothing listed this run: its newest footage is its mark
    quiet = run_status(storage, storage.url("footage"), {}, ())
    assert {c.camera_id: c.lag_s for c in quiet.cameras}["cam-a"] == 0
    monkeypatch.undo()

    # the full snapshot (citywatch status, /metrics) agrees on the lag
    full = {c.camera_id: c for c in pipeline_status(storage, with_storage=False).cameras}
    assert full["cam-b"].lag_s == lag["cam-b"].lag_s and full["cam-b"].backlog == 1
    assert full["cam-a"].lag_s == lag["cam-a"].lag_s
    assert not pipeline_status(storage, with_storage=False).lag_from_marks


def test_the_artifact_says_nothing_of_marks_after_a_full_listing(small: Big) -> None:
    status = pipeline_status(small.storage, with_storage=False)
    assert "Incremental run" not in index_run_markdown(_Run(), status)
