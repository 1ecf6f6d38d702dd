"""``citywatch down``: stop what ``up`` (or any command) started, and nothing else."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from citywatch.settings import Settings
from citywatch.stack.flow_env import state_path
from citywatch.stack.postgres import LocalPostgres
from citywatch.stack.procs import Launch
from citywatch.stack.up import ENV_FILE, STACK_FILE, read_stack


@dataclass
class Stopped:
    """What ``down`` stopped, and what it left alone (with why)."""

    stopped: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)

    def stop(self, name: str, pid: int, launch: Launch | None) -> None:
        """Stop one recorded process, only if its launch record proves it is still ours."""
        if launch is None:
            self.left.append(
                f"{name}: pid {pid} was recorded without its command line and start time "
                "(an older citywatch): not stopped; stop it yourself if it is still running"
            )
        elif launch.pid_taken():
            self.left.append(f"{name}: pid {pid} is now another process: left alone")
        elif launch.stop() and name not in self.stopped:
            self.stopped.append(name)


def stop_stack(settings: Settings) -> Stopped:
    """Stop everything ``up`` started and the recorded Prefect server.

    Only processes citywatch started: each recorded pid must still run the command
    line it was launched with, since the same start time (see ``Launch``).
    """
    done = Stopped()
    stack = read_stack(settings)
    if stack is not None:
        for service in reversed(stack.services):
            done.stop(service.name, service.pid, service.launch)
        if stack.postgres:  # after the Prefect server that used it
            pg = LocalPostgres(Path(stack.postgres), stack.postgres_port)
            if pg.data.is_dir() and pg.running():
                pg.stop()
                done.stopped.append("postgres")
        (state_path(settings) / STACK_FILE).unlink(missing_ok=True)
        (state_path(settings) / ENV_FILE).unlink(missing_ok=True)
    record = state_path(settings) / "prefect" / "server.json"
    if record.is_file():  # started by up, or by any command through ensure_prefect_server
        saved = json.loads(record.read_text())
        record.unlink()
        done.stop("prefect-server", int(saved["pid"]), Launch.from_dict(saved))
    return done
