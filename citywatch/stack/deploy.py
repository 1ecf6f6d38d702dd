"""Registering prefect.yaml's deployments with the stack's Prefect server.

Flow runs of a process work pool inherit the worker's environment, so the settings a
deployment runs with are the ``CITYWATCH_*`` variables built by :func:`settings_env`.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import SecretStr

from citywatch.errors import BadInputError, TransientError
from citywatch.settings import Settings, setting_fields, value_at, variable
from citywatch.stack.procs import executable
from citywatch.storage import is_remote

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.client.orchestration import SyncPrefectClient

# local paths among the settings: made absolute, since flow runs start in the project dir
_PATH_FIELDS = (
    "storage.root",
    "storage.state_dir",
    "storage.cameras_file",
    "storage.users_file",
    "faces.insightface_dir",
    "export.signing_key_file",
    "export.trusted_keys_file",
    "audit.key_file",
    "audit.checkpoint_url",
    "alerts.webhook_secrets_file",
)


def _encode(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(list(value) if isinstance(value, tuple) else value)
    return str(value)


def settings_env(settings: Settings, only: Iterable[str] | None = None) -> dict[str, str]:
    """``CITYWATCH_*`` variables that rebuild ``settings`` in another process (``only``: dotted names).

    Fields left at their default are omitted (the other process gets the same
    default), and so are fields set to None.
    """
    fields = setting_fields()
    names = list(only) if only is not None else list(fields)
    env: dict[str, str] = {}
    for name in names:
        field = fields[name]
        value = value_at(settings, name)
        if value is None or (
            only is None
            and name not in _PATH_FIELDS
            and value == field.get_default(call_default_factory=True)
        ):
            continue
        if name in _PATH_FIELDS and isinstance(value, str) and not is_remote(value):
            value = str(Path(value.removeprefix("file://")).expanduser().resolve())
        env[variable(name)] = _encode(value)
    return env


def pool_names(prefect_yaml: Path) -> list[str]:
    """The work pools prefect.yaml's deployments use (each gets a worker)."""
    try:
        spec = yaml.safe_load(prefect_yaml.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise BadInputError(f"{prefect_yaml}: cannot read it: {exc}") from exc
    pools: list[str] = []
    for deployment in spec.get("deployments") or []:
        pool = (deployment.get("work_pool") or {}).get("name")
        if not pool:
            raise BadInputError(f"{prefect_yaml}: deployment {deployment.get('name')!r} names no work_pool")
        if pool not in pools:
            pools.append(pool)
    if not pools:
        raise BadInputError(f"{prefect_yaml}: no deployments")
    return pools


@contextmanager
def prefect_client(api: str) -> Iterator[SyncPrefectClient]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        yield client


def work_pools_ready(api: str, pools: list[str]) -> None:
    """Create the process work pools that do not exist yet."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    with prefect_client(api) as client:
        for pool in pools:
            try:
                client.create_work_pool(WorkPoolCreate(name=pool, type="process", base_job_template=template))
            except ObjectAlreadyExists:
                continue


# deployment -> the setting that is its interval (seconds): prefect.yaml holds no numbers
SCHEDULES = {
    "index-footage": "index.interval_s",
    "ingest-new": "index.ingest_interval_s",
    "watchlist-sweep": "sweep.interval_s",
}


def apply_schedules(client: SyncPrefectClient, deployment_id: UUID, name: str, settings: Settings) -> None:
    """Give deployment ``name`` the interval schedule its setting names (replacing any)."""
    import datetime as dt

    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import IntervalSchedule

    field = SCHEDULES.get(name)
    if field is None:
        return
    for schedule in client.read_deployment_schedules(deployment_id):
        client.delete_deployment_schedule(deployment_id, schedule.id)
    interval = IntervalSchedule(
        interval=dt.timedelta(
            seconds=float(getattr(getattr(settings, field.split(".")[0]), field.split(".")[1]))
        )
    )
    client.create_deployment_schedules(
        deployment_id, [DeploymentScheduleCreate(schedule=interval, active=True)]
    )


def deploy_all(
    api: str,
    project: Path,
    env: Mapping[str, str],
    log: Path,
    pools: list[str],
    *,
    paused: bool,
    settings: Settings | None = None,
) -> list[str]:
    """``prefect deploy --all`` in ``project``, then the schedules from ``settings``;
    returns ``flow/deployment`` names."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        done = subprocess.run(
            [executable("prefect"), "--no-prompt", "deploy", "--all"],
            cwd=project,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=600,
            check=False,
        )
    if done.returncode != 0:
        raise TransientError(f"prefect deploy --all failed (code {done.returncode}); see {log}")
    from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName

    names: list[str] = []
    with prefect_client(api) as client:
        found = client.read_deployments(work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=pools)))
        for deployment in found:
            if settings is not None:
                apply_schedules(client, deployment.id, deployment.name, settings)
            client.set_deployment_paused_state(deployment.id, paused)
            names.append(f"{client.read_flow(deployment.flow_id).name}/{deployment.name}")
        if paused:
            _drop_scheduled_runs(client, [d.id for d in found])
    return sorted(names)


def _drop_scheduled_runs(client: SyncPrefectClient, deployment_ids: list[UUID]) -> None:
    """Delete runs the scheduler made before the pause (no worker has started yet)."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    waiting = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING]))
    )
    runs = client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=deployment_ids)),
        flow_run_filter=waiting,
    )
    for run in runs:
        client.delete_flow_run(run.id)


def pool_has_online_worker(api: str, pool: str) -> bool:
    from prefect.client.schemas.objects import WorkerStatus

    with prefect_client(api) as client:
        return any(w.status == WorkerStatus.ONLINE for w in client.read_workers_for_work_pool(pool))
