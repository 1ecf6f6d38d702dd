"""The Prefect artifact of one index run: what it did, and where every camera stands.

:func:`index_run_markdown` is plain (tested without Prefect); :func:`publish_index_run`
creates the markdown artifact (key ``index-run``) and a table artifact of lag per
camera (key ``index-camera-lag``) in the current flow run.
"""

from __future__ import annotations

from typing import Protocol

from citywatch.stack.automations import LAG_EVENT
from citywatch.tasks.markdown import md_cell, md_table
from citywatch.tasks.status import PipelineStatus
from citywatch.times import format_utc

RUN_KEY = "index-run"
LAG_KEY = "index-camera-lag"
MAX_FAILURES = 50


class IndexRun(Protocol):
    """What an index run reports (flows/index_footage.py's IndexSummary has these)."""

    footage: str
    found: int
    already_done: int
    skipped_failed: int
    indexed: int
    skipped_leased: int
    failed: list[tuple[str, str]]
    misnamed: list[str]
    conflicts: list[str]
    faces: int
    plates: int
    footage_s: float
    wall_s: float


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def run_states(run: IndexRun) -> list[tuple[str, int]]:
    """This run's segments by what happened to them."""
    return [
        ("indexed", run.indexed),
        ("failed", len(run.failed)),
        ("already done", run.already_done),
        ("failed before (not retried)", run.skipped_failed),
        ("held by another run", run.skipped_leased),
        ("misnamed files", len(run.misnamed)),
        ("conflicting files", len(run.conflicts)),
    ]


def camera_lag_rows(status: PipelineStatus) -> list[dict[str, object]]:
    return [
        {
            "camera": c.camera_id,
            "newest_footage": format_utc(c.newest_footage) if c.newest_footage else "",
            "newest_indexed": format_utc(c.newest_indexed) if c.newest_indexed else "",
            "lag_s": c.lag_s,
            "backlog": c.backlog,
            "failed": c.failed,
        }
        for c in status.cameras
    ]


def index_run_markdown(run: IndexRun, status: PipelineStatus) -> str:
    """The run's counts, its failures with reasons, and lag per camera after it."""
    parts = [
        "# Index run",
        f"Footage `{md_cell(run.footage)}`: {run.found} segments found, {run.indexed} indexed, "
        f"{len(run.failed)} failed, {run.footage_s:.0f} s of footage in {run.wall_s:.1f} s.",
        "## This run",
        md_table(["segments", "count"], run_states(run)),
        md_table(
            ["figure", "value"],
            [("footage seconds", f"{run.footage_s:.1f}"), ("faces", run.faces), ("plates", run.plates)],
        ),
    ]
    if run.failed:
        parts += [
            "## Failures",
            md_table(["segment", "reason"], [(uri, reason) for uri, reason in run.failed[:MAX_FAILURES]]),
        ]
        if len(run.failed) > MAX_FAILURES:
            parts.append(f"... and {len(run.failed) - MAX_FAILURES} more (`citywatch status`).")
    parts += [
        "## All segments after this run",
        md_table(
            ["state", "segments"],
            [
                ("done", status.segments_done),
                ("failed", status.segments_failed),
                ("waiting (backlog)", status.backlog),
            ],
        ),
        "## Lag per camera",
        *(
            [
                "Incremental run: newest footage per camera is from this run's listing and the "
                "discovery marks, not a full listing (a late file older than a mark shows at the "
                "next full reconcile)."
            ]
            if status.lag_from_marks
            else []
        ),
        md_table(
            ["camera", "newest footage", "newest indexed", "lag s", "backlog", "failed"],
            [
                (
                    c.camera_id,
                    format_utc(c.newest_footage) if c.newest_footage else "-",
                    format_utc(c.newest_indexed) if c.newest_indexed else "-",
                    _seconds(c.lag_s),
                    c.backlog,
                    c.failed,
                )
                for c in status.cameras
            ],
        ),
    ]
    return "\n\n".join(parts) + "\n"


def lag_exceeded(status: PipelineStatus, limit_s: float) -> dict[str, object] | None:
    """The payload of a lag-exceeded event when a camera lags more than ``limit_s``; else None."""
    lagging = [c for c in status.cameras if c.lag_s is not None and c.lag_s > limit_s]
    if not lagging:
        return None
    worst = max(lagging, key=lambda c: c.lag_s or 0.0)
    return {
        "max_lag_s": worst.lag_s,
        "camera": worst.camera_id,
        "cameras_lagging": [c.camera_id for c in lagging],
        "limit_s": limit_s,
        "backlog": status.backlog,
    }


def publish_index_run(run: IndexRun, status: PipelineStatus, lag_alert_s: float) -> None:
    """Create the run's artifacts; emit ``citywatch.index.lag-exceeded`` if a camera lags."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact
    from prefect.events import emit_event

    payload = lag_exceeded(status, lag_alert_s)
    if payload is not None:
        emit_event(
            event=LAG_EVENT,
            resource={"prefect.resource.id": f"citywatch.camera.{payload['camera']}"},
            payload=payload,
        )

    create_markdown_artifact(
        index_run_markdown(run, status),
        key=RUN_KEY,
        description=f"{run.indexed} indexed, {len(run.failed)} failed, "
        f"{run.faces} faces, {run.plates} plates",
    )
    create_table_artifact(
        camera_lag_rows(status) or [{"camera": "", "lag_s": None}],
        key=LAG_KEY,
        description="Newest footage vs newest indexed segment per camera (seconds), after this run.",
    )
