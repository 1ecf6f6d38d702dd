"""Detached service processes for ``citywatch up``: start, health-check, stop.

Every service runs in its own session (``start_new_session``), so it outlives the CLI
and everything it spawns (Dask nannies and their workers, Prefect's flow-run
processes) can be found again by session id and stopped together.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from citywatch.errors import TransientError

PROC = Path("/proc")


def executable(name: str) -> str:
    """A console script of this environment (beside ``sys.executable``), else PATH."""
    local = Path(sys.executable).with_name(name)
    return str(local) if local.exists() else (shutil.which(name) or name)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def pick_port(preferred: int, host: str = "127.0.0.1") -> int:
    """``preferred`` when it is free, else any free port (0 asks for any)."""
    if preferred and port_is_free(preferred, host):
        return preferred
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_detached(
    argv: Sequence[str], log: Path, env: Mapping[str, str], cwd: Path
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session, stdout and stderr appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            cwd=str(cwd),
            start_new_session=True,
        )


def _stat_fields(pid_dir: Path) -> list[str] | None:
    try:
        text = (pid_dir / "stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp session ..." - comm may hold spaces and parens
    return text[text.rfind(")") + 2 :].split()


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes of session ``sid``."""
    if not PROC.is_dir():  # not Linux: the session leader's group stands in for it
        try:
            os.killpg(sid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [sid]
    members = []
    for pid_dir in PROC.iterdir():
        if not pid_dir.name.isdigit():
            continue
        fields = _stat_fields(pid_dir)
        if fields and fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(pid_dir.name))
    return members


def signal_session(sid: int, sig: int) -> None:
    if not PROC.is_dir():
        try:
            os.killpg(sid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        return
    for pid in session_members(sid):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_session(sid: int, grace_s: float = 15.0) -> bool:
    """SIGTERM every process of the session, SIGKILL what is left after ``grace_s``.

    True if anything was running.
    """
    if not session_members(sid):
        return False
    signal_session(sid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not session_members(sid):
            return True
        time.sleep(0.2)
    signal_session(sid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while session_members(sid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return True


LAUNCH_READ_S = 5.0  # how long a just-started process may take to show its command line


@dataclass(frozen=True)
class Launch:
    """Who a process citywatch started is: recorded at launch, checked before stopping it.

    A pid alone names whatever process has that number now (after a crash or a
    reboot, someone else's); the command line and start time prove it is ours.
    """

    pid: int
    cmdline: list[str]
    create_time: float

    @classmethod
    def of(cls, pid: int) -> Launch:
        """The launch record of a process just started (its Popen held: the pid is ours).

        A process that already exited gets an empty record (nothing left to stop).
        Popen returns once the child's exec has closed its close-on-exec pipe, which the
        kernel does before it lays out the new program's arguments: for a moment
        /proc/PID/cmdline reads empty. The command line is read again until it shows.
        """
        deadline = time.monotonic() + LAUNCH_READ_S
        while True:
            try:
                proc = psutil.Process(pid)
                cmdline = proc.cmdline()
                if cmdline or time.monotonic() >= deadline:
                    return cls(pid, cmdline, proc.create_time())
            except psutil.Error:
                if not psutil.pid_exists(pid) or time.monotonic() >= deadline:
                    return cls(pid, [], 0.0)
            time.sleep(0.005)

    @classmethod
    def from_dict(cls, raw: Mapping[str, object]) -> Launch | None:
        """From a state file; None when it lacks the proof (written by an older citywatch)."""
        cmdline, created = raw.get("cmdline"), raw.get("create_time")
        if not isinstance(cmdline, list) or not cmdline or not isinstance(created, int | float):
            return None
        return cls(int(str(raw["pid"])), [str(a) for a in cmdline], float(created))

    def is_running(self) -> bool:
        """True while ``pid`` is still this process (same command line and start time)."""
        try:
            proc = psutil.Process(self.pid)
            # the start time is boot time + ticks since boot, and the kernel's boot time
            # moves when the clock is stepped (NTP, VM resume): allow a few seconds; the
            # command line must match in full as well
            return proc.cmdline() == self.cmdline and abs(proc.create_time() - self.create_time) < 5.0
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            return False

    def differs(self) -> str:
        """How ``pid``'s process differs from this record (for messages)."""
        try:
            proc = psutil.Process(self.pid)
            cmdline, created = proc.cmdline(), proc.create_time()
        except psutil.Error as exc:
            return f"unreadable ({type(exc).__name__})"
        parts = []
        if cmdline != self.cmdline:
            parts.append(f"command line {cmdline[:3]} not {self.cmdline[:3]}")
        if abs(created - self.create_time) >= 5.0:
            parts.append(f"started at {created:.2f} not {self.create_time:.2f}")
        return "; ".join(parts) or "same"

    def pid_taken(self) -> bool:
        """True when ``pid`` now names another process (not ours: never signal it)."""
        return psutil.pid_exists(self.pid) and not self.is_running() and not _zombie(self.pid)

    def stop(self, grace_s: float = 15.0) -> bool:
        """Stop this process's session, only if it is still ours; True if anything was running.

        With the leader gone, its session id cannot be reused while any member lives
        (Linux keeps the number), so the members left are the ones it spawned.
        """
        if self.pid_taken():
            return False
        return stop_session(self.pid, grace_s)


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def http_ok(url: str, timeout: float = 2.0, method: str = "GET") -> bool:
    """True when ``url`` answers with a 2xx status."""
    try:
        request = urllib.request.Request(url, method=method)
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - loopback
            return 200 <= resp.status < 300
    except (OSError, urllib.error.URLError):
        return False


def wait_until(
    check: Callable[[], bool], what: str, proc: subprocess.Popen[bytes] | None, log: Path, wait_s: float
) -> None:
    """Poll ``check`` until it passes; fail early when ``proc`` exits."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise TransientError(f"{what} exited early (code {proc.returncode}); see {log}")
        if check():
            return
        time.sleep(0.3)
    raise TransientError(f"{what} did not become ready within {wait_s:.0f} s; see {log}")


def http_json(url: str, timeout: float = 2.0) -> object:
    """The JSON body of a GET on ``url``; None when it does not answer with JSON."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback
            return json.loads(resp.read())
    except (OSError, urllib.error.URLError, ValueError):
        return None
