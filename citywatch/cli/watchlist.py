"""CLI: ``watchlist add|approve|list|show|remove``, ``sweep``, ``ingest-new``, ``alerts ...``.

The acting user is ``Settings.user`` (``--user`` / CITYWATCH_USER): the requester of
a new entry, the approver, the remover, the reviewer of an alert.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt

from citywatch.cli import output
from citywatch.cli.args import add_case_arguments
from citywatch.errors import ForbiddenError
from citywatch.governance.alerts import (
    AlertRow,
    AlertState,
    DeliveryRow,
    deliveries_by_alert,
    get_alert,
    list_alerts,
    review,
)
from citywatch.governance.auth import Action, governed
from citywatch.governance.refusals import refusals_on_record
from citywatch.governance.watchlist import (
    EntryRequest,
    Reason,
    WatchlistRow,
    add_plate,
    approve,
    enrol_face,
    get_entry,
    list_entries,
    parse_expiry,
    plate_rows_matched,
    remove,
)
from citywatch.schemas import utcnow
from citywatch.settings import Settings
from citywatch.stack.prefect_server import ensure_prefect_server
from citywatch.storage import Storage


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("watchlist", help="who or which plate the sweep looks for")
    wl = p.add_subparsers(dest="watchlist_command", required=True)
    add = wl.add_parser("add", help="request a new entry (a second person approves it)")
    kinds = add.add_subparsers(dest="kind", required=True)
    face = kinds.add_parser("face", help="a person, from one or more photos")
    face.add_argument(
        "--photo", action="append", required=True, help="photo with exactly one face (repeatable)"
    )
    plate = kinds.add_parser("plate", help="a plate (AB1234) or a pattern (AB12*, ?B1234)")
    plate.add_argument("plate")
    for parser in (face, plate):
        parser.add_argument("--label", required=True, help="who or what this is, for officers")
        parser.add_argument("--reason", required=True, choices=[r.value for r in Reason])
        parser.add_argument(
            "--expires", required=True, help="7d, 12h, 90m or an ISO time; at most watchlist_max_days"
        )
        parser.add_argument(
            "--threshold",
            type=float,
            help="faces: max distance (stricter than the model default only); "
            "plates: max confusion-aware distance",
        )
        add_case_arguments(parser)
        parser.add_argument("--json", action="store_true")
        parser.set_defaults(handler=cmd_watchlist_add)
    ap = wl.add_parser("approve", help="approve a pending entry (not its requester)")
    ap.add_argument("entry_id")
    ap.add_argument(
        "--why",
        dest="justification",
        required=True,
        help="why the entry is justified (recorded in the audit log)",
    )
    ap.set_defaults(handler=cmd_watchlist_approve)
    ls = wl.add_parser("list", help="entries (removed ones with --all)")
    ls.add_argument("--all", action="store_true", help="include removed entries")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=cmd_watchlist_list)
    show = wl.add_parser("show", help="one entry and its alerts")
    show.add_argument("entry_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_watchlist_show)
    rm = wl.add_parser("remove", help="stop an entry matching (its history is kept)")
    rm.add_argument("entry_id")
    rm.add_argument("--note", required=True, help="why it is removed")
    rm.set_defaults(handler=cmd_watchlist_remove)

    p = sub.add_parser("sweep", help="match new sightings against the watchlist, raise alerts")
    p.add_argument("--watch", action="store_true", help="keep sweeping every --interval seconds")
    p.add_argument("--interval", type=float, help="seconds between sweeps (default sweep_interval_s)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_sweep)

    p = sub.add_parser("ingest-new", help="index segments that just landed (in-process, fast)")
    p.add_argument("--watch", action="store_true", help="keep ingesting every --interval seconds")
    p.add_argument("--interval", type=float, help="seconds between runs (default ingest_interval_s)")
    p.set_defaults(handler=cmd_ingest_new)

    p = sub.add_parser("alerts", help="review watchlist alerts")
    al = p.add_subparsers(dest="alerts_command", required=True)
    ls = al.add_parser("list", help="alerts, newest first, with their delivery state")
    ls.add_argument("--state", choices=[s.value for s in AlertState])
    ls.add_argument("--entry", help="only alerts of this watchlist entry")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=cmd_alerts_list)
    show = al.add_parser("show", help="one alert with its deliveries")
    show.add_argument("alert_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_alerts_show)
    for name, text in (
        ("confirm", "a person checked it: it is the watchlisted person/plate"),
        ("dismiss", "not a match: no further alerts for this track"),
    ):
        r = al.add_parser(name, help=text)
        r.add_argument("alert_id")
        r.add_argument(
            "--note",
            required=(name == "dismiss"),
            default="",
            help="what was checked" + (" (required)" if name == "dismiss" else ""),
        )
        r.set_defaults(handler=cmd_alerts_review, decision=name)


def acting_user(settings: Settings) -> str:
    if not settings.user:
        raise ForbiddenError("no user given: set CITYWATCH_USER or pass --user")
    return settings.user


# --- watchlist ------------------------------------------------------------------------


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
        expires_at = parse_expiry(args.expires, now, settings.watchlist_max_days)
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
            from citywatch.tasks.index_segment import face_model_for

            model = face_model_for(settings)
            photos = [(storage.read_bytes(storage.resolve(p, "--photo")), p) for p in args.photo]
            row = enrol_face(
                storage,
                model,
                photos,
                request,
                max_days=settings.watchlist_max_days,
                default_threshold=settings.face_match_threshold or model.embedder.default_threshold,
                now=now,
                max_pixels=settings.probe_max_pixels,
            )
        else:
            row = add_plate(
                storage,
                args.plate,
                request,
                max_days=settings.watchlist_max_days,
                default_max_distance=settings.plate_alert_max_distance,
                now=now,
                min_literals=settings.watchlist_plate_min_literals,
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


# --- sweep and ingest -------------------------------------------------------------------


def cmd_sweep(args: argparse.Namespace, settings: Settings) -> int:
    ensure_prefect_server(settings.state_dir)
    from citywatch.flows.watchlist_sweep import run_sweep_loop, watchlist_sweep

    if args.watch:
        output.line(f"sweeping every {args.interval or settings.sweep_interval_s:g} s (Ctrl-C stops)")
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
    ensure_prefect_server(settings.state_dir)
    from citywatch.flows.ingest_new import ingest_new, run_ingest_loop

    if args.watch:
        output.line(f"ingesting every {args.interval or settings.ingest_interval_s:g} s (Ctrl-C stops)")
        run_ingest_loop(settings, interval_s=args.interval)
        return 0
    summary = ingest_new(settings=settings)
    output.line(
        f"{summary.indexed} new segment(s) indexed, {len(summary.failed)} failed, {summary.faces} faces"
    )
    return 0


# --- alerts ------------------------------------------------------------------------------


def alert_json_row(alert: AlertRow, deliveries: list[DeliveryRow] | None = None) -> dict[str, object]:
    out: dict[str, object] = dataclasses.asdict(alert)
    if deliveries is not None:
        out["deliveries"] = [dataclasses.asdict(d) for d in deliveries]
    return out


def delivery_text(deliveries: list[DeliveryRow]) -> str:
    parts = []
    for d in deliveries:
        text = f"{d.sink.split('?')[0]} {d.state}"
        if d.state != "delivered" and d.attempts:
            text += f" x{d.attempts}"
            if d.last_error:
                text += f" ({d.last_error[:60]})"
            if d.next_attempt_at is None:
                text += " given up"
        parts.append(text)
    return "; ".join(parts) or "-"


def cmd_alerts_list(args: argparse.Namespace, settings: Settings) -> int:
    storage = Storage(settings)
    with governed(
        settings, storage, Action.ALERT_READ, None, None, {"state": args.state, "entry": args.entry}
    ) as run:
        alerts = list_alerts(storage, state=args.state, entry_id=args.entry, limit=args.limit)
        run.result_count = len(alerts)
    deliveries = deliveries_by_alert(storage, [a.id for a in alerts])
    if args.json:
        output.as_json([alert_json_row(a, deliveries.get(a.id, [])) for a in alerts])
        return 0
    output.table(
        ["id", "state", "label", "reason", "camera", "time (UTC)", "score", "deliveries"],
        [
            [
                a.id,
                a.state,
                a.label,
                a.reason,
                a.camera_id,
                a.ts.strftime("%Y-%m-%d %H:%M:%S"),
                f"{a.score:.3f}/{a.threshold:.3f}",
                delivery_text(deliveries.get(a.id, [])),
            ]
            for a in alerts
        ],
    )
    output.line(
        f"{len(alerts)} alert(s); each is a possible match that a person must confirm "
        "or dismiss before anyone acts on it"
    )
    return 0


def cmd_alerts_show(args: argparse.Namespace, settings: Settings) -> int:
    storage = Storage(settings)
    with governed(settings, storage, Action.ALERT_READ, None, None, {"alert": args.alert_id}) as run:
        alert = get_alert(storage, args.alert_id)
        run.result_count = 1
    deliveries = deliveries_by_alert(storage, [alert.id]).get(alert.id, [])
    if args.json:
        output.as_json(alert_json_row(alert, deliveries))
        return 0
    for key, value in dataclasses.asdict(alert).items():
        output.line(f"{key:>12}: {value}")
    for d in deliveries:
        output.line(f"{'delivery':>12}: {delivery_text([d])}")
    return 0


def cmd_alerts_review(args: argparse.Namespace, settings: Settings) -> int:
    decision = AlertState.CONFIRMED if args.decision == "confirm" else AlertState.DISMISSED
    storage = Storage(settings)
    with governed(
        settings,
        storage,
        Action.ALERT_REVIEW,
        None,
        args.note or None,
        {"alert": args.alert_id, "decision": decision.value},
    ) as run:
        row = review(storage, args.alert_id, decision, run.actor.user, args.note)
        run.result_count = 1
    extra = "; this track will not alert this entry again" if decision == AlertState.DISMISSED else ""
    output.line(f"{row.id}: {row.state} by {row.reviewed_by} at {row.reviewed_at.isoformat()}{extra}")
    return 0
