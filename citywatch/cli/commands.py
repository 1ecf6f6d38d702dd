"""CLI subcommands: ``sample``, ``index``, ``retention``, ``hold``; registers the other
command groups (one module each). Flows are imported lazily, after the Prefect server
is known."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from citywatch.cli import output
from citywatch.cli import search as search_commands
from citywatch.cli.args import (
    Parser,
    Subcommands,
    add_case_arguments,
    add_command,
    add_json_argument,
)
from citywatch.cli.sample_files import make_sample
from citywatch.filters import parse_time
from citywatch.settings import Settings
from citywatch.stack.prefect_server import ensure_prefect_server
from citywatch.storage import Storage
from citywatch.tasks.index.selection import segment_selection

if TYPE_CHECKING:  # flows are imported lazily, after the Prefect server is known
    from citywatch.flows.index_footage import IndexSummary


def register(sub: Subcommands[Parser]) -> None:
    p = add_command(
        sub,
        "sample",
        help="write the sample footage, cameras.yaml, ground truth and demo users",
        description="Generate synthetic CCTV footage (4 cameras, H.264 720p, real face photos "
        "composited as people walking through, cars with plates, a patrol car with GPS) "
        "under <root>/sample and <root>/footage, with its ground truth and demo users.",
        examples=[
            "citywatch --root ./data sample",
            "citywatch sample --segments-per-camera 1 --segment-seconds 10  # a small sample, fast",
        ],
    )
    p.add_argument("--seed", type=int, default=7, help="random seed of the sample (default %(default)s)")
    p.add_argument(
        "--segments-per-camera", type=int, default=2, help="segments per camera (default %(default)s)"
    )
    p.add_argument(
        "--segment-seconds", type=float, default=30.0, help="length of a segment (default %(default)s s)"
    )
    p.set_defaults(handler=cmd_sample)

    p = add_command(
        sub,
        "index",
        help="index new footage segments (faces and plates) on a Dask cluster",
        description="Find the segments under the footage URL that are not indexed yet, decode "
        "them, detect and embed faces, read plates, and write the rows to LanceDB. Needs the "
        "admin role.",
        examples=[
            "citywatch --user demo-admin index",
            "citywatch index --footage s3://city/footage --json",
            "citywatch index --camera cam-01 --since 2026-11-20T00:00Z --until 2026-11-21T00:00Z"
            "  # backfill one camera, one day",
        ],
    )
    p.add_argument("--footage", help="footage URL (default <root>/footage)")
    p.add_argument("--retry-failed", action="store_true", help="retry segments that failed before")
    p.add_argument(
        "--full-listing",
        action="store_true",
        help="list all footage, not only each camera folder from its newest known segment "
        "(finds files that landed with an older start time; runs on its own daily)",
    )
    p.add_argument("--camera", action="append", help="index only this camera's segments (repeat for more)")
    p.add_argument("--since", help="index only segments starting at or after this ISO 8601 time")
    p.add_argument("--until", help="index only segments starting before this ISO 8601 time")
    add_json_argument(p)
    p.set_defaults(handler=cmd_index)

    search_commands.register(sub)

    p = add_command(
        sub,
        "retention",
        help="delete face/plate rows past retention unless held (admin)",
        examples=["citywatch --user demo-admin retention", "citywatch retention --json"],
    )
    add_json_argument(p)
    p.set_defaults(handler=cmd_retention)

    p = add_command(
        sub,
        "hold",
        help="keep a track's rows past retention for a case (supervisor)",
        examples=['citywatch --user demo-supervisor hold TRACK_ID --case C-1 --why "evidence for court"'],
    )
    p.add_argument("track_id", help="a face or plate track id (from search results)")
    add_case_arguments(p)
    p.set_defaults(handler=cmd_hold)

    # the other command groups live in their own modules
    from citywatch.cli import alerts as commands_alerts
    from citywatch.cli import audit as commands_audit
    from citywatch.cli import export as commands_export
    from citywatch.cli import keys as commands_keys
    from citywatch.cli import login as commands_login
    from citywatch.cli import serve as commands_serve
    from citywatch.cli import stack as commands_stack
    from citywatch.cli import status as commands_status
    from citywatch.cli import sweep as commands_sweep
    from citywatch.cli import watchlist as commands_watchlist
    from citywatch.cli import webhooks as commands_webhooks

    for group in (
        commands_audit,
        commands_export,
        commands_keys,
        commands_webhooks,
        commands_watchlist,
        commands_sweep,
        commands_alerts,
        commands_stack,
        commands_serve,
        commands_login,
        commands_status,
    ):
        group.register(sub)


def cmd_sample(args: argparse.Namespace, settings: Settings) -> int:
    root = make_sample(settings, args.seed, args.segments_per_camera, args.segment_seconds)
    output.line(f"sample footage written under {root} (demo users in users.yaml)")
    return 0


def _summary_lines(summary: IndexSummary) -> None:
    output.line(
        f"segments: {summary.found} found"
        + ("" if summary.full_listing else " (listed from each camera's newest known segment)")
        + f", {summary.already_done} already indexed, "
        f"{summary.indexed} indexed now, {len(summary.failed)} failed"
        + (
            f", {summary.skipped_failed} skipped (failed before; --retry-failed)"
            if summary.skipped_failed
            else ""
        )
        + (f", {summary.skipped_leased} left to a concurrent run" if summary.skipped_leased else "")
    )
    output.line(
        f"faces: {summary.faces}, plates: {summary.plates}; "
        f"footage {summary.footage_s:.0f} s in {summary.wall_s:.1f} s"
    )
    for uri, reason in summary.failed:
        output.line(f"  FAILED {uri}: {reason}")
    for uri, warning in summary.warnings:
        output.line(f"  warning {uri}: {warning}")
    for cam in summary.unregistered_cameras:
        output.line(f"  camera {cam} is not in cameras.yaml: registered without a location")
    for problem in summary.misnamed:
        output.line(f"  skipped: {problem}")
    for conflict in summary.conflicts:
        output.line(f"  CONFLICT {conflict}")


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    selection = segment_selection(  # bad input is refused before any server starts
        args.camera,
        parse_time(args.since, "--since") if args.since else None,
        parse_time(args.until, "--until") if args.until else None,
    )
    api = ensure_prefect_server(settings.storage.state_dir)
    from citywatch.flows.index_footage import run_index

    summary = run_index(
        settings,
        args.footage,
        retry_failed=args.retry_failed,
        selection=selection,
        full_reconcile=args.full_listing,
    )
    if args.json:
        output.as_json(summary.__dict__)
    else:
        _summary_lines(summary)
        output.line(f"Prefect UI: {api.removesuffix('/api')}")
    # 1 when this run left footage unindexed (failed segments, conflicting files): so
    # that schedulers and scripts notice; the summary above names each one
    return 1 if summary.failed or summary.conflicts else 0


def cmd_retention(args: argparse.Namespace, settings: Settings) -> int:
    ensure_prefect_server(settings.storage.state_dir)
    from citywatch.flows.retention import retention

    summary = retention(settings=settings)
    if args.json:
        output.as_json(
            {
                "faces": summary.faces.__repr__(),
                "plates": summary.plates.__repr__(),
                "indexes": {"created": summary.indexes.created, "refreshed": summary.indexes.refreshed},
            }
        )
        return 0
    for counts in (summary.faces, summary.plates):
        output.line(
            f"{counts.table}: {counts.deleted_rows} rows and {counts.deleted_thumbnails} "
            f"thumbnails older than {counts.cutoff:%Y-%m-%d %H:%M} UTC deleted; "
            f"{counts.held_rows} held for cases"
        )
    output.line(f"search indexes: {summary.indexes}")
    return 0


def cmd_hold(args: argparse.Namespace, settings: Settings) -> int:
    from citywatch.governance.auth import Action, governed
    from citywatch.tasks.retention import add_hold

    storage = Storage(settings)
    with governed(
        settings, storage, Action.CASE_HOLD, args.case_id, args.justification, {"track": args.track_id}
    ) as run:
        row = add_hold(storage, run.case_id, args.track_id, run.actor.user, run.justification)
        run.result_count = 1
    output.line(f"track {row.track_id} held for case {row.case_id}: kept past retention")
    return 0
