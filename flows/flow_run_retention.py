"""Deployment ``flow-run-retention`` (daily): delete Prefect flow runs older than
``flow_run_keep_days`` (tasks/flow_run_retention.py), so the orchestrator's database
stays the size of a few days of runs. Admin only; audited with the count."""

from __future__ import annotations

import datetime as dt

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client

from citywatch.governance.auth import Action, governed
from citywatch.schemas import utcnow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tasks.flow_run_retention import delete_old_flow_runs


@flow(name="flow-run-retention", log_prints=False)
def flow_run_retention(settings: Settings | None = None, now: dt.datetime | None = None) -> int:
    """Delete finished flow runs that started more than ``flow_run_keep_days`` ago."""
    settings = settings or Settings()
    storage = Storage(settings)
    cutoff = (now or utcnow()) - dt.timedelta(days=settings.ops.flow_run_keep_days)
    params = {"keep_days": settings.ops.flow_run_keep_days, "cutoff": cutoff.isoformat()}
    with governed(settings, storage, Action.RETENTION_RUN, None, None, params) as run:
        with get_client(sync_client=True) as client:
            deleted = delete_old_flow_runs(client, cutoff)
        run.result_count = deleted
        run.detail = f"{deleted} Prefect flow runs finished before {cutoff.isoformat()} deleted"
    get_run_logger().info("%d flow runs older than %s deleted", deleted, cutoff.isoformat())
    return deleted
