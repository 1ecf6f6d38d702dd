"""Deployment ``index-footage``: find new segments and index them on a Dask cluster."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import as_completed
from prefect.logging.loggers import LoggingAdapter
from prefect.runtime import flow_run
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner

from citywatch.flows.watchlist_sweep import watchlist_sweep
from citywatch.footage import SegmentRef
from citywatch.governance.audit_log import AuditLog
from citywatch.governance.auth import Action, authorized
from citywatch.governance.run_records import IndexRunAudit, IndexRunCounts
from citywatch.schemas import CameraRow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tasks.dask_workers import QuietClose
from citywatch.tasks.index.catalog import DiscoveryMode, plan_index, register_cameras
from citywatch.tasks.index.report_artifact import publish_index_run
from citywatch.tasks.index.segment import SegmentOutcome, index_segments_task
from citywatch.tasks.index.selection import SegmentSelection, segment_selection, select_pending
from citywatch.tasks.index.stages import StageCpu
from citywatch.tasks.publish import is_stale, publish_analytics
from citywatch.tasks.status import pipeline_status, run_status


@dataclass
class IndexSummary:
    """What one index run did (returned to the CLI and shown in the Prefect UI)."""

    footage: str
    found: int = 0
    already_done: int = 0
    skipped_failed: int = 0
    indexed: int = 0
    skipped_leased: int = 0  # held or finished by a concurrent run
    failed: list[tuple[str, str]] = field(default_factory=list)  # (uri, reason)
    misnamed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # segment ids with 2+ files: not indexed
    unregistered_cameras: list[str] = field(default_factory=list)
    faces: int = 0
    plates: int = 0
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (uri, warning)
    footage_s: float = 0.0
    wall_s: float = 0.0
    stages: StageCpu = field(default_factory=StageCpu)  # CPU seconds per stage, all segments
    peak_worker_rss_mb: float = 0.0  # the largest peak memory of a process that indexed
    full_listing: bool = True  # False: only each camera folder from its mark was listed
    newest_listed: dict[str, dt.datetime] = field(default_factory=dict)  # camera -> newest start listed
    pending_ids: list[str] = field(default_factory=list)  # segments the run found to index


def dask_task_runner(settings: Settings) -> DaskTaskRunner:
    """An existing scheduler when ``dask_address`` is set, else a local process cluster."""
    if settings.dask.address:
        return DaskTaskRunner(address=settings.dask.address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": settings.dask.workers,
            "threads_per_worker": settings.dask.threads_per_worker,
            "processes": True,
            "dashboard_address": ":0",
            "plugins": (QuietClose(),),  # no CommClosedError traceback when it closes
        },
    )


@flow(name="index-footage", log_prints=False)
def index_footage(
    footage: str | None = None,
    settings: Settings | None = None,
    retry_failed: bool = False,
    in_process: bool = False,
    cameras: list[str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    full_reconcile: bool = False,
    sweep_on_commit: bool = False,
) -> IndexSummary:
    """Index every segment under ``footage`` (default ``<root>/footage``) not yet indexed.

    The segments fan out on Dask (``dask_task_runner``) in a subflow, so a deployment
    run uses the cluster too; ``in_process`` uses threads instead (the fast ingest path).
    ``cameras``, ``since`` and ``until`` (optional) narrow the run to those cameras' segments
    starting in ``[since, until)``: a backfill started from the Prefect UI.
    New footage is found incrementally (each camera folder listed from its newest
    known segment, tasks/index/discovery.py); all of it is listed when
    ``full_reconcile`` is set, every ``index.full_reconcile_every_s``, or with
    ``retry_failed``. ``sweep_on_commit``: sweep the watchlist as soon as a task's rows are
    committed (the ingest path), before the run's report, audit and analyst dataset.
    """
    settings = settings or Settings()
    storage = Storage(settings)
    footage_url = storage.resolve(footage, "--footage") if footage else storage.url("footage")
    selection = segment_selection(cameras, since, until)
    params: dict[str, object] = {"footage": footage_url, "retry_failed": retry_failed}
    if full_reconcile:
        params["full_reconcile"] = True
    if not selection.everything:
        params["selection"] = selection.describe()
    actor = authorized(settings, storage, Action.INDEX_RUN, params)
    # TaskRunner is invariant in its future type, and with_options asks for the base future:
    # Any lets either runner in (both are TaskRunners whose futures are PrefectFutures).
    runner: TaskRunner[Any] = (
        ThreadPoolTaskRunner(max_workers=settings.dask.workers) if in_process else dask_task_runner(settings)
    )
    summary = index_segments.with_options(task_runner=runner)(
        footage_url,
        settings,
        retry_failed,
        actor.user,
        actor.role_text,
        selection,
        full_reconcile,
        sweep_on_commit,
    )
    # a full listing's run shows the full snapshot; an incremental one builds the lag table
    # from what it listed and the discovery marks (its cost: what is new, not all footage)
    status = (
        pipeline_status(storage, footage_url, with_storage=False)
        if summary.full_listing
        else run_status(storage, footage_url, summary.newest_listed, summary.pending_ids)
    )
    publish_index_run(summary, status, settings.ops.lag_alert_s)
    # runs that found nothing new are not audited; footage left out (failed, misnamed,
    # conflicting files, e.g. a folder that is not a valid camera id) is on the record
    if summary.indexed or summary.failed or summary.misnamed or summary.conflicts:
        AuditLog(storage).record(
            user=actor.user,
            role=actor.role_text,
            action=Action.INDEX_RUN.value,
            outcome="ok",
            params=params,
            result_count=summary.indexed,
            detail=_audit_detail(summary),
        )
    return summary


def _audit_detail(summary: IndexSummary, named: int = 10) -> str:
    """What the run did, and the first ``named`` files it left out, with why."""
    parts = [
        f"{summary.indexed} indexed, {len(summary.failed)} failed, {summary.faces} faces, "
        f"{summary.plates} plates"
    ]
    for what, problems in (("skipped", summary.misnamed), ("conflicts", summary.conflicts)):
        if problems:
            parts.append(f"{len(problems)} {what}: " + "; ".join(problems[:named]))
    return "; ".join(parts)


@flow(name="index-segments", log_prints=False)
def index_segments(
    footage_url: str,
    settings: Settings,
    retry_failed: bool,
    user: str,
    role: str,
    selection: SegmentSelection | None = None,
    full_reconcile: bool = False,
    sweep_on_commit: bool = False,
) -> IndexSummary:
    """Plan, then index each pending segment as a task on the flow's task runner.

    With segments to index, an ``index_start`` audit record is written before the
    first is claimed and an ``index_end`` record (counts, failures) after the last
    and after the analyst dataset is republished; a run that finds nothing new writes
    neither (docs/governance.md).
    """
    storage = Storage(settings)
    logger = get_run_logger()
    started = time.perf_counter()
    selection = selection or SegmentSelection()
    # a backfill (cameras, since, until) may be after footage copied in with old start
    # times, which only a full listing finds
    mode: DiscoveryMode = "reconcile" if full_reconcile or not selection.everything else "auto"
    plan, left_out = select_pending(
        plan_index(storage, footage_url, retry_failed=retry_failed, mode=mode), selection
    )
    if left_out:
        logger.info(
            "%d pending segments outside the selection (%s) left for later", left_out, selection.describe()
        )
    seen = {ref.camera_id for ref in plan.discovery.segments}
    cameras, missing = register_cameras(storage, settings, seen)
    summary = IndexSummary(
        footage=footage_url,
        found=len(plan.discovery.segments),
        already_done=plan.already_done,
        skipped_failed=plan.previously_failed,
        misnamed=plan.discovery.misnamed,
        conflicts=plan.discovery.conflicts,
        unregistered_cameras=missing,
        full_listing=plan.full_listing,
        newest_listed=newest_per_camera(plan.discovery.segments),
        pending_ids=[ref.id for ref in plan.pending],
    )
    for problem in plan.discovery.misnamed:
        logger.warning("not a segment: %s", problem)
    for conflict in plan.discovery.conflicts:
        logger.warning("conflict: %s", conflict)
    logger.info(
        "%d segments found (%s), %d already indexed, %d to index",
        summary.found,
        "full listing" if plan.full_listing else "listed from each camera's mark",
        plan.already_done,
        len(plan.pending),
    )
    if not plan.pending:
        if is_stale(storage):  # an earlier run indexed but could not publish
            logger.info("%s", publish_analytics(storage))
        summary.wall_s = time.perf_counter() - started
        return summary
    run_id = str(flow_run.id or uuid.uuid4().hex)
    audit = IndexRunAudit(AuditLog(storage), user=user, role=role, footage=footage_url, run_id=run_id)
    audit.start(len(plan.pending))
    try:
        on_commit = (lambda: _sweep_now(settings, logger)) if sweep_on_commit else None
        _index_pending(plan.pending, cameras, settings, summary, logger, on_commit)
        logger.info("%s", publish_analytics(storage))  # what analysts read (citywatch/derived.py)
    except BaseException as exc:  # the run itself failed (not one segment): record it, re-raise
        audit.end(_counts(summary), error=f"{type(exc).__name__}: {exc}")
        raise
    audit.end(_counts(summary))
    summary.wall_s = time.perf_counter() - started
    logger.info(
        "indexed %d segments (%.0f s of footage) in %.1f s: %d faces, %d plates, %d failed",
        summary.indexed,
        summary.footage_s,
        summary.wall_s,
        summary.faces,
        summary.plates,
        len(summary.failed),
    )
    return summary


def newest_per_camera(refs: list[SegmentRef]) -> dict[str, dt.datetime]:
    newest: dict[str, dt.datetime] = {}
    for ref in refs:
        newest[ref.camera_id] = max(ref.start, newest.get(ref.camera_id, ref.start))
    return newest


def _counts(summary: IndexSummary) -> IndexRunCounts:
    return IndexRunCounts(
        indexed=summary.indexed,
        failed=len(summary.failed),
        faces=summary.faces,
        plates=summary.plates,
        skipped_leased=summary.skipped_leased,
    )


def _index_pending(
    pending: list[SegmentRef],
    cameras: dict[str, CameraRow],
    settings: Settings,
    summary: IndexSummary,
    logger: logging.Logger | LoggingAdapter,
    on_commit: Callable[[], None] | None = None,
) -> None:
    """Fan the pending segments out on the flow's task runner; count outcomes into
    ``summary``; ``on_commit`` runs each time a task has committed rows."""
    run_token = uuid.uuid4().hex
    segment_task = index_segments_task.with_options(
        retries=settings.index.task_retries, retry_delay_seconds=settings.index.task_retry_delay_s
    )
    batches = task_batches(pending, settings.index.segments_per_task)
    futures = [
        segment_task.submit(batch, cameras[batch[0].camera_id], settings, run_token, batch_label(batch))
        for batch in batches
    ]
    done = 0
    for future in as_completed(futures):
        outcomes = future.result()
        for outcome in outcomes:
            done += 1
            _count(summary, outcome)
        if on_commit is not None and any(o.state == "done" for o in outcomes):
            on_commit()
        logger.info(
            "progress: %d/%d segments, %d faces, %d plates, %d failed",
            done,
            len(pending),
            summary.faces,
            summary.plates,
            len(summary.failed),
        )


def _sweep_now(settings: Settings, logger: logging.Logger | LoggingAdapter) -> None:
    """The watchlist sweep as a subflow, right after rows landed (safe beside the scheduled
    sweep: exactly once); if it fails, the scheduled one catches up."""
    state = watchlist_sweep(settings=settings, return_state=True)
    if not state.is_completed():
        logger.warning("sweep after commit did not complete (%s): the scheduled sweep catches up", state.name)


def task_batches(pending: list[SegmentRef], per_task: int) -> list[list[SegmentRef]]:
    """``pending`` in runs of up to ``per_task`` consecutive segments of one camera (in
    ``pending``'s order: cameras as they first appear, each camera's segments by start)."""
    if per_task == 1:
        return [[ref] for ref in pending]
    by_camera: dict[str, list[SegmentRef]] = {}
    for ref in pending:
        by_camera.setdefault(ref.camera_id, []).append(ref)
    runs = [sorted(refs, key=lambda r: (r.start, r.id)) for refs in by_camera.values()]
    return [refs[i : i + per_task] for refs in runs for i in range(0, len(refs), per_task)]


def batch_label(batch: list[SegmentRef]) -> str:
    return batch[0].id if len(batch) == 1 else f"{batch[0].id} +{len(batch) - 1}"


def _count(summary: IndexSummary, outcome: SegmentOutcome) -> None:
    summary.footage_s += outcome.footage_s
    summary.stages.add(outcome.stages)
    summary.peak_worker_rss_mb = max(summary.peak_worker_rss_mb, outcome.peak_rss_mb)
    if outcome.state == "done":
        summary.indexed += 1
        summary.faces += outcome.faces
        summary.plates += outcome.plates
        if outcome.error:
            summary.warnings.append((outcome.uri, outcome.error))
    elif outcome.state == "skipped":
        summary.skipped_leased += 1
    else:
        summary.failed.append((outcome.uri, outcome.error))


def run_index(
    settings: Settings,
    footage: str | None = None,
    retry_failed: bool = False,
    selection: SegmentSelection | None = None,
    full_reconcile: bool = False,
) -> IndexSummary:
    """Run the index flow (segments on Dask: local cluster or ``dask_address``)."""
    chosen = selection or SegmentSelection()
    return index_footage(
        footage=footage,
        settings=settings,
        retry_failed=retry_failed,
        cameras=list(chosen.cameras) or None,
        since=chosen.since,
        until=chosen.until,
        full_reconcile=full_reconcile,
    )
