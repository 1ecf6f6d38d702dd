"""``citywatch demo``: the whole job on the embedded default, end to end.

sample footage -> index (demo-admin) -> face and plate searches with a different
photo of each person (demo-investigator, case DEMO-1) -> watchlist entries requested
by the investigator and approved by a supervisor (four eyes) -> sweep -> alerts for a
human to review -> reports. Every step goes through the same CLI commands a user
runs, so it is governed and audited the same way.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from citywatch.cli import output
from citywatch.cli.args import Parser, Subcommands, add_command
from citywatch.cli.sample_files import make_sample
from citywatch.errors import BadInputError
from citywatch.governance.alerts import list_alerts
from citywatch.governance.watchlist import list_entries
from citywatch.sample.dataset import GroundTruth, load_ground_truth
from citywatch.settings import Settings
from citywatch.storage import Storage, is_remote

RunCli = Callable[[Sequence[str]], int]
"""The CLI entry point, handed in by `citywatch.cli.main` (the demo drives the real CLI)."""

DEMO_ADMIN = "demo-admin"
DEMO_INVESTIGATOR = "demo-investigator"
DEMO_SUPERVISOR = "demo-supervisor"
DEMO_CASE = "DEMO-1"
DEMO_WHY = "citywatch demo on synthetic sample footage"


def _cli(run_cli: RunCli, settings: Settings, user: str, *args: str) -> int:
    code = run_cli(["--root", settings.storage.root, "--user", user, *args])
    if code != 0:
        raise BadInputError(f"demo step `citywatch {' '.join(args[:3])}` failed (exit {code})")
    return code


def _case(*extra: str) -> list[str]:
    return ["--case", DEMO_CASE, "--why", DEMO_WHY, *extra]


def _searches(run_cli: RunCli, settings: Settings, root: Path, truth: GroundTruth) -> list[str]:
    with_probe = [(p, p.probe) for p in truth.people if p.probe]
    present = sorted(
        ((p, probe) for p, probe in with_probe if p.in_footage),
        key=lambda pair: (pair[0].person_id != "obama", pair[0].person_id),
    )[:2]
    absent = [(p, probe) for p, probe in with_probe if not p.in_footage][:1]
    for person, probe in [*present, *absent]:
        where = "in the footage" if person.in_footage else "NOT in the footage"
        output.line(f"\n== face search: {person.person_id} ({where}), probe {probe}")
        _cli(
            run_cli,
            settings,
            DEMO_INVESTIGATOR,
            "search",
            "face",
            str(root / probe),
            "--top-k",
            "5",
            *_case(),
        )
    plates = [v.plate for v in getattr(truth, "vehicles", ()) if v.max_plate_px >= 80][:1]
    for plate in plates:
        output.line(f"\n== plate search: {plate}")
        _cli(run_cli, settings, DEMO_INVESTIGATOR, "search", "plate", plate, *_case())
    return [p.person_id for p, _ in present] + plates


def _watchlist(run_cli: RunCli, settings: Settings, root: Path, truth: GroundTruth) -> None:
    storage = Storage(settings)
    labels = {e.label for e in list_entries(storage) if e.case_id == DEMO_CASE}
    if "obama (demo)" not in labels:
        _cli(
            run_cli,
            settings,
            DEMO_INVESTIGATOR,
            "watchlist",
            "add",
            "face",
            "--photo",
            str(root / "sample" / "probes" / "obama.jpg"),
            "--label",
            "obama (demo)",
            "--reason",
            "missing",
            "--expires",
            "7d",
            *_case(),
        )
    plates = [v.plate for v in getattr(truth, "vehicles", ())][:1]
    for plate in plates:
        if f"{plate} (demo)" not in labels:
            _cli(
                run_cli,
                settings,
                DEMO_INVESTIGATOR,
                "watchlist",
                "add",
                "plate",
                plate,
                "--label",
                f"{plate} (demo)",
                "--reason",
                "stolen_vehicle",
                "--expires",
                "7d",
                *_case(),
            )
    for entry in list_entries(storage):
        if entry.case_id == DEMO_CASE and entry.status == "pending":
            _cli(
                run_cli,
                settings,
                DEMO_SUPERVISOR,
                "watchlist",
                "approve",
                entry.id,
                "--why",
                "demo: second person approves the request",
            )


def run_demo(settings: Settings, seed: int, run_cli: RunCli) -> int:
    """Run every step; returns the CLI exit code."""
    from citywatch.governance.auth import write_demo_users

    storage = Storage(settings)
    if is_remote(storage.root):
        raise BadInputError("demo runs on a local storage root; use index/search for s3")
    root = Path(storage.root)
    if not (root / "sample" / "ground_truth.json").is_file():
        output.line(f"1/5 writing sample footage under {root} ...")
        make_sample(settings, seed)
    else:
        output.line(f"1/5 sample footage already under {root}")
    write_demo_users(storage)  # only if the root has no users.yaml yet
    truth = load_ground_truth(root / "sample" / "ground_truth.json")
    output.line(f"2/5 indexing as {DEMO_ADMIN} ...")
    _cli(run_cli, settings, DEMO_ADMIN, "index")
    output.line(
        f"\n3/5 searching as {DEMO_INVESTIGATOR}, case {DEMO_CASE}, with a different photo of each person ..."
    )
    searched = _searches(run_cli, settings, root, truth)
    output.line(
        f"\n4/5 watchlist: requested by {DEMO_INVESTIGATOR}, approved by {DEMO_SUPERVISOR}; "
        f"sweep as {DEMO_ADMIN} ..."
    )
    _watchlist(run_cli, settings, root, truth)
    _cli(run_cli, settings, DEMO_ADMIN, "sweep")
    output.line(f"\n5/5 alerts waiting for a human ({DEMO_SUPERVISOR}) to confirm or dismiss:")
    _cli(run_cli, settings, DEMO_SUPERVISOR, "alerts", "list")
    alerts = list_alerts(storage, limit=1000)
    reports = sorted(str(p) for p in (root / "reports").glob("*.html"))
    summary = {
        "searched": searched,
        "alerts": len(alerts),
        "reports": reports,
        "audit": "citywatch --user demo-admin audit verify",
    }
    summary_path = root / "reports" / "demo-summary.json"
    summary_path.write_text(json.dumps(summary, indent=2))
    output.line(
        f"\nreports under {root / 'reports'} (summary: {summary_path}); "
        f"{len(alerts)} alerts to review; audit: `citywatch --user demo-admin audit verify`"
    )
    return 0


def register(sub: Subcommands[Parser], run_cli: RunCli) -> None:
    p = add_command(
        sub,
        "demo",
        help="sample -> index -> search -> watchlist sweep -> alerts, end to end",
        description="Write sample footage under the storage root (unless it is there already), "
        "index it, search for people of the sample with a different photo of each, request and "
        "approve watchlist entries, sweep, and list the alerts for review. Every step is the "
        "CLI command a user runs, governed and audited the same way.",
        examples=[
            "citywatch demo",
            "citywatch --root /tmp/demo demo --seed 3",
            "citywatch sample --segments-per-camera 1 --segment-seconds 10 && citywatch demo"
            "  # a smaller sample, faster",
        ],
    )
    p.add_argument("--seed", type=int, default=7, help="random seed of the sample (default %(default)s)")

    def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
        return run_demo(settings, args.seed, run_cli)

    p.set_defaults(handler=cmd_demo)
