"""``citywatch up`` / ``down``: the local stack (see citywatch/stack.py)."""

from __future__ import annotations

import argparse
import importlib.util

from citywatch.cli import output
from citywatch.cli.args import Parser, Subcommands, add_command, add_json_argument
from citywatch.settings import Settings
from citywatch.stack.down import stop_stack
from citywatch.stack.flow_env import LOCAL_S3_ROOT, state_path
from citywatch.stack.up import (
    ENV_FILE,
    Stack,
    StackOptions,
    find_project,
    start_stack,
)


def register(sub: Subcommands[Parser]) -> None:
    p = add_command(
        sub,
        "up",
        help="start a local stack: Prefect server + workers serving prefect.yaml's "
        "deployments, a Dask cluster, an S3 server",
        examples=[
            "citywatch up",
            "citywatch up --local-s3 --paused  # storage on the stack's S3 server, schedules paused",
            "citywatch up --postgres  # Prefect's database on a local PostgreSQL, not SQLite",
        ],
    )
    p.add_argument(
        "--project",
        help="directory with prefect.yaml (default: the current directory, else the citywatch checkout)",
    )
    p.add_argument("--prefect-port", type=int, default=4200, help="Prefect server port; 0: any free port")
    p.add_argument("--dask-port", type=int, default=8786, help="Dask scheduler port (default %(default)s)")
    p.add_argument(
        "--dashboard-port", type=int, default=8787, help="Dask dashboard port (default %(default)s)"
    )
    p.add_argument("--s3-port", type=int, default=9000, help="S3 server port (default %(default)s)")
    p.add_argument(
        "--paused",
        action="store_true",
        help="register the deployments with their schedules paused (run on demand)",
    )
    p.add_argument(
        "--local-s3",
        action="store_true",
        help=f"flow runs use the stack's S3 server as storage root ({LOCAL_S3_ROOT})",
    )
    p.add_argument(
        "--postgres",
        action="store_true",
        help="run the Prefect server on a local PostgreSQL (data in <state_dir>/postgres) instead of SQLite",
    )
    p.add_argument(
        "--postgres-port", type=int, default=5432, help="PostgreSQL port (default %(default)s; 0: any)"
    )
    p.add_argument("--wait", type=float, default=120.0, help="seconds each service may take to start")
    add_json_argument(p)
    p.set_defaults(handler=cmd_up)

    p = add_command(
        sub,
        "down",
        help="stop everything `citywatch up` (or any command) started",
        examples=["citywatch down"],
    )
    add_json_argument(p)
    p.set_defaults(handler=cmd_down)


def _print_stack(stack: Stack, settings: Settings) -> None:
    output.line(f"Prefect UI:       {stack.prefect_ui}")
    if stack.dask_dashboard:
        dash = f"{stack.dask_dashboard}/status"
        if importlib.util.find_spec("bokeh") is None:
            dash += "  (install bokeh>=3.1 for the charts; /health and /json answer without it)"
        output.line(f"Dask dashboard:   {dash}")
    output.line(f"Dask scheduler:   {stack.dask_address}")
    output.line(f"S3 endpoint:      {stack.s3_endpoint}  (bucket citywatch)")
    output.line(f"storage root:     {stack.storage_root}")
    output.line(f"deployments:      {', '.join(stack.deployments)}")
    if stack.automations:
        notify = (
            "the ops webhook"
            if settings.ops.notify_url
            else "the Prefect UI (CITYWATCH_OPS__NOTIFY_URL unset)"
        )
        output.line(f"automations:      {', '.join(stack.automations)} -> {notify}")
    output.line(f"logs:             {stack.logs}")
    output.line(f"use it elsewhere: source {state_path(settings) / ENV_FILE}")


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    options = StackOptions(
        project=find_project(args.project),
        prefect_port=args.prefect_port,
        dask_port=args.dask_port,
        dashboard_port=args.dashboard_port,
        s3_port=args.s3_port,
        paused=args.paused,
        local_s3=args.local_s3,
        wait_s=args.wait,
        postgres=args.postgres,
        postgres_port=args.postgres_port,
    )
    stack, already = start_stack(settings, options)
    if args.json:
        output.as_json(
            {"already_running": already, **stack.__dict__, "services": [s.__dict__ for s in stack.services]}
        )
        return 0
    output.line("the stack was already running" if already else "the stack is up")
    _print_stack(stack, settings)
    if not settings.user:
        output.line(
            "note: no CITYWATCH_USER set, so scheduled runs (index, sweep) will be "
            "refused; set it to a service user from users.yaml and run up again"
        )
    return 0


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    done = stop_stack(settings)
    if args.json:
        output.as_json({"stopped": done.stopped, "left": done.left})
        return 0
    if done.stopped:
        output.line(f"stopped: {', '.join(done.stopped)}")
    elif not done.left:
        output.line("nothing was running")
    for why in done.left:
        output.line(f"  {why}")
    return 0
