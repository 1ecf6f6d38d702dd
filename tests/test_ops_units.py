"""Plain pieces of the ops work, without Prefect: backfill selection, markdown cells,
the Prometheus text format, the automations built from settings."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from citywatch.errors import BadInputError
from citywatch.footage import SegmentRef
from citywatch.settings import Settings
from citywatch.tasks.index.selection import segment_selection
from citywatch.tasks.markdown import md_cell, md_table
from citywatch.tasks.status import CameraLag, PipelineStatus, StorageUse
from citywatch.tasks.status_metrics import prometheus_text

T0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)


def _ref(camera: str, minutes: int) -> SegmentRef:
    start = T0 + dt.timedelta(minutes=minutes)
    return SegmentRef(f"{camera}/{start:%Y%m%dT%H%M%SZ}", camera, start, f"/f/{camera}.mp4", 10)


@pytest.mark.parametrize(
    ("cameras", "since", "until", "expected"),
    [
        (None, None, None, {("cam-a", 0), ("cam-a", 10), ("cam-b", 0), ("cam-b", 10)}),
        (["cam-a"], None, None, {("cam-a", 0), ("cam-a", 10)}),
        (None, T0 + dt.timedelta(minutes=5), None, {("cam-a", 10), ("cam-b", 10)}),
        (["cam-b"], T0, T0 + dt.timedelta(minutes=10), {("cam-b", 0)}),  # until is exclusive
    ],
    ids=["everything", "one-camera", "since", "camera-and-range"],
)
def test_selection_matches_cameras_and_start_range(
    cameras: list[str] | None, since: dt.datetime | None, until: dt.datetime | None, expected: set
) -> None:
    selection = segment_selection(cameras, since, until)
    refs = [_ref(c, m) for c in ("cam-a", "cam-b") for m in (0, 10)]
    assert {
        (r.camera_id, round((r.start - T0).total_seconds() / 60)) for r in refs if selection.matches(r)
    } == (expected)


@pytest.mark.parametrize(
    ("cameras", "since", "until", "words"),
    [
        (["../etc"], None, None, "cameras: '../etc' is not a camera id"),
        (["cam-a\n"], None, None, "is not a camera id"),
        (None, dt.datetime(2026, 11, 20), None, "since 2026-11-20T00:00:00 needs a timezone"),
        (None, T0, T0, "must be before until"),
    ],
    ids=["path", "newline", "naive", "empty-range"],
)
def test_bad_selection_names_the_parameter(
    cameras: list[str] | None, since: dt.datetime | None, until: dt.datetime | None, words: str
) -> None:
    with pytest.raises(BadInputError, match=words.replace("(", r"\(").replace(".", r"\.")):
        segment_selection(cameras, since, until)


def test_markdown_cells_stay_text() -> None:
    assert md_cell("a|b <script>x</script>\n`c`") == "a\\|b &lt;script&gt;x&lt;/script&gt; 'c'"
    assert md_table(["k", "v"], [("x", 1)]).splitlines() == ["| k | v |", "|---|---|", "| x | 1 |"]


def test_prometheus_text_format() -> None:
    status = PipelineStatus(
        generated_at=T0,
        cameras=[
            CameraLag('cam"1', T0, T0 - dt.timedelta(seconds=90), 90.0, 2, 1),
            CameraLag("cam-2", T0, None, None, 3, 0),
        ],
        segments_found=10,
        segments_done=4,
        segments_failed=1,
        backlog=5,
        failures=[],
        last_sweep=None,
        sweep_age_s=None,
        sweep_rows_seen=0,
        deliveries_pending=2,
        deliveries_failed=0,
        storage=[StorageUse("db", 1234, 3)],
    )
    text = prometheus_text(status)
    lines = text.splitlines()
    assert "# TYPE citywatch_camera_lag_seconds gauge" in lines
    assert 'citywatch_camera_lag_seconds{camera="cam\\"1"} 90' in lines
    assert not any(
        line.startswith('citywatch_camera_lag_seconds{camera="cam-2"}') for line in lines
    )  # unknown
    assert 'citywatch_segments{state="done"} 4' in lines and "citywatch_backlog_segments 5" in lines
    assert "citywatch_max_lag_seconds 90" in lines
    assert not any(line.startswith("citywatch_sweep_age_seconds ") for line in lines)  # never swept
    assert 'citywatch_storage_bytes{area="db"} 1234' in lines and text.endswith("\n")
    for line in lines:  # every sample line is `name{labels} number`
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


def test_automations_follow_the_settings() -> None:
    from citywatch.stack.automations import INDEX_FAILED, LAG_EXCEEDED, SWEEP_STOPPED, automations

    settings = Settings(ops__sweep_stall_s=120, ops__lag_alert_s=600)
    block = uuid.uuid4()
    built = {a.name: a for a in automations(settings, block)}
    assert set(built) == {INDEX_FAILED, LAG_EXCEEDED, SWEEP_STOPPED}
    stopped = built[SWEEP_STOPPED].trigger
    assert stopped.posture == "Proactive" and stopped.within == dt.timedelta(seconds=120)  # type: ignore[union-attr]
    assert "600" in built[LAG_EXCEEDED].actions[0].body  # type: ignore[union-attr]
    assert all(a.actions[0].type == "send-notification" for a in built.values())
    assert all(a.actions[0].type == "do-nothing" for a in automations(settings, None))


def test_the_ops_webhook_must_be_http() -> None:
    from pydantic import SecretStr

    from citywatch.stack.automations import notify_block

    with pytest.raises(BadInputError, match="ops_notify_url"):
        notify_block("http://127.0.0.1:9/api", SecretStr("file:///etc/passwd"))
