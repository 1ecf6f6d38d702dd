"""A real local Prefect server for the CLI (ephemeral mode breaks with Dask processes).

``ensure_prefect_server`` reuses the server recorded in ``<state_dir>/prefect`` when
it still answers, else starts ``prefect server start`` on a free loopback port, in its
own session so it outlives the CLI (``citywatch down`` stops it).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict
from pathlib import Path

from citywatch.errors import TransientError
from citywatch.stack.procs import Launch

QUIET_ENV = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


def _prefect_exe() -> str:
    local = Path(sys.executable).with_name("prefect")
    return str(local) if local.exists() else (shutil.which("prefect") or "prefect")


def start_prefect_server(
    home: Path, port: int | None = None, wait_s: float = 90.0, database_url: str | None = None
) -> tuple[str, int]:
    """Start a server with its database under ``home`` (SQLite) or at ``database_url``
    (PostgreSQL, ``postgresql+asyncpg://...``); returns (api_url, pid)."""
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    ui_url = f"http://127.0.0.1:{port}"
    api_url = f"{ui_url}/api"
    # the UI asks /ui-settings where the API is: without these it says port 4200
    # whatever port the server really has, and shows no runs
    env = {
        **os.environ,
        **QUIET_ENV,
        "PREFECT_HOME": str(home),
        "PREFECT_UI_API_URL": api_url,
        "PREFECT_UI_URL": ui_url,
    }
    env.pop("PREFECT_API_URL", None)
    if database_url:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    log_file = open(home / "server.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [_prefect_exe(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TransientError(
                f"prefect server exited early (code {proc.returncode}); see {home / 'server.log'}"
            )
        if healthy(api_url, timeout=1.0):
            return api_url, proc.pid
        time.sleep(0.5)
    proc.terminate()
    raise TransientError(f"prefect server did not answer within {wait_s:.0f} s; see {home / 'server.log'}")


def ensure_prefect_server(state_dir: str) -> str:
    """Make sure ``PREFECT_API_URL`` points at a live server; return the API URL."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    current = os.environ.get("PREFECT_API_URL")
    if current:
        return current
    home = Path(state_dir).expanduser().resolve() / "prefect"
    record = home / "server.json"
    api_url = ""
    if record.is_file():
        saved = json.loads(record.read_text())
        if healthy(saved["api_url"]):
            api_url = saved["api_url"]
    if not api_url:
        api_url, pid = start_prefect_server(home)
        write_server_record(record, api_url, pid)
    os.environ["PREFECT_API_URL"] = api_url
    return api_url


def write_server_record(record: Path, api_url: str, pid: int) -> None:
    """``server.json``: the API URL and the server's launch record (pid, command line, start)."""
    record.write_text(json.dumps({"api_url": api_url, **asdict(Launch.of(pid))}))


def stop_prefect_server(state_dir: str) -> bool:
    """Stop the server ``ensure_prefect_server`` started; True if one was running.

    Only the process the record names, and only while its command line and start time
    still match: a pid reused by another process (or a record without that proof,
    from an older citywatch) stops nothing.
    """
    record = Path(state_dir).expanduser().resolve() / "prefect" / "server.json"
    if not record.is_file():
        return False
    launch = Launch.from_dict(json.loads(record.read_text()))
    record.unlink()
    return launch is not None and launch.stop()
