"""Deployment ``watchlist-sweep``: new faces/plates rows vs the watchlist -> alerts -> sinks.

Deployed on a short interval (``sweep_interval_s``, default 10 s) with a concurrency
limit of one run, new runs cancelled while one runs (prefect.yaml). Even without that
limit two sweeps cannot double-alert: see tasks/sweep/. ``run_sweep_loop`` is the
watcher alternative (``citywatch sweep --watch``): one process, one flow run per tick,
no per-run process start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from prefect import flow, get_run_logger
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.states import State

from citywatch.governance.audit_log import AuditLog
from citywatch.governance.auth import Action, authorized
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tasks.sweep import SweepResult, sweep_task
from citywatch.tasks.sweep.artifact import publish_sweep
from citywatch.tasks.sweep.notify import DeliveryReport, deliver_task


@dataclass(frozen=True)
class SweepSummary:
    sweep: SweepResult
    delivery: DeliveryReport


log = logging.getLogger(__name__)


@flow(name="watchlist-sweep", log_prints=False)
def watchlist_sweep(settings: Settings | None = None) -> SweepSummary:
    """Match rows written since the last sweep; write alerts; then deliver them."""
    settings = settings or Settings()
    logger = get_run_logger()
    storage = Storage(settings)
    actor = authorized(settings, storage, Action.SWEEP_RUN)  # alerts themselves are the record
    result = sweep_task(settings)
    if result.skipped:  # rows that will never be matched: on the record, not only in a log
        for row in result.skipped:
            logger.warning("%s row %s skipped: %s", row.table, row.row_id, row.reason)
        AuditLog(storage).record(
            user=actor.user,
            role=actor.role_text,
            action=Action.SWEEP_RUN.value,
            outcome="failed",
            result_count=result.alerts_new,
            detail=f"{len(result.skipped)} new rows skipped (malformed ids, never matched): "
            + "; ".join(f"{r.table} {r.row_id}: {r.reason}" for r in result.skipped[:20]),
        )
    logger.info(
        "%d face rows and %d plate rows read; %d active entries; %d matches, %d new alerts in %.2f s",
        result.faces_read,
        result.plates_read,
        result.entries_active,
        result.matched,
        result.alerts_new,
        result.wall_s,
    )
    # the alerts and the watermark are committed: a slow receiver only delays this step
    report = deliver_task(settings)
    if report.claimed:
        logger.info("deliveries: %d sent, %d failed", report.delivered, report.failed)
    publish_sweep(storage, result, report)
    return SweepSummary(result, report)


def run_periodically(
    run_flow: Callable[..., State], settings: Settings, interval_s: float, ticks: int | None = None
) -> int:
    """Run a flow every ``interval_s`` seconds, ``ticks`` times or forever (a watcher).

    One process, one flow run per tick, no per-run process start. A failed run is
    recorded as a failed flow run and logged; the next tick retries.

    Prefect's flow-run heartbeat is off for these runs: it exists to notice long runs
    that crashed (one every 180 s), its thread sleeps in 1-s steps, and the end of every
    flow and subflow run waits for it: up to 1 s each, 2-4 s of a tick that indexes a
    segment and sweeps. A watcher that stops is noticed by the lag and sweep-stopped
    automations instead (citywatch/stack/automations.py).
    """
    done = 0
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        while ticks is None or done < ticks:
            started = time.monotonic()
            state = run_flow(settings=settings, return_state=True)
            if not state.is_completed():
                log.warning("%s: %s", state.name, state.message)
            done += 1
            if ticks is None or done < ticks:
                time.sleep(max(0.0, interval_s - (time.monotonic() - started)))
    return done


def run_sweep_loop(settings: Settings, *, interval_s: float | None = None, ticks: int | None = None) -> int:
    """Sweep every ``interval_s`` (default ``sweep_interval_s``), ``ticks`` times or forever."""
    return run_periodically(watchlist_sweep, settings, interval_s or settings.sweep.interval_s, ticks)
