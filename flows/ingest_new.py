"""Deployment ``ingest-new``: index segments that just landed, in-process, within seconds.

The same index path as ``index-footage`` (tasks.catalog.plan_index ->
tasks.index_segment.index_segment; new footage found incrementally, see
tasks/index/discovery.py), but run on a thread pool inside the flow's own process
instead of a Dask cluster: no cluster start per run, the face model stays loaded
between segments. Deployed on a short interval (``ingest_interval_s``,
default 5 s), one run at a time; ``index-footage`` remains the bulk/backfill path.
A run that finds nothing new ends before starting any task; a run that indexes
something sweeps the watchlist as soon as the rows are committed (``ingest_sweeps``;
before the run's report, audit record and analyst dataset), so a face in a new segment
alerts seconds after the segment lands, not after the next sweep tick.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from citywatch.flows.index_footage import IndexSummary, index_footage
from citywatch.flows.watchlist_sweep import run_periodically
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tasks.index.catalog import plan_index


@flow(name="ingest-new", log_prints=False)
def ingest_new(
    footage: str | None = None, settings: Settings | None = None, full_reconcile: bool = False
) -> IndexSummary:
    """Index only the segments under ``footage`` (default ``<root>/footage``) not indexed yet.

    A tick lists each camera folder from its newest known segment only (cost in
    proportion to what is new); every ``index.full_reconcile_every_s``, or with
    ``full_reconcile``, it lists all footage (tasks/index/discovery.py).
    """
    settings = settings or Settings()
    storage = Storage(settings)
    footage_url = storage.resolve(footage, "--footage") if footage else storage.url("footage")
    plan = plan_index(storage, footage_url, mode="reconcile" if full_reconcile else "auto")
    if not plan.pending:
        return IndexSummary(
            footage=footage_url,
            found=len(plan.discovery.segments),
            already_done=plan.already_done,
            skipped_failed=plan.previously_failed,
            full_listing=plan.full_listing,
        )
    get_run_logger().info("%d new segment(s): indexing in-process", len(plan.pending))
    # the marks hold at the pending segments, so this run's own listing finds them again
    # sweeps as soon as the segment's rows are committed (before the run's report, audit and
    # analyst dataset): safe alongside the scheduled sweep (exactly once), which catches up
    # if it fails
    return index_footage(
        footage=footage_url, settings=settings, in_process=True, sweep_on_commit=settings.index.ingest_sweeps
    )


def run_ingest_loop(settings: Settings, *, interval_s: float | None = None, ticks: int | None = None) -> int:
    """Run ``ingest_new`` every ``interval_s`` (default ``ingest_interval_s``)."""
    return run_periodically(ingest_new, settings, interval_s or settings.index.ingest_interval_s, ticks)
