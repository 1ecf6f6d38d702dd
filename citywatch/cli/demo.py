"""``citywatch demo``: the whole job on the embedded default, end to end.

sample footage -> demo accounts with random passwords (printed once) -> index
(demo-admin, a worker job run directly) -> the citywatch service started on a loopback
port; the investigator and supervisor sign in with their passwords -> face and plate
searches with a different photo of each person (demo-investigator, case DEMO-1) ->
watchlist entries requested by the investigator and approved by a supervisor (four
eyes) -> sweep (a worker job) -> alerts for a human to review -> reports. The people's
steps are the CLI commands a user runs in client mode, through the service as the
signed-in person, governed and audited the same way.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from citywatch.cli import output
from citywatch.cli.args import Parser, Subcommands, add_command
from citywatch.cli.demo_people import SignedIn, acting_as, demo_accounts, sign_in, sign_out
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


class _Steps:
    """Runs demo steps with the real CLI: a signed-in person's through the service (client
    mode, their API token); the worker jobs (index, sweep) directly as ``--user``."""

    def __init__(self, run_cli: RunCli, settings: Settings) -> None:
        self.run_cli = run_cli
        self.settings = settings
        self.base_url = ""
        self.people: dict[str, SignedIn] = {}

    def __call__(self, user: str, *args: str) -> int:
        person = self.people.get(user)
        if person is None:
            code = self.run_cli(["--root", self.settings.storage.root, "--user", user, *args])
        else:
            with acting_as(self.base_url, person):
                code = self.run_cli(["--root", self.settings.storage.root, *args])
        if code != 0:
            raise BadInputError(f"demo step `citywatch {' '.join(args[:3])}` as {user} failed (exit {code})")
        return code


def _case(*extra: str) -> list[str]:
    return ["--case", DEMO_CASE, "--why", DEMO_WHY, *extra]


def _searches(_cli: _Steps, root: Path, truth: GroundTruth) -> list[str]:
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
        _cli(DEMO_INVESTIGATOR, "search", "plate", plate, *_case())
    return [p.person_id for p, _ in present] + plates


def _watchlist(_cli: _Steps, root: Path, truth: GroundTruth) -> None:
    storage = Storage(_cli.settings)
    labels = {e.label for e in list_entries(storage) if e.case_id == DEMO_CASE}
    if "obama (demo)" not in labels:
        _cli(
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
                DEMO_SUPERVISOR,
                "watchlist",
                "approve",
                entry.id,
                "--why",
                "demo: second person approves the request",
            )


def run_demo(settings: Settings, seed: int, run_cli: RunCli) -> int:
    """Run every step; returns the CLI exit code."""
    from citywatch.service.server import serving_in_thread
    from citywatch.stack.prefect_server import ensure_prefect_server

    storage = Storage(settings)
    if is_remote(storage.root):
        raise BadInputError("demo runs on a local storage root; use index/search for s3")
    root = Path(storage.root)
    if not (root / "sample" / "ground_truth.json").is_file():
        output.line(f"1/5 writing sample footage under {root} ...")
        make_sample(settings, seed)
    else:
        output.line(f"1/5 sample footage already under {root}")
    passwords = demo_accounts(storage)
    truth = load_ground_truth(root / "sample" / "ground_truth.json")
    steps = _Steps(run_cli, settings)
    output.line(f"\n2/5 indexing as {DEMO_ADMIN} (a worker job, run directly) ...")
    steps(DEMO_ADMIN, "index")
    ensure_prefect_server(settings.storage.state_dir)
    with serving_in_thread(settings) as base_url:
        steps.base_url = base_url
        for name in (DEMO_INVESTIGATOR, DEMO_SUPERVISOR):
            steps.people[name] = sign_in(base_url, name, passwords[name])
        output.line(f"\ncitywatch service on {base_url}: {DEMO_INVESTIGATOR} and {DEMO_SUPERVISOR} signed in")
        try:
            output.line(
                f"\n3/5 searching as {DEMO_INVESTIGATOR}, case {DEMO_CASE}, "
                "with a different photo of each person ..."
            )
            searched = _searches(steps, root, truth)
            output.line(
                f"\n4/5 watchlist: requested by {DEMO_INVESTIGATOR}, approved by {DEMO_SUPERVISOR}; "
                f"sweep as {DEMO_ADMIN} ..."
            )
            _watchlist(steps, root, truth)
            steps(DEMO_ADMIN, "sweep")
            output.line(f"\n5/5 alerts waiting for a human ({DEMO_SUPERVISOR}) to confirm or dismiss:")
            steps(DEMO_SUPERVISOR, "alerts", "list")
        finally:
            for person in steps.people.values():
                sign_out(base_url, person)
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
        f"{len(alerts)} alerts to review; audit: `citywatch --user demo-admin audit verify`; "
        "to sign in as a demo person, `citywatch serve` and `citywatch login --name NAME` "
        "with the password printed above"
    )
    return 0


def register(sub: Subcommands[Parser], run_cli: RunCli) -> None:
    p = add_command(
        sub,
        "demo",
        help="sample -> index -> search -> watchlist sweep -> alerts, end to end",
        description="Write sample footage under the storage root (unless it is there already), "
        "make demo accounts with random passwords (printed once), index it, start the service "
        "and sign the investigator and supervisor in, search for people of the sample with a "
        "different photo of each, request and approve watchlist entries, sweep, and list the "
        "alerts for review. Every step is the CLI command a user runs (the people's through "
        "the service), governed and audited the same way.",
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
