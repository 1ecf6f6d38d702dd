"""``citywatch up`` / ``down``: the whole platform on one machine, without Docker.

``up`` starts, each in its own session and health-checked in turn:

* a Prefect server (the one ``citywatch index`` etc. reuse, recorded by
  ``citywatch/prefect_server.py``),
* a Dask scheduler (with its HTTP/dashboard port) and ``dask_workers`` worker processes,
* a disk-backed S3 server (localbucket, data in ``<state_dir>/s3``, bucket ``citywatch``),
* the work pools named in ``prefect.yaml``, every deployment in it (``prefect deploy
  --all``), the automations of ``citywatch/stack/automations.py`` (index run failed,
  lag exceeded, sweep stopped) and one Prefect process worker per pool. Flow runs read their settings from
  the worker's environment: this command's settings, plus ``CITYWATCH_DASK__ADDRESS`` of
  the stack's scheduler (and the stack's S3 server as storage root with ``local_s3``).

Pids (with each one's command line and start time), ports and URLs go to
``<state_dir>/stack.json``; shell exports to use the stack from another terminal to
``<state_dir>/stack.env``. Logs go to ``<root>/logs/stack`` when the storage root is a
local directory, else (s3) to ``<state_dir>/logs``: a log file cannot be appended to
on S3. ``down`` (citywatch/stack/down.py) stops every process of every session it
started (Dask nannies' workers and Prefect's flow-run processes included), and only
those.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from citywatch.errors import BadInputError, TransientError
from citywatch.settings import Settings
from citywatch.stack.automations import ensure_automations
from citywatch.stack.deploy import (
    deploy_all,
    pool_has_online_worker,
    pool_names,
    settings_env,
    work_pools_ready,
)
from citywatch.stack.flow_env import (
    LOCAL_S3_BUCKET,
    flow_settings,
    state_path,
    write_env_file,
)
from citywatch.stack.postgres import LocalPostgres
from citywatch.stack.prefect_server import QUIET_ENV, healthy, start_prefect_server, write_server_record
from citywatch.stack.procs import (
    Launch,
    executable,
    http_json,
    http_ok,
    pick_port,
    session_members,
    start_detached,
    wait_until,
)
from citywatch.storage import Storage, is_remote

STACK_FILE = "stack.json"
ENV_FILE = "stack.env"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StackOptions:
    """What ``up`` starts where (ports: 0 = any free port; a taken port falls back)."""

    project: Path
    prefect_port: int = 4200
    dask_port: int = 8786
    dashboard_port: int = 8787
    s3_port: int = 9000
    paused: bool = False
    local_s3: bool = False
    wait_s: float = 120.0
    postgres: bool = False  # the Prefect server on a local PostgreSQL (citywatch/stack/postgres.py)
    postgres_port: int = 5432


@dataclass(frozen=True)
class Service:
    name: str
    pid: int  # also the session id: stopping it stops everything it spawned
    url: str
    log: str
    cmdline: list[str] = field(default_factory=list)  # with create_time: proof that pid is ours
    create_time: float = 0.0

    @property
    def launch(self) -> Launch | None:
        return Launch.from_dict(asdict(self))


@dataclass(frozen=True)
class Stack:
    """What ``up`` started (``<state_dir>/stack.json``)."""

    prefect_api: str
    dask_address: str
    dask_dashboard: str
    s3_endpoint: str
    storage_root: str
    logs: str
    project: str
    work_pools: list[str] = field(default_factory=list)
    deployments: list[str] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    automations: list[str] = field(default_factory=list)
    postgres: str = ""  # the local PostgreSQL's folder (up --postgres); down stops it
    postgres_port: int = 0

    @property
    def prefect_ui(self) -> str:
        return self.prefect_api.removesuffix("/api")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Stack:
        raw = json.loads(text)
        raw["services"] = [Service(**s) for s in raw.get("services", [])]
        return cls(**raw)


def logs_dir(settings: Settings, local_s3: bool = False) -> Path:
    """``<root>/logs/stack`` for a local root, ``<state_dir>/logs`` for a remote one."""
    root = Storage(settings).root
    if local_s3 or is_remote(root):
        return state_path(settings) / "logs"
    return Path(root) / "logs" / "stack"


def find_project(explicit: str | None) -> Path:
    """The directory holding prefect.yaml: ``explicit``, the cwd, or this checkout."""
    candidates = [Path(explicit)] if explicit else [Path.cwd(), Path(__file__).resolve().parents[2]]
    for folder in candidates:
        if (folder / "prefect.yaml").is_file():
            return folder.resolve()
    where = explicit or f"{Path.cwd()} or {Path(__file__).resolve().parents[2]}"
    raise BadInputError(f"--project: no prefect.yaml in {where}")


def read_stack(settings: Settings) -> Stack | None:
    path = state_path(settings) / STACK_FILE
    return Stack.from_json(path.read_text()) if path.is_file() else None


def dead_services(stack: Stack) -> list[str]:
    """Services no longer running (or whose pid is now another process's), each with why."""
    dead = []
    for s in stack.services:
        launch = s.launch
        if launch is None:
            dead.append(f"{s.name} (no launch record for pid {s.pid})")
        elif launch.pid_taken():
            dead.append(f"{s.name} (pid {s.pid} is now another process: {launch.differs()})")
        elif not session_members(s.pid):
            dead.append(f"{s.name} (nothing left in session {s.pid})")
    return dead


def _service_env(prefect_api: str, project: Path) -> dict[str, str]:
    # PWD too: prefect.yaml's pull step resolves "{{ $PWD }}" in the worker's environment
    return {
        **os.environ,
        **QUIET_ENV,
        "PREFECT_API_URL": prefect_api,
        "PWD": str(project),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(project), os.environ.get("PYTHONPATH")])),
    }


class _Starter:
    """Starts services one by one; on any failure stops what it started."""

    def __init__(self, settings: Settings, options: StackOptions) -> None:
        self.settings = settings
        self.options = options
        self.logs = logs_dir(settings, options.local_s3)
        self.services: list[Service] = []
        self.pg: LocalPostgres | None = None

    def add(self, name: str, pid: int, url: str, log: Path, launch: Launch | None = None) -> None:
        launch = launch or Launch.of(pid)
        self.services.append(Service(name, pid, url, str(log), launch.cmdline, launch.create_time))

    def abort(self) -> None:
        for service in reversed(self.services):
            if service.launch is not None:
                service.launch.stop()
        if self.pg is not None:
            self.pg.stop()

    def postgres(self) -> str:
        """Start the local PostgreSQL (created on first use); returns Prefect's database URL."""
        pg = LocalPostgres(state_path(self.settings) / "postgres", pick_port(self.options.postgres_port))
        pg.init()
        pg.start()
        self.pg = pg
        return pg.url()

    # --- services ---------------------------------------------------------------
    def prefect(self, database_url: str | None = None) -> str:
        home = state_path(self.settings) / "prefect"
        record = home / "server.json"
        if record.is_file():
            saved = json.loads(record.read_text())
            launch = Launch.from_dict(saved)
            if launch is not None and launch.is_running() and healthy(saved["api_url"]):
                self.add(
                    "prefect-server",
                    launch.pid,
                    saved["api_url"].removesuffix("/api"),
                    home / "server.log",
                    launch,
                )
                return str(saved["api_url"])
        port = pick_port(self.options.prefect_port)
        api_url, pid = start_prefect_server(
            home, port=port, wait_s=self.options.wait_s, database_url=database_url
        )
        write_server_record(record, api_url, pid)
        self.add("prefect-server", pid, api_url.removesuffix("/api"), home / "server.log")
        return api_url

    def dask(self, prefect_api: str) -> tuple[str, str]:
        opts, s = self.options, self.settings
        port, dash = pick_port(opts.dask_port), pick_port(opts.dashboard_port)
        address, dashboard = f"tcp://127.0.0.1:{port}", f"http://127.0.0.1:{dash}"
        env = _service_env(prefect_api, opts.project)
        log = self.logs / "dask-scheduler.log"
        proc = start_detached(
            [
                executable("dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dashboard-address",
                f"127.0.0.1:{dash}",
            ],
            log,
            env,
            opts.project,
        )
        self.add("dask-scheduler", proc.pid, address, log)
        wait_until(lambda: http_ok(f"{dashboard}/health"), "dask scheduler", proc, log, opts.wait_s)
        log = self.logs / "dask-workers.log"
        local = state_path(s) / "dask"
        proc = start_detached(
            [
                executable("dask"),
                "worker",
                address,
                "--nworkers",
                str(s.dask.workers),
                "--nthreads",
                str(s.dask.threads_per_worker),
                "--local-directory",
                str(local),
                "--no-dashboard",
                "--host",
                "127.0.0.1",
            ],
            log,
            env,
            opts.project,
        )
        self.add("dask-workers", proc.pid, address, log)
        wait_until(
            lambda: _worker_count(dashboard) >= s.dask.workers,
            f"{s.dask.workers} dask workers",
            proc,
            log,
            opts.wait_s,
        )
        return address, dashboard

    def s3(self) -> str:
        port = pick_port(self.options.s3_port)
        endpoint = f"http://127.0.0.1:{port}"
        data = state_path(self.settings) / "s3"
        data.mkdir(parents=True, exist_ok=True)
        log = self.logs / "s3.log"
        proc = start_detached(
            [executable("localbucket"), "--host", "127.0.0.1", "--port", str(port), str(data)],
            log,
            os.environ,
            self.options.project,
        )
        self.add("s3", proc.pid, endpoint, log)
        wait_until(lambda: http_ok(endpoint), "S3 server (localbucket)", proc, log, self.options.wait_s)
        if not (data / LOCAL_S3_BUCKET).is_dir() and not http_ok(
            f"{endpoint}/{LOCAL_S3_BUCKET}", method="PUT"
        ):
            raise TransientError(f"could not create bucket {LOCAL_S3_BUCKET} on {endpoint}; see {log}")
        return endpoint

    def prefect_workers(self, api: str, env: dict[str, str], pools: list[str]) -> None:
        env = {**env, "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_WORKER_PREFETCH_SECONDS": "2"}
        for pool in pools:
            log = self.logs / f"prefect-worker-{pool}.log"
            proc = start_detached(
                [
                    executable("prefect"),
                    "worker",
                    "start",
                    "--pool",
                    pool,
                    "--name",
                    f"citywatch-stack-{pool}",
                ],
                log,
                env,
                self.options.project,
            )
            self.add(f"prefect-worker-{pool}", proc.pid, f"{api.removesuffix('/api')}/work-pools", log)
            wait_until(
                functools.partial(pool_has_online_worker, api, pool),
                f"prefect worker for {pool}",
                proc,
                log,
                self.options.wait_s,
            )


def _worker_count(dashboard: str) -> int:
    """Workers the scheduler knows, from its JSON endpoint (no client needed)."""
    counts = http_json(f"{dashboard}/json/counts.json")
    return int(counts.get("workers", 0)) if isinstance(counts, dict) else 0


def start_stack(settings: Settings, options: StackOptions) -> tuple[Stack, bool]:
    """Start the stack (or find it running); returns it and whether it was already up."""
    existing = read_stack(settings)
    if existing is not None:
        dead = dead_services(existing)
        if not dead:
            return existing, True
        log.warning("stack: %s no longer running; stopping the rest and starting again", ", ".join(dead))
        from citywatch.stack.down import stop_stack  # down imports this module

        stop_stack(settings)  # a half-dead stack: start clean
    pools = pool_names(options.project / "prefect.yaml")
    state_path(settings).mkdir(parents=True, exist_ok=True)
    starter = _Starter(settings, options)
    try:
        api = starter.prefect(starter.postgres() if options.postgres else None)
        if settings.dask.address:
            address, dashboard = settings.dask.address, ""
        else:
            address, dashboard = starter.dask(api)
        endpoint = starter.s3()
        flow = flow_settings(settings, address, endpoint, options.local_s3)
        env = {
            **_service_env(api, options.project),
            **settings_env(flow),
            "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
        }
        work_pools_ready(api, pools)
        deployments = deploy_all(
            api,
            options.project,
            env,
            starter.logs / "deploy.log",
            pools,
            paused=options.paused,
            settings=flow,
        )
        automations = ensure_automations(api, settings)
        starter.prefect_workers(api, env, pools)
    except BaseException:
        starter.abort()
        raise
    stack = Stack(
        prefect_api=api,
        dask_address=address,
        dask_dashboard=dashboard,
        s3_endpoint=endpoint,
        storage_root=flow.storage.root,
        logs=str(starter.logs),
        project=str(options.project),
        work_pools=pools,
        deployments=deployments,
        services=starter.services,
        automations=automations,
        postgres=str(starter.pg.folder) if starter.pg else "",
        postgres_port=starter.pg.port if starter.pg else 0,
    )
    (state_path(settings) / STACK_FILE).write_text(stack.to_json())
    write_env_file(state_path(settings) / ENV_FILE, api, flow, options.local_s3)
    return stack, False
