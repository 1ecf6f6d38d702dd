"""CLI: ``export`` (a redacted, signed evidence clip) and ``export verify PATH``."""

from __future__ import annotations

import argparse
import dataclasses
import re

from citywatch.cli import output
from citywatch.cli.args import Parser, Subcommands, add_command, add_json_argument
from citywatch.errors import BadInputError
from citywatch.filters import parse_time
from citywatch.governance.auth import Action
from citywatch.governance.export_verify import export_trusted_keys, verify_export
from citywatch.governance.refusals import refusals_on_record
from citywatch.settings import Settings
from citywatch.stack.prefect_server import ensure_prefect_server
from citywatch.storage import Storage

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min)?\s*$")


def parse_duration(text: str, what: str) -> float:
    """``10``, ``10s``, ``1.5m`` -> seconds."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise BadInputError(f"{what} {text!r} is not a duration like 10s or 2m")
    value = float(match.group(1))
    return value * 60 if match.group(2) in ("m", "min") else value


def register(sub: Subcommands[Parser]) -> None:
    p = add_command(
        sub,
        "export",
        help="a redacted, signed evidence clip for a case (or: export verify PATH)",
        description="Cut a clip around an alert, a sighting or a camera time range, blur "
        "privacy masks and every face but the subject's, and write it with a signed "
        "manifest to <root>/exports/<case>/. `citywatch export verify PATH` checks one.",
        examples=[
            'citywatch --user demo-investigator export --alert ALERT_ID --case C-1 --why "court evidence"',
            "citywatch export --camera cam-nathan-rd --since 2026-11-20T08:00:00Z --until "
            '2026-11-20T08:00:30Z --probe obama.jpg --case C-1 --why "evidence for court"',
            "citywatch export verify data/exports/C-1/EXPORT_ID.manifest.json",
        ],
    )
    # not required=True: `export verify PATH` needs neither (cmd_export checks them)
    p.add_argument("--case", help="case id the export belongs to (needed to export; not for verify)")
    p.add_argument(
        "--why", help="justification: why this export is necessary (needed to export; not for verify)"
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument("--alert", help="alert id: the alert's sighting is the subject")
    what.add_argument("--sighting", help="sighting (faces row) id: its track is the subject")
    what.add_argument("--camera", help="camera id, with --since and --until")
    p.add_argument("--since", help="ISO 8601 start (UTC if no offset), with --camera")
    p.add_argument("--until", help="ISO 8601 end (UTC if no offset), with --camera")
    p.add_argument("--probe", help="photo of the subject, with --camera: their face stays clear")
    p.add_argument("--face", type=int, help="which face of a group probe photo (0 = leftmost)")
    p.add_argument("--pad", help="time added before and after a sighting (default export_pad_s, e.g. 10s)")
    add_json_argument(p)
    p.set_defaults(handler=cmd_export)
    export_sub = p.add_subparsers(dest="export_command", title="commands", metavar="COMMAND", help="verify")
    v = add_command(
        export_sub,
        "verify",
        help="check an export's signature, clip and sources",
        examples=["citywatch export verify data/exports/C-1/EXPORT_ID.manifest.json --json"],
    )
    v.add_argument("path", help="the export's .manifest.json or .mp4 (path or URL)")
    v.add_argument(
        "--public-key",
        action="append",
        default=[],
        metavar="FILE",
        help="a trusted public key file (`citywatch keys public` output or PEM); repeatable",
    )
    v.add_argument("--trusted-keys", action="append", default=[], metavar="FILE", help="same as --public-key")
    v.add_argument(
        "--allow-missing-source",
        action="store_true",
        help="accept source segments that no longer exist (otherwise the verify fails)",
    )
    add_json_argument(v)
    v.set_defaults(handler=cmd_export_verify)


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from citywatch.tasks.export.request import ExportRequest

    params = {k: getattr(args, k) for k in ("alert", "sighting", "camera", "since", "until", "probe", "pad")}
    with refusals_on_record(settings, Storage(settings), Action.EXPORT, args.case, args.why, params):
        if not args.case or not args.why:
            raise BadInputError("export needs --case CASE and --why JUSTIFICATION")
        if not (args.alert or args.sighting or args.camera):
            raise BadInputError(
                "say what to export: --alert ID, --sighting ID, or --camera ID --since T --until T"
            )
        request = ExportRequest(
            case_id=args.case,
            justification=args.why,
            sighting_id=args.sighting,
            alert_id=args.alert,
            camera_id=args.camera,
            since=parse_time(args.since, "--since") if args.since else None,
            until=parse_time(args.until, "--until") if args.until else None,
            probe=args.probe,
            probe_face=args.face,
            pad_s=parse_duration(args.pad, "--pad") if args.pad else None,
        )
    ensure_prefect_server(settings.storage.state_dir)
    from citywatch.flows.redact_export import redact_export

    result = redact_export(request=request, settings=settings)
    if args.json:
        output.as_json(dataclasses.asdict(result))
        return 0
    output.line(f"export {result.export_id} for case {result.case_id}: {result.frames} frames")
    output.line(f"  clip:       {result.clip_uri}")
    output.line(f"  manifest:   {result.manifest_uri} (signed, key {result.key_id})")
    output.line(f"  redactions: {result.redaction_log_uri}")
    subject = result.subject
    if subject.matched_by == "none":
        output.line("  WARNING: the subject was not found in the clip: every face is blurred")
    elif subject.matched_by != "no-subject":
        output.line(
            f"  subject kept clear: track(s) {list(subject.tracks)} (matched by {subject.matched_by})"
        )
    for gap in result.gaps:
        output.line(f"  GAP {gap.start.isoformat()} .. {gap.end.isoformat()}: {gap.reason}")
    return 0


def cmd_export_verify(args: argparse.Namespace, settings: Settings) -> int:
    trusted = export_trusted_keys(settings, [*args.public_key, *args.trusted_keys])
    report = verify_export(
        Storage(settings), trusted, args.path, allow_missing_source=args.allow_missing_source
    )
    if args.json:
        output.as_json(
            {
                "manifest": report.manifest_url,
                "ok": report.ok,
                "checks": [dataclasses.asdict(c) for c in report.checks],
            }
        )
    else:
        output.table(["check", "status", "detail"], [[c.name, c.status, c.detail] for c in report.checks])
        if report.ok:
            output.line(f"export verified: {report.manifest_url}")
        else:
            failed = "; ".join(f"{c.name}: {c.detail}" for c in report.failed)
            output.line(f"export verification FAILED: {failed}")
    return 0 if report.ok else 1
