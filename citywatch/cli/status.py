"""CLI: ``status`` — where indexing, the sweep and alert delivery stand (admin)."""

from __future__ import annotations

import argparse

from citywatch.cli import output
from citywatch.cli.args import Parser, Subcommands, add_command, add_json_argument
from citywatch.governance.auth import Action, authorized
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tasks.status import PipelineStatus, pipeline_status, status_json
from citywatch.times import format_utc


def register(sub: Subcommands[Parser]) -> None:
    p = add_command(
        sub,
        "status",
        help="lag per camera, backlog, failures, last sweep, deliveries, storage (admin)",
        description="Where the pipeline stands: per camera, the newest footage against the newest "
        "indexed segment (lag), segments waiting (backlog) and failed (with reasons); when the "
        "watchlist sweep last ran; alert deliveries still pending; bytes used under the storage "
        "root. The same figures as the service's /metrics endpoint. Needs the admin role.",
        examples=[
            "citywatch --user demo-admin status",
            "citywatch status --json  # for scripts and monitoring",
            "citywatch status --footage s3://city/footage --no-storage  # skip listing the whole root",
        ],
    )
    p.add_argument("--footage", help="footage URL (default <root>/footage)")
    p.add_argument(
        "--no-storage", action="store_true", help="do not list the storage root for the bytes used (faster)"
    )
    add_json_argument(p)
    p.set_defaults(handler=cmd_status)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    storage = Storage(settings)
    footage = storage.resolve(args.footage, "--footage") if args.footage else None
    authorized(settings, storage, Action.STATUS_READ, {"command": "status"})
    status = pipeline_status(storage, footage, with_storage=not args.no_storage)
    if args.json:
        output.as_json(status_json(status))
    else:
        show(status)
    return 0


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def show(status: PipelineStatus) -> None:
    output.line(
        f"segments: {status.segments_found} found, {status.segments_done} done, "
        f"{status.segments_failed} failed, {status.backlog} waiting; largest lag {_s(status.max_lag_s)} s"
    )
    if status.cameras:
        output.table(
            ["camera", "newest footage", "newest indexed", "lag s", "backlog", "failed"],
            [
                [
                    c.camera_id,
                    format_utc(c.newest_footage) if c.newest_footage else "-",
                    format_utc(c.newest_indexed) if c.newest_indexed else "-",
                    _s(c.lag_s),
                    c.backlog,
                    c.failed,
                ]
                for c in status.cameras
            ],
        )
    for failure in status.failures:
        output.line(f"  FAILED {failure.segment_id}: {failure.reason}")
    sweep = (
        f"{format_utc(status.last_sweep, 'seconds')} ({_s(status.sweep_age_s)} s ago)"
        if status.last_sweep
        else "never"
    )
    output.line(f"last sweep: {sweep}; {status.sweep_rows_seen} rows read in all")
    output.line(f"deliveries: {status.deliveries_pending} pending, {status.deliveries_failed} given up")
    if status.storage:
        areas = ", ".join(f"{s.area} {s.bytes:,} B" for s in status.storage)
        output.line(f"storage: {status.storage_bytes:,} bytes ({areas})")
