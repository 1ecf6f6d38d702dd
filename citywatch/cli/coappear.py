"""CLI: ``search companions|recurring|recurring-approve|promote`` and ``coappear`` (the same
handler as ``search companions``); case-bound, audited."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from citywatch.cli import output
from citywatch.cli.args import Parser, Subcommands, add_case_arguments, add_command, add_json_argument
from citywatch.errors import BadInputError
from citywatch.filters import parse_time
from citywatch.governance.auth import Action
from citywatch.governance.refusals import refusals_on_record
from citywatch.settings import Settings
from citywatch.stack.prefect_server import ensure_prefect_server
from citywatch.storage import Storage

if TYPE_CHECKING:  # flows are imported lazily, after the Prefect server is known
    from citywatch.flows.coappear import CoappearResult, RecurringResult
    from citywatch.tasks.search.coappear import FaceGroup

_WHY = '--why "robbery on 20 Nov, who was with the suspect"'


def register(search_sub: Subcommands[Parser]) -> None:
    """Add the commands to the ``search`` group."""
    _add_companions(search_sub, "companions", "search companions")

    r = add_command(
        search_sub,
        "recurring",
        help="which unknown faces keep coming back to these cameras in this window?",
        description="Group every face track on the cameras given between --since and --until and "
        "list the groups seen at least --min-count times. Beyond the limits (recurring_max_cameras, "
        "recurring_max_days) a supervisor must approve: --request-approval files the request, "
        "--approval ID runs it once approved.",
        examples=[
            "citywatch search recurring --camera cam-01 --camera cam-02 --since 2026-11-20T00:00Z "
            '--until 2026-11-22T00:00Z --case C-1 --why "repeated break-ins at the station"',
            "citywatch search recurring --camera cam-01 --since 2026-11-01 --until 2026-11-30 "
            '--request-approval --case C-1 --why "repeated break-ins at the station"  # over 7 days: ask',
            "citywatch search recurring --camera cam-01 --since 2026-11-01 --until 2026-11-30 "
            '--approval sr-0123456789ab --case C-1 --why "repeated break-ins at the station" --json',
        ],
    )
    r.add_argument("--camera", action="append", default=[], help="camera id (repeatable, at least one)")
    r.add_argument("--since", required=True, help="ISO 8601 time (UTC if no offset)")
    r.add_argument("--until", required=True, help="ISO 8601 time (UTC if no offset)")
    r.add_argument("--min-count", type=int, help="sightings a group needs (default: setting)")
    r.add_argument("--approval", help="the approved request (sr-...) for a search over the limits")
    r.add_argument(
        "--request-approval", action="store_true", help="over the limits: file a request for a supervisor"
    )
    add_case_arguments(r)
    add_json_argument(r)
    r.set_defaults(handler=cmd_recurring)

    a = add_command(
        search_sub,
        "recurring-approve",
        help="approve a recurring-faces request over the limits (a supervisor, not its requester)",
        examples=[
            "citywatch --user demo-supervisor search recurring-approve sr-0123456789ab --case C-1 "
            '--why "station break-ins: a month of footage is proportionate"'
        ],
    )
    a.add_argument("request_id", help="the pending request (sr-...)")
    add_case_arguments(a)
    a.set_defaults(handler=cmd_recurring_approve)
    _register_promote(search_sub)


def register_top_level(sub: Subcommands[Parser]) -> None:
    """``citywatch coappear``: the issue's name for ``search companions`` (the same handler)."""
    _add_companions(sub, "coappear", "coappear")


def _add_companions(sub: Subcommands[Parser], name: str, spelling: str) -> None:
    c = add_command(
        sub,
        name,
        help="who was with the case's subject? (same camera, within ±T seconds)",
        description="From the case's kept sightings (its holds), or the face sightings given, find "
        "the other faces seen on the same camera within --window seconds, group them by likely "
        "identity across cameras and rank the groups by how many of the subject's sightings "
        "they accompany. Groups carry no name: a lead for a person to check, never an identification. "
        "`citywatch coappear` and `citywatch search companions` are the same command.",
        examples=[
            f"citywatch {spelling} --case C-1 {_WHY}",
            f"citywatch {spelling} --sighting FACE_ID --window 20 --case C-1 {_WHY} --json",
        ],
    )
    c.add_argument(
        "--sighting",
        action="append",
        default=[],
        help="a face sighting of the subject (face_id from search face; repeatable); "
        "default: the case's kept sightings",
    )
    c.add_argument("--window", type=float, help="seconds before and after each sighting (default: setting)")
    add_case_arguments(c)
    add_json_argument(c)
    c.set_defaults(handler=cmd_companions)


def _register_promote(search_sub: Subcommands[Parser]) -> None:
    p = add_command(
        search_sub,
        "promote",
        help="turn a group into a face search or a watchlist request (its template as the probe)",
        description="Name a group by its face sightings (face_id from search companions or search "
        "recurring). Its template (the mean of its tracks) is searched like a probe photo, or with "
        "--watchlist enrolled as a pending watchlist entry that a second person must approve. "
        "Audited with the group as the source.",
        examples=[
            f"citywatch search promote --sighting FACE_ID --sighting FACE_ID2 --case C-1 {_WHY}",
            "citywatch search promote --sighting FACE_ID --watchlist --label companion-1 --reason suspect "
            f"--expires 7d --case C-1 {_WHY}",
        ],
    )
    p.add_argument(
        "--sighting", action="append", default=[], help="a face sighting of the group (repeatable)"
    )
    p.add_argument("--watchlist", action="store_true", help="request a watchlist entry instead of a search")
    p.add_argument("--label", help="--watchlist: the entry's label")
    p.add_argument("--reason", help="--watchlist: suspect, missing, vulnerable or threat")
    p.add_argument(
        "--expires", default="7d", help="--watchlist: 7d, 12h or an ISO time (default %(default)s)"
    )
    p.add_argument("--threshold", type=float, help="--watchlist: a stricter match distance")
    p.add_argument("--camera", action="append", default=[], help="search: camera id (repeatable)")
    p.add_argument("--since", help="search: ISO 8601 time (UTC if no offset)")
    p.add_argument("--until", help="search: ISO 8601 time (UTC if no offset)")
    p.add_argument("--top-k", type=int, help="search: at most this many sightings")
    add_case_arguments(p)
    add_json_argument(p)
    p.set_defaults(handler=cmd_promote)


def cmd_promote(args: argparse.Namespace, settings: Settings) -> int:
    from citywatch.flows.promote import group_search, group_watchlist_request

    sightings = tuple(args.sighting)
    if args.watchlist:
        with refusals_on_record(
            settings, Storage(settings), Action.WATCHLIST_REQUEST, args.case_id, args.justification, {}
        ):
            if not args.label or not args.reason:
                raise BadInputError("--watchlist needs --label and --reason")
        row = group_watchlist_request(
            settings,
            sightings,
            label=args.label,
            reason=args.reason,
            expires=args.expires,
            case_id=args.case_id,
            justification=args.justification,
            threshold=args.threshold,
        )
        if args.json:
            output.as_json({"id": row.id, "status": row.status, "label": row.label, "case_id": row.case_id})
        else:
            output.line(
                f"{row.id}: face entry {row.label!r} from the group added, pending approval by a "
                f"second person (citywatch watchlist approve {row.id})"
            )
        return 0
    from citywatch.cli.search import print_sightings
    from citywatch.tasks.search.faces import SearchFilters

    params = {"source": "group", "since": args.since, "until": args.until}
    with refusals_on_record(
        settings, Storage(settings), Action.SEARCH_FACE, args.case_id, args.justification, params
    ):
        start = parse_time(args.since, "--since") if args.since else None
        end = parse_time(args.until, "--until") if args.until else None
    result = group_search(
        settings,
        sightings,
        SearchFilters(tuple(args.camera), None, start, end),
        case_id=args.case_id,
        justification=args.justification,
        top_k=args.top_k,
    )
    if args.json:
        from citywatch.tasks.search.report import sighting_json

        output.as_json([sighting_json(s) for s in result.sightings])
    else:
        print_sightings(result)
    return 0


def print_groups(groups: list[FaceGroup], summary: str) -> None:
    from citywatch.times import format_utc

    output.table(
        ["#", "sightings", "with subject", "cameras", "first (UTC)", "last (UTC)", "thumbnail"],
        [
            [
                g.rank,
                g.count,
                len(g.accompanies) or "-",
                ",".join(g.cameras),
                format_utc(g.first_ts),
                format_utc(g.last_ts),
                g.thumb_uri,
            ]
            for g in groups
        ],
    )
    output.line(summary)


def run_companions(
    settings: Settings,
    *,
    case_id: str | None,
    justification: str | None,
    sightings: list[str] | None = None,
    window_s: float | None = None,
) -> CoappearResult:
    ensure_prefect_server(settings.storage.state_dir)
    from citywatch.flows.coappear import coappear

    return coappear(
        case_id=case_id,
        justification=justification,
        sightings=sightings or [],
        window_s=window_s,
        settings=settings,
    )


def cmd_companions(args: argparse.Namespace, settings: Settings) -> int:
    result = run_companions(
        settings,
        case_id=args.case_id,
        justification=args.justification,
        sightings=args.sighting,
        window_s=args.window,
    )
    if args.json:
        from citywatch.tasks.search.coappear import group_json

        output.as_json(
            {
                "case_id": result.case_id,
                "subject_tracks": list(result.subject_tracks),
                "window_s": result.window_s,
                "threshold": result.threshold,
                "groups": [group_json(g) for g in result.groups],
            }
        )
    else:
        print_groups(
            result.groups,
            f"{len(result.groups)} companion groups within ±{result.window_s:g} s of "
            f"{len(result.subject_tracks)} subject sightings (case {result.case_id})",
        )
    return 0


def run_recurring(
    settings: Settings,
    *,
    case_id: str | None,
    justification: str | None,
    cameras: list[str],
    since: str,
    until: str,
    min_count: int | None = None,
    approval: str | None = None,
    request_approval: bool = False,
) -> RecurringResult:
    params = {"cameras": cameras[:1000], "since": since, "until": until, "approval": approval}
    storage = Storage(settings)
    with refusals_on_record(settings, storage, Action.SEARCH_RECURRING, case_id, justification, params):
        start = parse_time(since, "--since")
        end = parse_time(until, "--until")
        if approval and request_approval:
            raise BadInputError("--approval and --request-approval do not go together")
    ensure_prefect_server(settings.storage.state_dir)
    from citywatch.flows.coappear import recurring

    return recurring(
        camera_ids=cameras,
        since=start,
        until=end,
        min_count=settings.coappear.recurring_min_count if min_count is None else min_count,
        case_id=case_id,
        justification=justification,
        approval=approval,
        request_approval=request_approval,
        settings=settings,
    )


def cmd_recurring(args: argparse.Namespace, settings: Settings) -> int:
    result = run_recurring(
        settings,
        case_id=args.case_id,
        justification=args.justification,
        cameras=args.camera,
        since=args.since,
        until=args.until,
        min_count=args.min_count,
        approval=args.approval,
        request_approval=args.request_approval,
    )
    if args.json:
        from citywatch.tasks.search.coappear import group_json

        output.as_json(
            {
                "case_id": result.case_id,
                "pending_request": result.pending_request,
                "approval": result.approval,
                "threshold": result.threshold,
                "groups": [group_json(g) for g in result.groups],
            }
        )
    elif result.pending_request:
        output.line(
            f"request {result.pending_request} waits for a supervisor's approval "
            f"(citywatch search recurring-approve {result.pending_request} --case {result.case_id} ...); "
            f"then run this again with --approval {result.pending_request}"
        )
    else:
        print_groups(
            result.groups,
            f"{len(result.groups)} groups seen at least {result.scope.min_count} times on "
            f"{len(result.scope.camera_ids)} cameras (case {result.case_id})",
        )
    return 0


def cmd_recurring_approve(args: argparse.Namespace, settings: Settings) -> int:
    from citywatch.flows.coappear import approve_recurring

    row = approve_recurring(settings, args.request_id, case_id=args.case_id, justification=args.justification)
    output.line(f"approved {row.id} of {row.requested_by} for case {row.case_id} ({row.over_limits})")
    return 0
