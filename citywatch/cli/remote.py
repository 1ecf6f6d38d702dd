"""Governed commands in client mode: the same arguments, sent to the service's JSON API.

:func:`handler_for` is the one place that picks client or direct mode: with
``CITYWATCH_API_URL`` set, a command that has a service counterpart here runs through
the API as the signed-in user (its API token); every other command runs directly.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from citywatch.cli import alerts, audit, coappear, commands, export, output, search, watchlist
from citywatch.cli.client import ApiClient, api_client, client_mode
from citywatch.errors import BadInputError, ForbiddenError
from citywatch.settings import Settings

Handler = Callable[[argparse.Namespace, Settings], int]
Remote = Callable[[argparse.Namespace, ApiClient], int]


def _show(args: argparse.Namespace, data: Any, columns: Sequence[str] = (), summary: str = "") -> int:
    """``--json``: the service's answer as is; else a table of ``columns`` (or key: value lines)."""
    if getattr(args, "json", False):
        output.as_json(data)
    elif isinstance(data, list):
        output.table(list(columns), [[row.get(c, "") for c in columns] for row in data])
    elif isinstance(data, dict):
        for key, value in data.items():
            output.line(f"{key:>14}: {value}")
    if summary and not getattr(args, "json", False):
        output.line(summary)
    return 0


def _file(path: str, what: str) -> tuple[str, bytes]:
    """A local photo to upload (the service never reads client paths or URLs)."""
    if "://" in path:
        raise BadInputError(f"{what} {path!r}: in client mode give a local file, not a URL")
    try:
        return Path(path).name, Path(path).read_bytes()
    except OSError as exc:
        raise BadInputError(f"{what} {path!r} cannot be read: {exc.strerror}") from exc


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {"district": args.district, "since": args.since, "until": args.until, "top_k": args.top_k}


def search_face(args: argparse.Namespace, api: ApiClient) -> int:
    form = {"case_id": args.case_id, "justification": args.justification, "camera": args.camera}
    form.update({k: v for k, v in {**_filters(args), "face": args.face}.items() if v is not None})
    data = api.call("POST", "/api/search/face", data=form, files={"probe": _file(args.probe, "probe")})
    columns = ("rank", "camera_id", "ts", "distance", "similarity", "face_id")
    return _show(
        args, data["sightings"], columns, f"{len(data['sightings'])} sightings; report: {data['report']}"
    )


def search_plate(args: argparse.Namespace, api: ApiClient) -> int:
    body = {"text": args.text, "max_edits": args.max_edits, "cameras": args.camera, "near": args.near}
    body.update(case_id=args.case_id, justification=args.justification, **_filters(args))
    data = api.post("/api/search/plate", body)
    columns = ("rank", "text", "score", "camera_id", "ts", "reads")
    rows = data["sightings"]
    return _show(args, rows, columns, f"{len(rows)} plate sightings; report: {data['report']}")


_ENTRY = ("id", "kind", "label", "reason", "case_id", "state", "requested_by", "approved_by", "expires_at")


def watchlist_add(args: argparse.Namespace, api: ApiClient) -> int:
    fields = {
        "label": args.label,
        "reason": args.reason,
        "expires": args.expires,
        "threshold": args.threshold,
    }
    fields.update(case_id=args.case_id, justification=args.justification)
    if args.kind == "plate":
        row = api.post("/api/watchlist/plate", {"plate": args.plate, **fields})
    else:
        photos = [("photo", _file(p, "--photo")) for p in args.photo]
        form = {k: v for k, v in fields.items() if v is not None}
        row = api.call("POST", "/api/watchlist/face", data=form, files=photos)
    if args.json:
        return _show(args, row)
    output.line(
        f"{row['id']}: {row['kind']} entry {row['label']!r} added, pending approval by a second person"
    )
    return 0


def watchlist_approve(args: argparse.Namespace, api: ApiClient) -> int:
    row = api.post(f"/api/watchlist/{args.entry_id}/approve", {"justification": args.justification})
    output.line(f"{row['id']}: approved by {row['approved_by']}; active until {row['expires_at']}")
    return 0


def watchlist_list(args: argparse.Namespace, api: ApiClient) -> int:
    return _show(args, api.get("/api/watchlist", all=args.all or None), _ENTRY)


def watchlist_show(args: argparse.Namespace, api: ApiClient) -> int:
    return _show(args, api.get(f"/api/watchlist/{args.entry_id}"))


def watchlist_remove(args: argparse.Namespace, api: ApiClient) -> int:
    row = api.post(f"/api/watchlist/{args.entry_id}/remove", {"note": args.note})
    output.line(f"{row['id']}: removed by {row['removed_by']}; it no longer matches (history kept)")
    return 0


def alerts_list(args: argparse.Namespace, api: ApiClient) -> int:
    rows = api.get("/api/alerts", state=args.state, entry=args.entry, limit=args.limit)
    columns = ("id", "state", "label", "reason", "camera_id", "ts", "score")
    return _show(
        args, rows, columns, f"{len(rows)} alert(s); each must be confirmed or dismissed by a person"
    )


def alerts_show(args: argparse.Namespace, api: ApiClient) -> int:
    return _show(args, api.get(f"/api/alerts/{args.alert_id}"))


def alerts_review(args: argparse.Namespace, api: ApiClient) -> int:
    row = api.post(f"/api/alerts/{args.alert_id}/{args.decision}", {"note": args.note})
    output.line(f"{row['id']}: {row['state']} by {row['reviewed_by']} at {row['reviewed_at']}")
    return 0


def audit_list(args: argparse.Namespace, api: ApiClient) -> int:
    params = {"case": args.filter_case, "user": args.filter_user, "action": args.filter_action}
    rows = api.get("/api/audit", limit=args.limit, **params)
    columns = ("seq", "ts", "user", "role", "action", "outcome", "case_id", "result_count")
    return _show(args, rows, columns, f"{len(rows)} records")


def audit_verify(args: argparse.Namespace, api: ApiClient) -> int:
    verdict = api.post("/api/audit/verify", {"anchor": args.anchor})
    if args.json:
        output.as_json(verdict)
    elif verdict["ok"]:
        output.line(f"audit log intact: {verdict['checked']} records")
        output.line(f"head (write it down to --anchor later): {verdict['head_seq']}:{verdict['head_hash']}")
    else:
        output.line(f"audit log BROKEN at record {verdict['first_bad_seq']}: {verdict['reason']}")
    return 0 if verdict["ok"] else 1


def export_request(args: argparse.Namespace, api: ApiClient) -> int:
    if not args.case or not args.why:
        raise BadInputError("export needs --case CASE and --why JUSTIFICATION")
    if args.probe:
        raise BadInputError(
            "--probe is not available through the service yet: export by --alert or --sighting"
        )
    pad = export.parse_duration(args.pad, "--pad") if args.pad else None
    body = {"case_id": args.case, "justification": args.why, "alert_id": args.alert, "pad_s": pad}
    body.update(sighting_id=args.sighting, camera_id=args.camera, since=args.since, until=args.until)
    return _show(args, api.post("/api/exports", body))


def export_verify(args: argparse.Namespace, api: ApiClient) -> int:
    if not args.case or not args.why:
        raise BadInputError("in client mode: citywatch export --case CASE --why WHY verify exports/...")
    body = {"manifest": export_key(args.path, args.case), "case_id": args.case, "justification": args.why}
    report = api.post("/api/exports/verify", body)
    if args.json:
        output.as_json(report)  # the same document as direct mode's --json
    else:
        _show(args, report["checks"], ("name", "status", "detail"), f"export ok: {report['ok']}")
    return 0 if report["ok"] else 1


def export_key(path: str, case_id: str) -> str:
    """The service's key of an export: ``exports/<case>/...``, also from the path or URL an
    export printed (``<root>/exports/<case>/<id>.manifest.json``)."""
    marker = f"exports/{case_id}/"
    if path.startswith(marker):
        return path
    at = path.rfind("/" + marker)
    if at < 0:
        raise BadInputError(f"{path!r} is not an export of case {case_id} (exports/{case_id}/...)")
    return path[at + 1 :]


def hold(args: argparse.Namespace, api: ApiClient) -> int:
    body = {"track_id": args.track_id, "case_id": args.case_id, "justification": args.justification}
    row = api.post("/api/holds", body)
    output.line(f"track {row['track_id']} held for case {row['case_id']}: kept past retention")
    return 0


_GROUP = ("rank", "count", "cameras", "first_ts", "last_ts", "thumb_uri")


def companions(args: argparse.Namespace, api: ApiClient) -> int:
    body = {"case_id": args.case_id, "justification": args.justification, "sightings": args.sighting}
    data = api.post("/api/search/companions", {**body, "window_s": args.window})
    groups = data["groups"]
    return _show(args, data if args.json else groups, _GROUP, f"{len(groups)} companion groups")


def recurring(args: argparse.Namespace, api: ApiClient) -> int:
    body = {"case_id": args.case_id, "justification": args.justification, "cameras": args.camera}
    body.update(since=args.since, until=args.until, min_count=args.min_count, approval=args.approval)
    data = api.post("/api/search/recurring", {**body, "request_approval": args.request_approval})
    if data["pending_request"] and not args.json:
        output.line(f"request {data['pending_request']} waits for a supervisor's approval")
        return 0
    groups = data["groups"]
    return _show(args, data if args.json else groups, _GROUP, f"{len(groups)} recurring groups")


def recurring_approve(args: argparse.Namespace, api: ApiClient) -> int:
    body = {"case_id": args.case_id, "justification": args.justification}
    row = api.post(f"/api/search/recurring/{args.request_id}/approve", body)
    output.line(f"approved {row['id']} of {row['requested_by']} for case {row['case_id']}")
    return 0


REMOTE: dict[Handler, Remote] = {
    search.cmd_search_face: search_face,
    search.cmd_search_plate: search_plate,
    coappear.cmd_companions: companions,
    coappear.cmd_recurring: recurring,
    coappear.cmd_recurring_approve: recurring_approve,
    watchlist.cmd_watchlist_add: watchlist_add,
    watchlist.cmd_watchlist_approve: watchlist_approve,
    watchlist.cmd_watchlist_list: watchlist_list,
    watchlist.cmd_watchlist_show: watchlist_show,
    watchlist.cmd_watchlist_remove: watchlist_remove,
    alerts.cmd_alerts_list: alerts_list,
    alerts.cmd_alerts_show: alerts_show,
    alerts.cmd_alerts_review: alerts_review,
    audit.cmd_audit_list: audit_list,
    audit.cmd_audit_verify: audit_verify,
    export.cmd_export: export_request,
    export.cmd_export_verify: export_verify,
    commands.cmd_hold: hold,
}


def handler_for(handler: Handler, settings: Settings) -> Handler:
    """Client mode (``api_url`` set) for a command the service offers; else ``handler`` itself."""
    remote = REMOTE.get(handler)
    if remote is None or not client_mode(settings):
        return handler

    def through_service(args: argparse.Namespace, settings: Settings) -> int:
        if getattr(args, "user", None):
            raise ForbiddenError(
                f"--user {args.user!r} is refused in client mode (CITYWATCH_API_URL={settings.api_url}): "
                "the service acts as the person the API token belongs to; drop --user, or "
                "`citywatch login --name NAME` as that person"
            )
        with api_client(settings) as api:
            return remote(args, api)

    return through_service
