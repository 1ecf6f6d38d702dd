"""CLI: ``alerts list|show|confirm|dismiss``: a person reviews each watchlist alert."""

from __future__ import annotations

import argparse
import dataclasses

from citywatch.cli import output
from citywatch.cli.args import Parser, Subcommands, add_command, add_json_argument, add_subcommands
from citywatch.governance.alerts import AlertState, deliveries_by_alert, get_alert, list_alerts, review
from citywatch.governance.auth import Action, governed
from citywatch.schemas import AlertRow, DeliveryRow
from citywatch.settings import Settings
from citywatch.storage import Storage


def register(sub: Subcommands[Parser]) -> None:
    p = add_command(
        sub,
        "alerts",
        help="review watchlist alerts",
        description="An alert is a possible match that a person must confirm or dismiss before "
        "anyone acts on it.",
        examples=[
            "citywatch --user demo-supervisor alerts list --state new",
            'citywatch --user demo-supervisor alerts dismiss ALERT_ID --note "different person"',
        ],
    )
    al = add_subcommands(p, "alerts_command", "list, show, confirm or dismiss alerts")
    ls = add_command(
        al,
        "list",
        help="alerts, newest first, with their delivery state",
        examples=["citywatch alerts list --state new", "citywatch alerts list --entry ENTRY_ID --json"],
    )
    ls.add_argument("--state", choices=[s.value for s in AlertState], help="only alerts in this state")
    ls.add_argument("--entry", help="only alerts of this watchlist entry")
    ls.add_argument("--limit", type=int, default=50, help="at most this many alerts (default %(default)s)")
    add_json_argument(ls)
    ls.set_defaults(handler=cmd_alerts_list)
    show = add_command(
        al, "show", help="one alert with its deliveries", examples=["citywatch alerts show ALERT_ID"]
    )
    show.add_argument("alert_id", help="the alert (from alerts list)")
    add_json_argument(show)
    show.set_defaults(handler=cmd_alerts_show)
    for name, text, example in (
        (
            "confirm",
            "a person checked it: it is the watchlisted person/plate",
            'citywatch --user demo-supervisor alerts confirm ALERT_ID --note "checked the thumbnail"',
        ),
        (
            "dismiss",
            "not a match: no further alerts for this track",
            'citywatch --user demo-supervisor alerts dismiss ALERT_ID --note "different person"',
        ),
    ):
        r = add_command(al, name, help=text, examples=[example])
        r.add_argument("alert_id", help="the alert (from alerts list)")
        r.add_argument(
            "--note",
            required=(name == "dismiss"),
            default="",
            help="what was checked" + (" (required)" if name == "dismiss" else ""),
        )
        r.set_defaults(handler=cmd_alerts_review, decision=name)


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
    when = row.reviewed_at.isoformat() if row.reviewed_at else "?"  # review() sets it
    output.line(f"{row.id}: {row.state} by {row.reviewed_by} at {when}{extra}")
    return 0
