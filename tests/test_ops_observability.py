"""Observability for data engineers: run artifacts, `citywatch status`, /metrics, automations.

One copy of the indexed sample gets a corrupt segment an hour after its camera's newest
one; an index run (with the automations of `citywatch up` listening on a loopback
receiver) must publish an artifact that counts it failed, name the reason and the
camera's lag, and emit a lag event; a sweep with one approved plate entry publishes its
own artifact; `citywatch status --json` and /metrics agree with the tables; a failed
index run makes the failure automation notify.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from uuid import UUID

import pytest
from pydantic import SecretStr

from citywatch.footage import format_stamp, parse_stamp
from citywatch.settings import Settings
from citywatch.stack.prefect_server import free_port
from citywatch.storage import Storage
from citywatch.tables import has_table
from tests.conftest import Indexed, settings_for


class Receiver:
    """A loopback HTTP server that keeps every POST body (the ops webhook)."""

    def __init__(self) -> None:
        bodies: list[dict[str, object]] = []
        self.bodies = bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                data = self.rfile.read(int(self.headers.get("content-length") or 0))
                bodies.append(json.loads(data or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, words: str, timeout_s: float = 150) -> dict[str, object]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for body in self.bodies:
                if words in str(body.get("text", "")):
                    return body
            time.sleep(0.5)
        raise AssertionError(f"no notification with {words!r} within {timeout_s} s: {self.bodies}")


@dataclass(frozen=True)
class Ops:
    root: Path
    settings: Settings
    receiver: Receiver
    camera: str
    bad_segment: str  # segment id of the corrupt file
    lag_s: float
    index_run: UUID
    index_summary: object


def _copy_indexed(indexed: Indexed, root: Path) -> Settings:
    shutil.copytree(indexed.root, root)
    keys = Path(indexed.settings.storage.state_dir) / "keys"
    if keys.is_dir():  # the key that signed the copied audit records
        shutil.copytree(keys, root.parent / "state" / "keys")
    storage = Storage(settings_for(root, root.parent))
    for table in ("sweep_state", "alerts", "deliveries"):  # sweep this copy from scratch
        if has_table(storage.db, table):
            storage.db.drop_table(table)
    return settings_for(root, root.parent)


@pytest.fixture(scope="module")
def ops(indexed: Indexed, prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ops]:
    from citywatch.flows.index_footage import index_footage
    from citywatch.stack.automations import ensure_automations
    from citywatch.stack.deploy import prefect_client

    root = tmp_path_factory.mktemp("ops") / "data"
    receiver = Receiver()
    settings = _copy_indexed(indexed, root).updated(
        ops__notify_url=SecretStr(receiver.url), ops__lag_alert_s=60.0, ops__sweep_stall_s=3600.0
    )
    camera = sorted(p.name for p in (root / "footage").iterdir() if p.is_dir())[0]
    newest = max(parse_stamp(p.name.split(".")[0]) for p in (root / "footage" / camera).glob("*.mp4"))
    bad_start = newest + dt.timedelta(hours=1)
    (root / "footage" / camera / f"{format_stamp(bad_start)}.mp4").write_bytes(b"this is not a video")
    names = ensure_automations(prefect_api, settings)
    time.sleep(2)  # the server's trigger service loads new automations within a moment
    state = index_footage(settings=settings, return_state=True)
    assert state.is_completed(), state.message
    try:
        yield Ops(
            root,
            settings,
            receiver,
            camera,
            f"{camera}/{format_stamp(bad_start)}",
            3600.0,
            state.state_details.flow_run_id,
            state.result(),
        )
    finally:
        with prefect_client(prefect_api) as client:  # other modules' runs must not notify
            for name in names:
                for automation in client.read_automations_by_name(name):
                    client.delete_automation(automation.id)
        receiver.server.shutdown()


def _artifacts(api: str, flow_run: UUID) -> dict[str, object]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from citywatch.stack.deploy import prefect_client

    with prefect_client(api) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run]))
        )
    return {a.key: a.data for a in found if a.key}


def _status_json(ops: Ops, capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    from citywatch.cli.main import main

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CITYWATCH_STORAGE__STATE_DIR", ops.settings.storage.state_dir)
        capsys.readouterr()
        assert main(["--root", str(ops.root), "--user", "demo-admin", "status", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_index_run_artifact_counts_the_run_and_names_the_failure(ops: Ops, prefect_api: str) -> None:
    from citywatch.tasks.index.report_artifact import LAG_KEY, RUN_KEY

    summary = ops.index_summary
    artifacts = _artifacts(prefect_api, ops.index_run)
    markdown = str(artifacts[RUN_KEY])
    done = len(list((ops.root / "footage").rglob("*.mp4"))) - 1
    assert summary.already_done == done and summary.indexed == 0 and len(summary.failed) == 1  # type: ignore[attr-defined]
    assert "| indexed | 0 |" in markdown and "| failed | 1 |" in markdown
    assert f"| already done | {done} |" in markdown
    assert "| faces | 0 |" in markdown and "| plates | 0 |" in markdown
    assert "## Failures" in markdown and ops.bad_segment in markdown
    reason = summary.failed[0][1]  # type: ignore[attr-defined]
    assert reason and " ".join(reason.split())[:40] in markdown
    lag_rows = json.loads(str(artifacts[LAG_KEY]))
    by_camera = {row["camera"]: row for row in lag_rows}
    assert by_camera[ops.camera]["lag_s"] == ops.lag_s and by_camera[ops.camera]["failed"] == 1
    assert all(row["lag_s"] == 0 for cam, row in by_camera.items() if cam != ops.camera)


def test_lag_over_the_setting_notifies(ops: Ops) -> None:
    body = ops.receiver.wait_for("indexing lags")
    assert f"camera {ops.camera}" in str(body["text"]) and "3600" in str(body["text"])


def test_status_json_agrees_with_the_tables(ops: Ops, capsys: pytest.CaptureFixture[str]) -> None:
    storage = Storage(ops.settings)
    segments = storage.db.open_table("segments").to_arrow().to_pylist()
    status = _status_json(ops, capsys)
    assert status["segments"] == {
        "found": len(list((ops.root / "footage").rglob("*.mp4"))),
        "done": sum(r["state"] == "done" for r in segments),
        "failed": sum(r["state"] == "failed" for r in segments),
        "backlog": 0,
    }
    assert [f["segment_id"] for f in status["failures"]] == [
        r["id"] for r in segments if r["state"] == "failed"
    ]
    assert status["failures"][0]["reason"] and str(ops.root) not in status["failures"][0]["reason"]
    cameras = {c["camera_id"]: c for c in status["cameras"]}
    assert set(cameras) == {r["camera_id"] for r in segments}
    assert cameras[ops.camera]["lag_s"] == ops.lag_s and status["max_lag_s"] == ops.lag_s
    newest_done = max(r["start"] for r in segments if r["camera_id"] == ops.camera and r["state"] == "done")
    assert cameras[ops.camera]["newest_indexed"] == newest_done.isoformat().replace("+00:00", "Z")
    on_disk = sum(p.stat().st_size for p in ops.root.rglob("*") if p.is_file() and not p.is_symlink())
    assert status["storage"]["bytes"] == on_disk


def test_sweep_artifact_and_status_after_a_sweep(
    ops: Ops, prefect_api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from collections import Counter

    from citywatch.flows.watchlist_sweep import watchlist_sweep
    from citywatch.governance.watchlist import EntryRequest, add_plate, approve
    from citywatch.schemas import utcnow
    from citywatch.tasks.sweep.artifact import SWEEP_KEY

    storage = Storage(ops.settings)
    plates = storage.db.open_table("plates").to_arrow().to_pylist()
    faces = storage.db.open_table("faces").count_rows()
    text, _ = Counter(p["text"] for p in plates).most_common(1)[0]
    request = EntryRequest(
        label="stolen car",
        reason="suspect",
        case_id="OPS-1",
        justification="reported stolen, automated ops test",
        requested_by="demo-investigator",
        expires_at=utcnow() + dt.timedelta(days=2),
        threshold=0.0,
    )
    entry = add_plate(storage, text, request, default_max_distance=0.0, max_days=30)
    approve(storage, entry.id, "demo-supervisor")
    state = watchlist_sweep(settings=ops.settings, return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    alerts = storage.db.open_table("alerts").to_arrow().to_pylist()
    deliveries = storage.db.open_table("deliveries").to_arrow().to_pylist()
    assert alerts and summary.sweep.alerts_new == len(alerts)
    markdown = str(_artifacts(prefect_api, state.state_details.flow_run_id)[SWEEP_KEY])
    assert f"| face rows read | {faces} |" in markdown
    assert f"| plate rows read | {len(plates)} |" in markdown
    assert f"| new alerts | {len(alerts)} |" in markdown
    sent = sum(d["state"] == "delivered" for d in deliveries)
    assert sent == summary.delivery.delivered and f"| deliveries sent | {sent} |" in markdown
    assert "| faces |" in markdown and "| plates |" in markdown  # the watermark per source
    status = _status_json(ops, capsys)
    assert status["sweep"]["rows_seen"] == faces + len(plates)
    assert status["sweep"]["age_s"] is not None and status["sweep"]["age_s"] < 120
    undelivered = [d for d in deliveries if d["state"] != "delivered"]
    assert status["deliveries"]["pending"] + status["deliveries"]["failed"] == len(undelivered)


def test_metrics_endpoint_gives_the_same_figures_to_admins_only(
    ops: Ops, capsys: pytest.CaptureFixture[str]
) -> None:
    from fastapi.testclient import TestClient

    from citywatch.service.app import create_app
    from tests.service_support import add_users, sign_in

    # the users table (which then replaces users.yaml) gets the demo users the other tests act as
    add_users(ops.settings, {"demo-admin": ["admin"], "demo-investigator": ["investigator"]})
    client = TestClient(create_app(ops.settings))
    assert client.get("/metrics").status_code == 401
    sign_in(client, "demo-investigator")
    assert client.get("/metrics").status_code == 403
    sign_in(client, "demo-admin")
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "text/plain; version=0.0.4"
    )
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    status = _status_json(ops, capsys)
    assert samples['citywatch_segments{state="done"}'] == status["segments"]["done"]
    assert samples['citywatch_segments{state="failed"}'] == status["segments"]["failed"]
    assert samples["citywatch_backlog_segments"] == status["segments"]["backlog"]
    assert samples[f'citywatch_camera_lag_seconds{{camera="{ops.camera}"}}'] == ops.lag_s
    assert samples['citywatch_deliveries{state="pending"}'] == status["deliveries"]["pending"]
    assert sum(v for k, v in samples.items() if k.startswith("citywatch_storage_bytes")) > 0
    assert client.get("/api/status").json()["segments"] == status["segments"]


def test_a_failed_index_run_fires_the_automation(ops: Ops) -> None:
    from citywatch.flows.index_footage import index_footage

    missing = ops.root.parent / "no-such-footage"
    state = index_footage(footage=str(missing), settings=ops.settings, return_state=True)
    assert state.is_failed()
    body = ops.receiver.wait_for("index run failed")
    assert "Failed" in str(body["text"])


def test_status_needs_the_admin_role(ops: Ops, capsys: pytest.CaptureFixture[str]) -> None:
    from citywatch.cli.main import main

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CITYWATCH_STORAGE__STATE_DIR", ops.settings.storage.state_dir)
        assert main(["--root", str(ops.root), "--user", "demo-investigator", "status"]) == 3
    assert "status_read" in capsys.readouterr().err


def test_flow_run_retention_deletes_only_old_finished_runs(ops: Ops, prefect_api: str) -> None:
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Completed, Running, Scheduled

    from citywatch.flows.flow_run_retention import flow_run_retention
    from citywatch.schemas import utcnow
    from citywatch.stack.deploy import prefect_client

    now = utcnow()
    made = {}
    with prefect_client(prefect_api) as client:
        for name, age, final in [
            ("old", 30, Completed),
            ("old-running", 30, Running),
            ("recent", 1, Completed),
        ]:
            run = client.create_flow_run(
                flow_run_retention,
                name=f"ops-{name}",
                state=Scheduled(scheduled_time=now - dt.timedelta(days=age)),
            )
            client.set_flow_run_state(run.id, final(), force=True)
            made[name] = run.id
    assert flow_run_retention(settings=ops.settings.updated(ops__flow_run_keep_days=7)) == 1
    with prefect_client(prefect_api) as client:
        with pytest.raises(ObjectNotFound):
            client.read_flow_run(made["old"])
        assert client.read_flow_run(made["old-running"]).state_name == "Running"
        assert client.read_flow_run(made["recent"]).state_name == "Completed"
