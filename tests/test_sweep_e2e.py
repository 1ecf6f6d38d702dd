"""End to end on the indexed sample: enrol from one photo, alert on footage of another.

The footage composites one photo of obama; the entry is enrolled (through the CLI,
requested by one user and approved by another) from ``sample/probes/obama.jpg``, a
different photo. The sweep runs as a real Prefect flow against the test server, with
a real HTTP receiver as its webhook (a target an admin added, signed with a secret from
the environment). Works on a copy of the shared indexed root. After the run, no table,
file, log line, CLI output or Prefect flow-run parameter/log/artifact holds the secret.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import pytest

from citywatch.cli.main import main
from citywatch.governance.alerts import list_alerts
from citywatch.sample.dataset import load_ground_truth
from citywatch.settings import Settings
from citywatch.stack.prefect_server import free_port
from citywatch.storage import Storage
from citywatch.tables import upsert
from tests.watchlist_support import HOOK, HOOK_SECRET, Receiver

pytestmark = pytest.mark.slow
SLACK = dt.timedelta(seconds=1.5)
WHY = ["--case", "TEST-1", "--why", "automated end-to-end test of the watchlist"]


@dataclass
class Swept:
    root: Path
    settings: Settings
    receiver: Receiver
    truth: object  # citywatch.sample.truth.GroundTruth
    entry_id: str
    summary: object  # flows.watchlist_sweep.SweepSummary
    logs: list[str]  # every log record emitted while the fixture ran


def cli(root: Path, user: str, *args: str) -> int:
    return main(["--root", str(root), "--user", user, *args])


def cli_json(capsys: pytest.CaptureFixture[str], root: Path, user: str, *args: str) -> object:
    capsys.readouterr()
    assert cli(root, user, *args, "--json") == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def swept(indexed, tmp_path_factory: pytest.TempPathFactory) -> Swept:  # noqa: ANN001
    from citywatch.flows.watchlist_sweep import watchlist_sweep

    root = tmp_path_factory.mktemp("sweep") / "data"
    shutil.copytree(indexed.root, root)
    logs: list[str] = []
    catcher = _Catcher(logs)
    logging.getLogger().addHandler(catcher)
    os.environ["CITYWATCH_WEBHOOK_SECRETS"] = json.dumps({HOOK: HOOK_SECRET})
    os.environ["CITYWATCH_ALERTS__WEBHOOK_ALLOWED_HOSTS"] = '["127.0.0.1"]'
    receiver = Receiver(free_port())  # verifies every signature with HOOK_SECRET
    url = f"http://127.0.0.1:{receiver.server.server_address[1]}/alerts"
    settings = indexed.settings.updated(storage__root=str(root), alerts__webhook_allowed_hosts=["127.0.0.1"])
    assert cli(root, "demo-admin", "webhooks", "add", HOOK, url) == 0
    truth = load_ground_truth(root / "sample" / "ground_truth.json")
    for person in ("obama", "biden"):  # biden: enrolled but never in the footage
        assert (
            cli(
                root,
                "demo-investigator",
                "watchlist",
                "add",
                "face",
                "--photo",
                str(root / "sample" / "probes" / f"{person}.jpg"),
                "--label",
                person,
                "--reason",
                "missing",
                "--expires",
                "2d",
                *WHY,
            )
            == 0
        )
    from citywatch.governance.watchlist import list_entries

    entries = {e.label: e for e in list_entries(Storage(settings))}
    for entry in entries.values():
        assert (
            cli(
                root,
                "demo-supervisor",
                "watchlist",
                "approve",
                entry.id,
                "--why",
                "probe matches the case file",
            )
            == 0
        )
    summary = watchlist_sweep(settings=settings)
    yield Swept(root, settings, receiver, truth, entries["obama"].id, summary, logs)
    receiver.close()
    logging.getLogger().removeHandler(catcher)
    for name in ("CITYWATCH_WEBHOOK_SECRETS", "CITYWATCH_ALERTS__WEBHOOK_ALLOWED_HOSTS"):
        os.environ.pop(name, None)


class _Catcher(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(f"{record.name} {record.getMessage()} {record.exc_text or ''}")


def obama_passes(truth) -> list:  # noqa: ANN001
    return [a for a in truth.appearances if a.person_id == "obama"]


def in_pass(alert, passes) -> bool:  # noqa: ANN001
    return any(
        p.camera_id == alert.camera_id and p.start - SLACK <= alert.ts <= p.end + SLACK for p in passes
    )


def test_one_alert_per_pass_of_the_enrolled_person_none_for_anyone_else(swept: Swept) -> None:
    sample_day = [
        a for a in list_alerts(Storage(swept.settings)) if a.ts < dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
    ]
    passes = obama_passes(swept.truth)
    assert swept.summary.sweep.alerts_new == len(passes) == 3
    assert all(a.watchlist_id == swept.entry_id and in_pass(a, passes) for a in sample_day)
    assert sorted(a.camera_id for a in sample_day) == sorted(p.camera_id for p in passes)
    assert all(a.score < a.threshold and Path(a.thumb_uri).is_file() for a in sample_day)


def test_every_sink_gets_each_alert_once(swept: Swept) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    raised = swept.summary.sweep.alert_ids
    keys = [key for key, _ in swept.receiver.received]
    assert [keys.count(alert_id) for alert_id in raised] == [1] * len(raised)
    assert swept.receiver.rejected == []  # every POST carried a valid signature
    assert swept.summary.delivery.failed == 0
    assert swept.summary.delivery.delivered == 3 * len(raised)  # log, prefect, webhook
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["watchlist-alerts"]))
        )
    # the session's server also holds other sweeps' artifacts (a plate alert): look at them all
    assert any("obama" in str(a.data) and raised[0] in str(a.data) for a in found)


def test_dismissed_track_stays_quiet_when_its_segment_is_indexed_again(
    swept: Swept, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = cli_json(capsys, swept.root, "demo-supervisor", "alerts", "list", "--state", "new")
    target = listed[-1]
    assert {d["sink"].split(":")[0] for d in target["deliveries"]} == {"log", "prefect", "webhook"}
    assert (
        cli(
            swept.root,
            "demo-supervisor",
            "alerts",
            "dismiss",
            target["id"],
            "--note",
            "checked the thumbnail: a lookalike",
        )
        == 0
    )
    # the segment is indexed again: its face rows are written anew (new fragments)
    storage = Storage(swept.settings)
    faces = storage.db.open_table("faces")
    rows = faces.search().where(f"segment_id = '{target['segment_id']}'").limit(None).to_arrow()
    upsert(faces, rows)
    result = cli_json(capsys, swept.root, "demo-admin", "sweep")
    assert result["sweep"]["faces_read"] == rows.num_rows > 0
    assert result["sweep"]["alerts_new"] == 0
    shown = cli_json(capsys, swept.root, "demo-supervisor", "alerts", "show", target["id"])
    assert (shown["state"], shown["reviewed_by"]) == ("dismissed", "demo-supervisor")


def clip_segment(src: Path, dst: Path, start_s: float, duration_s: float) -> None:
    """Cut ``duration_s`` seconds of ``src`` from ``start_s`` into a new H.264 segment."""
    tmp = dst.with_name(f".{dst.name}")  # hidden while written: discovery skips it
    with av.open(str(src)) as inp, av.open(str(tmp), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        rate = vin.average_rate or Fraction(25)
        vout = out.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        vout.options = {"preset": "ultrafast", "crf": "23"}
        n = 0
        for frame in inp.decode(vin):
            t = float(frame.pts * vin.time_base)
            if start_s <= t < start_s + duration_s:
                frame.pts, frame.time_base = n, 1 / Fraction(rate)
                out.mux(vout.encode(frame))
                n += 1
        out.mux(vout.encode())
    tmp.rename(dst)


def test_a_new_segment_is_ingested_and_alerts_within_seconds(swept: Swept) -> None:
    from citywatch.flows.ingest_new import ingest_new
    from citywatch.flows.watchlist_sweep import watchlist_sweep

    first = min(obama_passes(swept.truth), key=lambda p: p.end - p.start)  # the shortest pass
    src = swept.root / first.key
    start = dt.datetime.strptime(src.stem, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    offset = (first.start - start).total_seconds() - 0.5
    landed = time.monotonic()
    new = src.with_name("20261120T090000Z.mp4")
    clip_segment(src, new, offset, (first.end - first.start).total_seconds() + 1.0)
    indexed = ingest_new(settings=swept.settings)  # indexes it, then sweeps at once
    seconds = time.monotonic() - landed
    assert indexed.indexed == 1 and indexed.faces > 0  # only the new segment
    alert = next(a for a in list_alerts(Storage(swept.settings)) if a.segment_id.endswith("T090000Z"))
    assert alert.camera_id == first.camera_id and alert.watchlist_id == swept.entry_id
    assert seconds < 120, f"segment to alert took {seconds:.1f} s"
    assert watchlist_sweep(settings=swept.settings).sweep.alerts_new == 0  # already raised


def test_the_webhook_secret_appears_nowhere(swept: Swept, capsys: pytest.CaptureFixture[str]) -> None:
    """Tables, files under the root and state dir, logs, CLI output, Prefect runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter

    needles = (HOOK_SECRET, HOOK_SECRET.removeprefix("whsec_"))
    seen: dict[str, str] = {}
    db = Storage(swept.settings).db
    for name in db.list_tables().tables:
        seen[f"table {name}"] = json.dumps(db.open_table(name).to_arrow().to_pylist(), default=str)
    for folder in (swept.root, Path(swept.settings.storage.state_dir)):
        for path in folder.rglob("*"):
            if path.is_file() and path.stat().st_size < 50_000_000:
                seen[f"file {path}"] = path.read_bytes().decode("latin-1")
    seen["logs"] = "\n".join(swept.logs)
    capsys.readouterr()
    for user, args in [
        ("demo-supervisor", ["alerts", "list", "--json"]),
        ("demo-admin", ["webhooks", "list", "--json"]),
        ("demo-admin", ["sweep", "--json"]),
        ("demo-admin", ["audit", "list", "--json", "--limit", "1000"]),
    ]:
        assert cli(swept.root, user, *args) == 0
        out = capsys.readouterr()
        seen[f"cli {' '.join(args)}"] = out.out + out.err
    assert "ops-room" in seen["cli webhooks list --json"]
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(limit=200)
        assert any("settings" in r.parameters for r in runs)  # the sweep's run, with its Settings
        seen["prefect flow-run parameters"] = json.dumps([r.parameters for r in runs], default=str)
        logs = client.read_logs(log_filter=LogFilter(), limit=200)
        seen["prefect logs"] = "\n".join(entry.message for entry in logs)
        seen["prefect artifacts"] = json.dumps([a.data for a in client.read_artifacts()], default=str)
    assert "webhook_allowed_hosts" in seen["prefect flow-run parameters"]  # the settings are there...
    leaks = [where for where, text in seen.items() if any(n in text for n in needles)]
    assert leaks == []  # ...but never the secret


def test_watcher_ticks_run_without_the_flow_heartbeat(prefect_api: str) -> None:
    """Prefect's flow heartbeat makes every flow run end up to 1 s late; the watchers
    (ingest-new/sweep --watch) turn it off for their runs only."""
    from prefect import flow
    from prefect.settings import get_current_settings

    from citywatch.flows.watchlist_sweep import run_periodically

    seen: list[int | None] = []

    @flow(name="heartbeat-probe")
    def probe(settings: Settings) -> None:
        seen.append(get_current_settings().flows.heartbeat_frequency)

    assert run_periodically(probe, Settings(), 0.0, ticks=2) == 2
    assert seen == [None, None]
    assert get_current_settings().flows.heartbeat_frequency is not None  # outside the watcher: as configured
