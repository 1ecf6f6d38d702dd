"""The test session's cleanup stops the servers it started, and nothing else.

A stand-in for pytest (a child Python) starts a "server" in its own session, as
citywatch starts Prefect and Dask, and that server starts a worker of its own. Killed
with SIGTERM (as a CI runner stops a job), or exiting normally, the stand-in takes its
server and the server's worker with it; a server some other process started (here: the
test itself) is left running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# the stand-in's server: a shell that starts a worker (same process group) and waits
SERVER = "sleep 600 & echo $! > {worker}; wait"

STAND_IN = """
import subprocess, sys, time
from tests import session_cleanup
session_cleanup.install()
subprocess.Popen(["sh", "-c", sys.argv[1]], start_new_session=True)
print("ready", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait_file(path: Path, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.1)
    raise AssertionError(f"{path} was never written")


def _wait_gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("how", ["sigterm", "normal exit"])
def test_the_session_stops_its_own_servers_and_only_those(tmp_path: Path, how: str) -> None:
    other = subprocess.Popen(["sleep", "600"], start_new_session=True)  # not the stand-in's
    worker_file = tmp_path / "worker.pid"
    lifetime = "600" if how == "sigterm" else "1"
    stand_in = subprocess.Popen(
        [sys.executable, "-c", STAND_IN, SERVER.format(worker=worker_file), lifetime],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
    )
    try:
        assert stand_in.stdout is not None and stand_in.stdout.readline().strip() == b"ready"
        worker = _wait_file(worker_file)
        assert _alive(worker)
        if how == "sigterm":
            stand_in.send_signal(signal.SIGTERM)
        assert stand_in.wait(timeout=60) in (0, -signal.SIGTERM)
        assert _wait_gone(worker), "the server's worker outlived the session"
        assert _alive(other.pid), "a process the session did not start was stopped"
    finally:
        stand_in.kill()
        other.kill()
        other.wait()
