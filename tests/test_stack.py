"""``citywatch up`` / ``down`` and flows on a Dask cluster given by address.

The slow tests start real processes: the whole stack (Prefect server and worker, Dask
scheduler and workers, localbucket) through the CLI as a user would, and a separate
``dask scheduler`` + 2 ``dask worker`` processes for the index flow.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from citywatch.errors import BadInputError
from citywatch.footage import parse_stamp
from citywatch.governance.auth import write_demo_users
from citywatch.settings import Settings
from citywatch.stack.deploy import SCHEDULES, pool_names, settings_env
from citywatch.stack.flow_env import LOCAL_S3_KEY
from citywatch.stack.prefect_server import free_port, healthy
from citywatch.stack.procs import executable, session_members, start_detached, stop_session
from citywatch.stack.up import logs_dir
from citywatch.storage import Storage
from tests.conftest import settings_for

REPO = Path(__file__).resolve().parents[1]


# --- plain parts ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "given",
    [
        {
            "storage__root": "s3://bucket/city",
            "s3__endpoint_url": "http://127.0.0.1:9000",
            "s3__access_key_id": "key",
            "s3__secret_access_key": "secret",
            "s3__allow_http": True,
            "s3__bulk_delete": False,
            "dask__address": "tcp://10.0.0.5:8786",
        },
        {"storage__root": "relative/root", "storage__state_dir": "relative/state", "decode__sample_fps": 1.0},
        {
            "alerts__webhook_allowed_hosts": ["127.0.0.1", "*.example.org"],
            "plates__format": "custom",
            "plates__grammar": ("^[A-Z]{2}[0-9]{4}$",),
            "plates__enabled": False,
            "user": "demo-admin",
        },
    ],
)
def test_settings_env_rebuilds_the_settings_in_another_process(
    given: dict[str, object], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    original = Settings(**given)
    env = settings_env(original)
    for name in list(os.environ):
        if name.startswith("CITYWATCH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir("/")  # flow runs start elsewhere: local paths must be absolute
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    rebuilt = Settings()
    expected = original.model_dump()
    for name in ("root", "state_dir"):
        if not expected["storage"][name].startswith("s3://"):
            expected["storage"][name] = str((tmp_path / expected["storage"][name]).resolve())
    assert rebuilt.model_dump() == expected


DEPLOYMENTS = (
    "deployments:\n  - name: a\n    work_pool: {{name: {}}}\n  - name: b\n    work_pool: {{name: {}}}\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (DEPLOYMENTS.format("p1", "p1"), ["p1"]),
        (DEPLOYMENTS.format("p1", "p2"), ["p1", "p2"]),
        ("deployments:\n  - name: a\n", BadInputError),
        ("deployments: []\n", BadInputError),
        ("deployments: [\n", BadInputError),
    ],
)
def test_pool_names(text: str, expected: object, tmp_path: Path) -> None:
    path = tmp_path / "prefect.yaml"
    path.write_text(text)
    if isinstance(expected, list):
        assert pool_names(path) == expected
    else:
        with pytest.raises(expected):
            pool_names(path)


def test_the_projects_prefect_yaml_names_its_pools() -> None:
    assert pool_names(REPO / "prefect.yaml")


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ("{tmp}/data", "{tmp}/data/logs/stack"),
        ("s3://bucket/city", "{tmp}/state/logs"),  # a log cannot be appended to on S3
    ],
)
def test_logs_dir(root: str, expected: str, tmp_path: Path) -> None:
    settings = Settings(storage__root=root.format(tmp=tmp_path), storage__state_dir=str(tmp_path / "state"))
    assert logs_dir(settings) == Path(expected.format(tmp=tmp_path))


def test_stop_session_stops_the_children_too(tmp_path: Path) -> None:
    proc = start_detached(["sh", "-c", "sleep 60 & sleep 60 & wait"], tmp_path / "log", os.environ, tmp_path)
    deadline = time.monotonic() + 10
    while len(session_members(proc.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # the shell forks its two sleeps
    assert len(session_members(proc.pid)) == 3
    assert stop_session(proc.pid, grace_s=5)
    proc.wait(timeout=5)
    assert session_members(proc.pid) == []
    assert not stop_session(proc.pid)  # idempotent


# --- `down` stops only what citywatch started (issue 13, item 6) -------------------------
def _sleeper(tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    return start_detached(["sleep", "300"], tmp_path / f"{name}.log", os.environ, tmp_path)


def _down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    from citywatch.cli.main import main

    state = tmp_path / "state"
    assert main(["--root", str(tmp_path / "data"), "down", "--json"]) == 0
    assert not (state / "stack.json").exists() and not (state / "prefect" / "server.json").exists()
    return json.loads(capsys.readouterr().out)


def _write_state(tmp_path: Path, services: list[dict], server: dict) -> None:
    state = tmp_path / "state"
    (state / "prefect").mkdir(parents=True)
    stack = {
        "prefect_api": server["api_url"],
        "dask_address": "",
        "dask_dashboard": "",
        "s3_endpoint": "",
        "storage_root": str(tmp_path / "data"),
        "logs": str(tmp_path),
        "project": str(REPO),
        "services": services,
    }
    (state / "stack.json").write_text(json.dumps(stack))
    (state / "prefect" / "server.json").write_text(json.dumps(server))


def test_down_leaves_alone_processes_whose_pid_it_recorded_but_did_not_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """State files naming someone else's processes (a reused pid, an edited file):
    ``down`` must not signal them."""
    monkeypatch.setenv("CITYWATCH_STORAGE__STATE_DIR", str(tmp_path / "state"))
    strangers = [_sleeper(tmp_path, "a"), _sleeper(tmp_path, "b")]
    try:
        other = {"cmdline": ["prefect", "server", "start"], "create_time": 1_000_000.0}  # not them
        _write_state(
            tmp_path,
            [{"name": "dask-scheduler", "pid": strangers[0].pid, "url": "", "log": ""}],  # no record
            {"api_url": "http://127.0.0.1:9/api", "pid": strangers[1].pid, **other},
        )
        out = _down(tmp_path, capsys)
        assert out["stopped"] == []
        assert any("is now another process" in why for why in out["left"])
        assert any("without its command line" in why for why in out["left"])
        assert all(p.poll() is None for p in strangers)
    finally:
        for p in strangers:
            stop_session(p.pid, grace_s=5)


def test_down_stops_the_processes_it_launched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import asdict

    from citywatch.stack.procs import Launch

    monkeypatch.setenv("CITYWATCH_STORAGE__STATE_DIR", str(tmp_path / "state"))
    ours = [_sleeper(tmp_path, "a"), _sleeper(tmp_path, "b")]
    try:
        launch = Launch.of(ours[0].pid)
        service = {"name": "sleeper", "url": "", "log": "", **asdict(launch)}
        _write_state(
            tmp_path, [service], {"api_url": "http://127.0.0.1:9/api", **asdict(Launch.of(ours[1].pid))}
        )
        out = _down(tmp_path, capsys)
        assert out == {"stopped": ["sleeper", "prefect-server"], "left": []}
        for p in ours:
            p.wait(timeout=20)
    finally:
        for p in ours:
            stop_session(p.pid, grace_s=5)


# --- the whole stack -------------------------------------------------------------------
def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "citywatch.cli.main", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


def copy_segments(sample_dir: Path, root: Path, keys: list[str]) -> None:
    for key in ["cameras.yaml", *keys]:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(sample_dir / key, root / key)


def two_segments(sample_dir: Path) -> list[str]:
    from citywatch.sample.dataset import load_ground_truth

    truth = load_ground_truth(sample_dir / "sample" / "ground_truth.json")
    return [s.key for s in truth.segments[:2]]


@pytest.mark.slow
def test_up_serves_the_deployments_on_its_dask_and_s3_and_down_stops_everything(
    sample_dir: Path, tmp_path: Path
) -> None:
    import s3fs
    from distributed import Client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from citywatch.flows.index_footage import run_index
    from citywatch.stack.deploy import prefect_client

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CITYWATCH_", "PREFECT_API_URL"))}
    env.update(CITYWATCH_STORAGE__STATE_DIR=str(tmp_path / "state"), CITYWATCH_USER="demo-admin")
    ports = ["--prefect-port", "0", "--dask-port", "0", "--dashboard-port", "0", "--s3-port", "0"]
    stack: dict = {"services": []}
    up = run_cli(env, "--root", str(tmp_path / "data"), "up", *ports, "--paused", "--local-s3", "--json")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        stack = json.loads(up.stdout)
        assert not stack["already_running"]
        # each service answers
        assert healthy(stack["prefect_api"])
        with Client(stack["dask_address"], timeout=30) as client:
            assert len(client.scheduler_info()["workers"]) == 2
        fs = s3fs.S3FileSystem(
            key=LOCAL_S3_KEY,
            secret=LOCAL_S3_KEY,
            use_listings_cache=False,
            client_kwargs={"endpoint_url": stack["s3_endpoint"]},
        )
        assert "citywatch" in fs.ls("")
        spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
        names = {d.split("/")[1] for d in stack["deployments"]}
        assert names == {d["name"] for d in spec["deployments"]}
        assert Path(stack["logs"], "dask-scheduler.log").is_file()
        # a tiny index on the stack's Dask workers and S3 server
        settings = Settings(
            storage__root=stack["storage_root"],
            s3__endpoint_url=stack["s3_endpoint"],
            s3__access_key_id=LOCAL_S3_KEY,
            s3__secret_access_key=LOCAL_S3_KEY,
            s3__allow_http=True,
            s3__bulk_delete=False,
            user="demo-admin",
            dask__address=stack["dask_address"],
            storage__state_dir=str(tmp_path / "state"),
        )
        local = tmp_path / "upload"
        keys = two_segments(sample_dir)
        copy_segments(sample_dir, local, keys)
        fs.put(f"{local}/", f"{stack['storage_root'].removeprefix('s3://')}", recursive=True)
        write_demo_users(Storage(settings))
        # a backfill of one camera and time range, as from the UI: prefect.yaml's deployment,
        # run by the stack's worker with the stack's settings, indexes only that segment
        camera, stamp = keys[0].removeprefix("footage/").split(".")[0].split("/")
        start = parse_stamp(stamp)
        backfill = {
            "cameras": [camera],
            "since": start.isoformat(),
            "until": (start + dt.timedelta(seconds=1)).isoformat(),
        }
        with temporary_settings(updates={PREFECT_API_URL: stack["prefect_api"]}):
            run = run_deployment("index-footage/index-footage", parameters=backfill, timeout=300)
            assert run.state.is_completed(), run.state
            segments = Storage(settings).db.open_table("segments").to_arrow().to_pylist()
            assert [(s["id"], s["state"]) for s in segments] == [(f"{camera}/{stamp}", "done")]
            summary = run_index(settings)  # the rest
            assert (summary.indexed, summary.failed) == (1, [])
            with Client(stack["dask_address"], timeout=30) as client:
                executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
            assert sum(executed.values()) == 2
        segments = Storage(settings).db.open_table("segments").to_arrow().to_pylist()
        assert sorted(s["state"] for s in segments) == ["done", "done"]
        with prefect_client(stack["prefect_api"]) as prefect:
            assert all(d.paused for d in prefect.read_deployments())
            intervals = {
                d.name: [s.schedule.interval.total_seconds() for s in d.schedules]  # type: ignore[union-attr]
                for d in prefect.read_deployments()
                if d.name in SCHEDULES
            }
        defaults = Settings()
        assert intervals == {
            "index-footage": [defaults.index.interval_s],
            "ingest-new": [defaults.index.ingest_interval_s],
            "watchlist-sweep": [defaults.sweep.interval_s],
        }
        assert len(stack["automations"]) == 3
        again = run_cli(env, "--root", str(tmp_path / "data"), "up", *ports, "--json")
        assert json.loads(again.stdout)["already_running"], again.stderr
    finally:
        down = run_cli(env, "--root", str(tmp_path / "data"), "down", "--json")
    assert down.returncode == 0, down.stderr
    names = {s["name"] for s in stack["services"]}
    assert set(json.loads(down.stdout)["stopped"]) == names
    assert all(session_members(s["pid"]) == [] for s in stack["services"])
    assert not healthy(stack["prefect_api"])
    again = run_cli(env, "--root", str(tmp_path / "data"), "down", "--json")
    assert json.loads(again.stdout)["stopped"] == []


# --- an existing Dask cluster ------------------------------------------------------------
@pytest.mark.slow
def test_index_runs_on_an_existing_dask_scheduler(prefect_api: str, sample_dir: Path, tmp_path: Path) -> None:
    from distributed import Client

    from citywatch.flows.index_footage import run_index

    port, dashboard = free_port(), free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "logs"
    started = [
        start_detached(
            [
                executable("dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dashboard-address",
                f"127.0.0.1:{dashboard}",
            ],
            logs / "scheduler.log",
            os.environ,
            REPO,
        )
    ]
    try:
        started += [
            start_detached(
                [
                    executable("dask"),
                    "worker",
                    address,
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                    "--name",
                    f"w{i}",
                ],
                logs / f"worker{i}.log",
                os.environ,
                REPO,
            )
            for i in range(2)
        ]
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        root = tmp_path / "data"
        keys = two_segments(sample_dir)
        copy_segments(sample_dir, root, keys)
        settings = settings_for(root, tmp_path, dask__address=address)
        write_demo_users(Storage(settings))
        summary = run_index(settings)
        assert (summary.indexed, summary.failed) == (2, [])
        with Client(address, timeout=30) as client:
            executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
        assert sum(executed.values()) == 2  # both segments ran there
    finally:
        for proc in reversed(started):
            stop_session(proc.pid)
            proc.wait(timeout=10)
