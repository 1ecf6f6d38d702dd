"""Stop the servers a test session started, even when it is interrupted.

citywatch starts its services (Prefect servers, Dask schedulers and workers, the local
bucket) in their own sessions (``start_new_session``) so that they outlive the CLI; in a
test run they must not outlive pytest. Only this process's own children are touched: a
process whose parent is this pytest process and which leads its own session, and the
members of its process group (what it started in turn). Servers of other test runs or
other users of the machine have another parent and are never signalled.

Runs at session end (after the session fixtures' own teardown), at interpreter exit,
and on SIGTERM/SIGHUP (then the signal's default action follows). SIGKILL cannot be
caught: after ``kill -9`` of pytest its servers stay (``ps -ef --forest`` shows them).
"""

from __future__ import annotations

import atexit
import os
import signal
import time
from pathlib import Path
from types import FrameType

_OWNER = os.getpid()  # forked children inherit these hooks; only this process acts
_HANDLED = (signal.SIGTERM, signal.SIGHUP)


def _stat(pid_dir: Path) -> tuple[str, int, int, int] | None:
    """(state, ppid, process group, session) of one /proc entry; None once it is gone."""
    try:
        text = (pid_dir / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
    return fields[0], int(fields[1]), int(fields[2]), int(fields[3])


def _processes() -> dict[int, tuple[str, int, int, int]]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(entry)) is not None:
            out[int(entry.name)] = stat
    return out


def own_session_leaders(parent: int | None = None) -> list[int]:
    """Children of ``parent`` (default: this process) started in a new session."""
    me = parent or os.getpid()
    return [pid for pid, (_, ppid, _, sid) in _processes().items() if ppid == me and sid == pid]


def _live_members(groups: set[int]) -> list[int]:
    return [pid for pid, (state, _, pgrp, _) in _processes().items() if pgrp in groups and state != "Z"]


def stop_own_servers(grace_s: float = 10.0) -> list[int]:
    """SIGTERM each group this process started in a new session; SIGKILL what is left
    after ``grace_s``. Returns the groups signalled."""
    if os.getpid() != _OWNER:
        return []
    groups = set(own_session_leaders())
    for group in groups:
        try:
            os.killpg(group, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + grace_s
    while _live_members(groups) and time.monotonic() < deadline:
        time.sleep(0.2)
    for group in {_processes()[pid][2] for pid in _live_members(groups) if pid in _processes()}:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return sorted(groups)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    stop_own_servers()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def install() -> None:
    """atexit, and SIGTERM/SIGHUP handlers where nobody else installed one."""
    atexit.register(stop_own_servers)
    for signum in _HANDLED:
        if signal.getsignal(signum) in (signal.SIG_DFL, None):
            signal.signal(signum, _on_signal)
