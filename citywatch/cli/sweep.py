"""CLI: ``sweep`` (match new sightings against the watchlist) and ``ingest-new``."""

from __future__ import annotations

import argparse
import dataclasses

from citywatch.cli import output
from citywatch.cli.args import Parser, Subcommands, add_command, add_json_argument
from citywatch.settings import Settings
from citywatch.stack.prefect_server import ensure_prefect_server


def register(sub: Subcommands[Parser]) -> None:
    p = add_command(
        sub,
        "sweep",
        help="match new sightings against the watchlist, raise alerts",
        description="Match the face and plate rows indexed since the last sweep against the "
        "active watchlist entries, raise an alert for each new match (for a person to review) "
        "and deliver it to the configured sinks.",
        examples=["citywatch --user demo-admin sweep", "citywatch sweep --watch --interval 30"],
    )
    p.add_argument("--watch", action="store_true", help="keep sweeping every --interval seconds")
    p.add_argument("--interval", type=float, help="seconds between sweeps (default sweep_interval_s)")
    add_json_argument(p)
    p.set_defaults(handler=cmd_sweep)

    p = add_command(
        sub,
        "ingest-new",
        help="index segments that just landed (in-process, fast)",
        examples=["citywatch --user demo-admin ingest-new", "citywatch ingest-new --watch --interval 10"],
    )
    p.add_argument("--watch", action="store_true", help="keep ingesting every --interval seconds")
    p.add_argument("--interval", type=float, help="seconds between runs (default ingest_interval_s)")
    p.set_defaults(handler=cmd_ingest_new)


def cmd_sweep(args: argparse.Namespace, settings: Settings) -> int:
    ensure_prefect_server(settings.storage.state_dir)
    from citywatch.flows.watchlist_sweep import run_sweep_loop, watchlist_sweep

    if args.watch:
        output.line(f"sweeping every {args.interval or settings.sweep.interval_s:g} s (Ctrl-C stops)")
        run_sweep_loop(settings, interval_s=args.interval)
        return 0
    summary = watchlist_sweep(settings=settings)
    if args.json:
        output.as_json(
            {"sweep": dataclasses.asdict(summary.sweep), "delivery": dataclasses.asdict(summary.delivery)}
        )
        return 0
    s, d = summary.sweep, summary.delivery
    output.line(
        f"{s.faces_read} face rows, {s.plates_read} plate rows read; {s.entries_active} "
        f"active entries; {s.matched} matches, {s.alerts_new} new alerts"
    )
    for row in s.skipped:
        output.line(f"  SKIPPED {row.table} row {row.row_id}: {row.reason}")
    output.line(f"deliveries: {d.delivered} sent, {d.failed} failed")
    for sink, error in d.errors:
        output.line(f"  {sink}: {error}")
    return 0


def cmd_ingest_new(args: argparse.Namespace, settings: Settings) -> int:
    ensure_prefect_server(settings.storage.state_dir)
    from citywatch.flows.ingest_new import ingest_new, run_ingest_loop

    if args.watch:
        output.line(f"ingesting every {args.interval or settings.index.ingest_interval_s:g} s (Ctrl-C stops)")
        run_ingest_loop(settings, interval_s=args.interval)
        return 0
    summary = ingest_new(settings=settings)
    output.line(
        f"{summary.indexed} new segment(s) indexed, {len(summary.failed)} failed, {summary.faces} faces"
    )
    return 0
