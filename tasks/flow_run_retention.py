"""Trim Prefect's own database: delete finished flow runs older than N days.

At the default intervals (ingest every 5 s, sweep every 10 s) Prefect records about
26,000 flow runs a day, with their task runs, states, logs and artifacts; nothing
trims them otherwise. Only runs in a final state (completed, failed, cancelled,
crashed) whose expected start is before the cutoff are deleted, oldest first, in
pages, so a run in progress or scheduled is never touched.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

PAGE = 200
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")


def delete_old_flow_runs(client: SyncPrefectClient, cutoff: dt.datetime, max_runs: int = 100_000) -> int:
    """Delete finished flow runs expected to start before ``cutoff``; returns how many."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    old_and_final = FlowRunFilter(
        expected_start_time=FlowRunFilterExpectedStartTime(before_=cutoff),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType(s) for s in FINAL])),
    )
    deleted = 0
    while deleted < max_runs:
        runs = client.read_flow_runs(
            flow_run_filter=old_and_final, sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=PAGE
        )
        if not runs:
            break
        for run in runs:
            client.delete_flow_run(run.id)
            deleted += 1
    return deleted
