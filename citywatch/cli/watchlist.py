"""CLI: ``watchlist add|approve|list|show|remove``.

The acting user is ``Settings.user`` (``--user`` / CITYWATCH_USER): the requester of
a new entry, the approver, the remover. An entry matches only once a second person
approved it, and only until it expires.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt

from citywatch.cli import output
from citywatch.cli.alerts import alert_json_row
from citywatch.cli.args import (
    Parser,
    Subcommands,
    add_case_arguments,
    add_command,
    add_json_argument,
    add_subcommands,
)
from citywatch.errors import ForbiddenError
from citywatch.governance.alerts import list_alerts
from citywatch.governance.auth import Action, governed
from citywatch.governance.refusals import refusals_on_record
from citywatch.governance.watchlist import (
    EntryRequest,
    add_plate,
    approve,
    get_entry,
    list_entries,
    parse_expiry,
    plate_rows_matched,
    remove,
)
from citywatch.governance.watchlist_faces import enrol_face
from citywatch.schemas import Reason, WatchlistRow, utcnow
from citywatch.settings import Settings
from citywatch.storage import Storage

_ADD_FACE = (
    "citywatch --user demo-investigator watchlist add face --photo obama.jpg --label obama "
    '--reason missing --expires 7d --case C-1 --why "reported missing yesterday"'
)
_ADD_PLATE = (
    'citywatch --user demo-investigator watchlist add plate AB1234 --label "blue van" '
    '--reason stolen_vehicle --expires 2d --case C-1 --why "stolen car report"'
)


def register(sub: Subcommands[Parser]) -> None:
    p = add_command(
        sub,
        "watchlist",
        help="who or which plate the sweep looks for (requested, approved by a second person, expiring)",
        examples=[_ADD_FACE, "citywatch --user demo-supervisor watchlist list"],
    )
    wl = add_subcommands(p, "watchlist_command", "add, approve, list, show or remove entries")
    add = add_command(
        wl,
        "add",
        help="request a new entry (a second person approves it)",
        examples=[_ADD_FACE, _ADD_PLATE],
    )
    kinds = add_subcommands(add, "kind", "a face or a plate")
    face = add_command(kinds, "face", help="a person, from one or more photos", examples=[_ADD_FACE])
    face.add_argument(
        "--photo", action="append", required=True, help="photo with exactly one face (repeatable)"
    )
    plate = add_command(
        kinds,
        "plate",
        help="a plate (AB1234) or a pattern (AB12*, ?B1234)",
        examples=[_ADD_PLATE],
    )
    plate.add_argument("plate", help="plate text, or a pattern with * and ?")
    for parser in (face, plate):
        _add_entry_arguments(parser)
    ap = add_command(
        wl,
        "approve",
        help="approve a pending entry (not its requester)",
        examples=['citywatch --user demo-supervisor watchlist approve ENTRY_ID --why "case file checked"'],
    )
    ap.add_argument("entry_id", help="the pending entry (from watchlist list)")
    ap.add_argument(
        "--why",
        dest="justification",
        required=True,
        help="why the entry is justified, recorded in the audit log (required)",
    )
    ap.set_defaults(handler=cmd_watchlist_approve)
    ls = add_command(
        wl,
        "list",
        help="entries (removed ones with --all)",
        examples=["citywatch watchlist list", "citywatch watchlist list --all --json"],
    )
    ls.add_argument("--all", action="store_true", help="include removed entries")
    add_json_argument(ls)
    ls.set_defaults(handler=cmd_watchlist_list)
    show = add_command(
        wl, "show", help="one entry and its alerts", examples=["citywatch watchlist show ENTRY_ID --json"]
    )
    show.add_argument("entry_id", help="the entry (from watchlist list)")
    add_json_argument(show)
    show.set_defaults(handler=cmd_watchlist_show)
    rm = add_command(
        wl,
        "remove",
        help="stop an entry matching (its history is kept)",
        examples=['citywatch --user demo-supervisor watchlist remove ENTRY_ID --note "found safe"'],
    )
    rm.add_argument("entry_id", help="the entry (from watchlist list)")
    rm.add_argument("--note", required=True, help="why it is removed (required)")
    rm.set_defaults(handler=cmd_watchlist_remove)


def _add_entry_arguments(parser: Parser) -> None:
    parser.add_argument("--label", required=True, help="who or what this is, for officers (required)")
    parser.add_argument(
        "--reason",
        required=True,
        choices=[r.value for r in Reason],
        help="the named purpose of the entry (required)",
    )
    parser.add_argument(
        "--expires",
        required=True,
        help="7d, 12h, 90m or an ISO time; at most watchlist_max_days (required)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        help="faces: max distance (stricter than the model default only); "
        "plates: max confusion-aware distance",
    )
    add_case_arguments(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=cmd_watchlist_add)


def acting_user(settings: Settings) -> str:
    if not settings.user:
        raise ForbiddenError("no user given: set CITYWATCH_USER or pass --user")
    return settings.user


def entry_json(row: WatchlistRow, now: dt.datetime) -> dict[str, object]:
    out = {k: v for k, v in dataclasses.asdict(row).items() if k != "embeddings"}
    out["photos"] = len(row.photo_sha256)
    out["state"] = row.state(now)
    return out


def cmd_watchlist_add(args: argparse.Namespace, settings: Settings) -> int:
    storage = Storage(settings)
    now = utcnow()
    raw = {"kind": args.kind, "label": args.label, "expires": args.expires}
    with refusals_on_record(
        settings, storage, Action.WATCHLIST_REQUEST, args.case_id, args.justification, raw
    ):
        expires_at = parse_expiry(args.expires, now, settings.watchlist.max_days)
    request = EntryRequest(
        label=args.label,
        reason=args.reason,
        case_id=args.case_id or "",
        justification=args.justification or "",
        requested_by=acting_user(settings),
        expires_at=expires_at,
        threshold=args.threshold,
    )
    params = {
        "kind": args.kind,
        "label": args.label,
        "reason": args.reason,
        "expires": request.expires_at.isoformat(),
        "threshold": args.threshold,
        "plate": getattr(args, "plate", None),
        "photos": len(getattr(args, "photo", []) or []),
    }
    with governed(
        settings, storage, Action.WATCHLIST_REQUEST, args.case_id, args.justification, params
    ) as run:
        breadth: tuple[int, int] | None = None  # plate entries: rows it would have matched
        if args.kind == "face":
            from citywatch.models.loaders import face_model_for

            model = face_model_for(settings)
            photos = [(storage.read_bytes(storage.resolve(p, "--photo")), p) for p in args.photo]
            row = enrol_face(
                storage,
                model,
                photos,
                request,
                max_days=settings.watchlist.max_days,
                default_threshold=settings.faces.match_threshold or model.embedder.default_threshold,
                now=now,
                max_pixels=settings.search.probe_max_pixels,
            )
        else:
            row = add_plate(
                storage,
                args.plate,
                request,
                max_days=settings.watchlist.max_days,
                default_max_distance=settings.sweep.plate_max_distance,
                now=now,
                min_literals=settings.watchlist.plate_min_literals,
            )
            breadth = plate_rows_matched(storage, row)
        run.result_count = 1
        run.detail = f"entry {row.id}" + (
            f"; would have matched {breadth[0]} of {breadth[1]} plate rows" if breadth else ""
        )
    if args.json:
        output.as_json({**entry_json(row, now), **({"would_have_matched": breadth[0]} if breadth else {})})
        return 0
    output.line(
        f"{row.id}: {row.kind} entry {row.label!r} added, pending approval by a "
        f"second person (citywatch watchlist approve {row.id}); expires "
        f"{row.expires_at.isoformat()}"
    )
    if breadth:
        output.line(
            f"  {row.plate_query} would have matched {breadth[0]} of the {breadth[1]} plate rows indexed"
        )
    return 0


def cmd_watchlist_approve(args: argparse.Namespace, settings: Settings) -> int:
    storage = Storage(settings)
    entry = get_entry(storage, args.entry_id)
    with governed(
        settings,
        storage,
        Action.WATCHLIST_APPROVE,
        entry.case_id,
        args.justification,
        {"entry": entry.id, "label": entry.label},
    ) as run:
        row = approve(storage, args.entry_id, run.actor.user)
        run.result_count = 1
    output.line(f"{row.id}: approved by {row.approved_by}; active until {row.expires_at.isoformat()}")
    return 0


def cmd_watchlist_list(args: argparse.Namespace, settings: Settings) -> int:
    now = utcnow()
    storage = Storage(settings)
    with governed(settings, storage, Action.WATCHLIST_READ, None, None, {"all": args.all}) as run:
        rows = list_entries(storage, include_removed=args.all)
        run.result_count = len(rows)
    if args.json:
        output.as_json([entry_json(r, now) for r in rows])
        return 0
    output.table(
        [
            "id",
            "kind",
            "label",
            "reason",
            "case",
            "state",
            "requested",
            "approved",
            "expires (UTC)",
            "threshold",
        ],
        [
            [
                r.id,
                r.kind,
                r.label,
                r.reason,
                r.case_id,
                r.state(now),
                r.requested_by,
                r.approved_by or "-",
                r.expires_at.strftime("%Y-%m-%d %H:%M"),
                f"{r.threshold:.3f}",
            ]
            for r in rows
        ],
    )
    return 0


def cmd_watchlist_show(args: argparse.Namespace, settings: Settings) -> int:
    storage = Storage(settings)
    now = utcnow()
    with governed(settings, storage, Action.WATCHLIST_READ, None, None, {"entry": args.entry_id}) as run:
        row = get_entry(storage, args.entry_id)
        alerts = list_alerts(storage, entry_id=row.id, limit=1000)
        run.result_count = 1
    if args.json:
        output.as_json({**entry_json(row, now), "alerts": [alert_json_row(a) for a in alerts]})
        return 0
    for key, value in entry_json(row, now).items():
        output.line(f"{key:>14}: {value}")
    output.line(f"{'alerts':>14}: {len(alerts)}")
    return 0


def cmd_watchlist_remove(args: argparse.Namespace, settings: Settings) -> int:
    storage = Storage(settings)
    with governed(
        settings, storage, Action.WATCHLIST_REMOVE, None, args.note, {"entry": args.entry_id}
    ) as run:
        row = remove(storage, args.entry_id, run.actor.user, args.note)
        run.result_count = 1
    output.line(f"{row.id}: removed by {row.removed_by}; it no longer matches (history kept)")
    return 0
