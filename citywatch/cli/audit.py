"""CLI: ``audit verify|list|restore`` and ``calibrate``. Every one is itself audited."""

from __future__ import annotations

import argparse
import dataclasses
import re

from citywatch.cli import output
from citywatch.cli.args import Parser, Subcommands, add_command, add_json_argument, add_subcommands
from citywatch.errors import BadInputError
from citywatch.governance.audit_log import AuditLog
from citywatch.governance.auth import Action, governed
from citywatch.governance.checkpoints import audit_trusted_keys, write_checkpoint
from citywatch.governance.run_records import RUN_ACTIONS, index_runs
from citywatch.settings import Settings
from citywatch.storage import Storage

_ANCHOR = re.compile(r"^(\d{1,12}):([0-9a-f]{64})$")


def register(sub: Subcommands[Parser]) -> None:
    p = add_command(
        sub,
        "audit",
        help="verify and read the tamper-evident audit log",
        description="Every search, watchlist change, export and refusal is a record of a hash "
        "chain (each record carries the hash of the one before) with a journal copy. Reading "
        "the log is itself audited.",
        examples=[
            "citywatch --user demo-admin audit verify",
            "citywatch --user demo-admin audit list --case DEMO-1",
        ],
    )
    audit_sub = add_subcommands(p, "audit_command", "verify, list or restore")

    v = add_command(
        audit_sub,
        "verify",
        help="check the hash chain; exit 1 at the first bad record",
        examples=[
            "citywatch audit verify",
            "citywatch audit verify --anchor 42:HASH  # the head written down by an earlier verify",
        ],
    )
    v.add_argument(
        "--anchor",
        help="SEQ:HASH written down earlier (from a previous verify): that record must still carry that hash",
    )
    v.add_argument(
        "--trusted-keys",
        action="append",
        default=[],
        metavar="FILE",
        help="audit public keys to trust (`citywatch keys public --audit`), besides this installation's",
    )
    add_json_argument(v)
    v.set_defaults(handler=cmd_audit_verify)

    cp = add_command(
        audit_sub,
        "checkpoint",
        help="sign the current head into the write-once checkpoint store now (admin; for cron)",
        examples=["citywatch --user demo-admin audit checkpoint"],
    )
    cp.set_defaults(handler=cmd_audit_checkpoint)

    ls = add_command(
        audit_sub,
        "list",
        help="audit records, oldest first",
        examples=[
            "citywatch audit list --case DEMO-1",
            "citywatch audit list --user demo-investigator --action search_face --limit 20 --json",
        ],
    )
    ls.add_argument("--case", dest="filter_case", metavar="CASE", help="only this case id")
    ls.add_argument("--user", dest="filter_user", metavar="USER", help="only this user")
    ls.add_argument(
        "--action",
        dest="filter_action",
        metavar="ACTION",
        choices=[*(a.value for a in Action), *RUN_ACTIONS],
        help="only this action (e.g. search_face)",
    )
    ls.add_argument("--limit", type=int, default=100, help="the latest N records (default %(default)s)")
    add_json_argument(ls)
    ls.set_defaults(handler=cmd_audit_list)

    runs = add_command(
        audit_sub,
        "runs",
        help="index runs from their audit records: a start with no end crashed (or still runs)",
        examples=["citywatch --user demo-admin audit runs", "citywatch audit runs --unfinished --json"],
    )
    runs.add_argument("--unfinished", action="store_true", help="only runs with no end record")
    add_json_argument(runs)
    runs.set_defaults(handler=cmd_audit_runs)

    r = add_command(
        audit_sub,
        "restore",
        help="re-add records a crashed writer left only in the journal",
        examples=["citywatch --user demo-admin audit restore"],
    )
    r.set_defaults(handler=cmd_audit_restore)

    c = add_command(
        sub,
        "calibrate",
        help="FMR/FNMR of the face model on labelled local photos, and a recommended match threshold",
        description="Match every pair of photos of FOLDER/<person>/<photo> and report the false "
        "match rate (FMR) and false non-match rate (FNMR) at each threshold, and the threshold "
        "that keeps FMR under --target-fmr. Calibrate on the local population: accuracy varies "
        "by population. Needs the admin role.",
        examples=[
            "citywatch --user demo-admin calibrate ./labelled-photos",
            "citywatch calibrate ./labelled-photos --target-fmr 0.01 --json",
        ],
    )
    c.add_argument("folder", help="FOLDER/<person>/<photo>: one face per photo")
    c.add_argument(
        "--target-fmr",
        type=float,
        default=0.001,
        help="largest acceptable false match rate (default 0.001 = 1 in 1,000)",
    )
    c.add_argument(
        "--sizes",
        type=face_sizes,
        default=DEFAULT_SIZES_TEXT,
        help="face sizes (px, comma-separated) to report rates at, each photo shrunk to them "
        f"(default {DEFAULT_SIZES_TEXT}; '' = none)",
    )
    add_json_argument(c)
    c.set_defaults(handler=cmd_calibrate)


DEFAULT_SIZES_TEXT = "40,56,80,120"  # tasks/search/calibrate.py DEFAULT_SIZES


def face_sizes(text: str) -> tuple[int, ...]:
    """``--sizes 40,56,80``: face sizes in px (8..1000), or '' for none."""
    sizes: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if not part.isdigit() or not 8 <= int(part) <= 1000:
            raise argparse.ArgumentTypeError(f"--sizes {text!r}: {part!r} is not a face size in px (8..1000)")
        sizes.append(int(part))
    return tuple(sorted(set(sizes)))


def parse_anchor(text: str) -> tuple[int, str]:
    match = _ANCHOR.fullmatch(text.strip())
    if not match:
        raise BadInputError(f"--anchor {text!r} must be SEQ:HASH, e.g. 42:<64 hex digits>")
    return int(match.group(1)), match.group(2)


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    anchor = parse_anchor(args.anchor) if args.anchor else None
    storage = Storage(settings)
    params = {"command": "audit verify", "anchor": args.anchor or "", "trusted_keys": args.trusted_keys}
    trusted = audit_trusted_keys(settings, args.trusted_keys)
    with governed(settings, storage, Action.AUDIT_READ, None, None, params) as run:
        verdict = AuditLog(storage).verify(anchor=anchor, trusted=trusted)
        run.result_count = verdict.checked
        run.detail = "" if verdict.ok else f"verify found: {verdict.reason}"
    if args.json:
        output.as_json(dataclasses.asdict(verdict))
    elif verdict.ok:
        output.line(f"audit log intact: {verdict.checked} records, every one signed")
        output.line(
            f"{verdict.checkpoints} signed checkpoints in {verdict.checkpoint_store} vouch for records "
            f"1..{verdict.covered_seq}; later records are protected by their signatures only"
        )
        if verdict.checked:
            output.line(f"head (write it down to --anchor later): {verdict.head_seq}:{verdict.head_hash}")
    else:
        where = (
            f"record {verdict.first_bad_seq}"
            if verdict.first_bad_seq is not None
            else f"checkpoint {verdict.first_bad_checkpoint}"
        )
        output.line(f"audit log BROKEN at {where}: {verdict.reason}")
        output.line(f"{verdict.checked} records before it are intact")
    return 0 if verdict.ok else 1


def cmd_audit_checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    storage = Storage(settings)
    with governed(
        settings, storage, Action.AUDIT_CHECKPOINT, None, None, {"command": "audit checkpoint"}
    ) as run:
        rows = AuditLog(storage).rows()
        head = rows[-1] if rows else None
        written = write_checkpoint(storage, head.seq, head.hash) if head is not None else None
        run.result_count = 1 if written else 0
    if written is None:
        output.line("no checkpoint needed: the latest one already covers the head")
    else:
        output.line(f"checkpoint {written.number} covers record {written.seq}: {written.location}")
    return 0


def cmd_audit_list(args: argparse.Namespace, settings: Settings) -> int:
    storage = Storage(settings)
    params = {
        "command": "audit list",
        "case": args.filter_case,
        "user": args.filter_user,
        "action": args.filter_action,
        "limit": args.limit,
    }
    with governed(settings, storage, Action.AUDIT_READ, None, None, params) as run:
        rows = AuditLog(storage).list(
            case_id=args.filter_case, user=args.filter_user, action=args.filter_action, limit=args.limit
        )
        run.result_count = len(rows)
    if args.json:
        output.as_json([r.fields_json() for r in rows])
        return 0
    output.table(
        ["seq", "time (UTC)", "user", "role", "action", "outcome", "case", "results", "why / detail"],
        [
            [
                r.seq,
                r.ts.strftime("%Y-%m-%d %H:%M:%S"),
                r.user,
                r.role,
                r.action,
                r.outcome,
                r.case_id,
                r.result_count,
                _shorten(r.detail or r.justification),
            ]
            for r in rows
        ],
    )
    output.line(f"{len(rows)} records")
    return 0


def cmd_audit_runs(args: argparse.Namespace, settings: Settings) -> int:
    storage = Storage(settings)
    params = {"command": "audit runs", "unfinished": args.unfinished}
    with governed(settings, storage, Action.AUDIT_READ, None, None, params) as run:
        runs = [r for r in index_runs(AuditLog(storage)) if r.end is None or not args.unfinished]
        run.result_count = len(runs)
    rows = [
        {
            "run": r.run_id,
            "started": r.started.isoformat(),
            "user": r.user,
            "footage": r.footage,
            "state": r.state,
            "start_seq": r.start_seq,
            "end_seq": r.end.seq if r.end else None,
            "ended": r.end.ts.isoformat() if r.end else None,
            "detail": r.end.detail if r.end else "",
        }
        for r in runs
    ]
    if args.json:
        output.as_json(rows)
        return 0
    columns = ["run", "started", "user", "state", "detail"]
    output.table(columns, [[row[c] for c in columns] for row in rows])
    unfinished = sum(r.end is None for r in runs)
    output.line(f"{len(runs)} index runs, {unfinished} with no end record")
    return 0


def _shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def cmd_audit_restore(args: argparse.Namespace, settings: Settings) -> int:
    storage = Storage(settings)
    with governed(settings, storage, Action.AUDIT_RESTORE, None, None, {"command": "audit restore"}) as run:
        restored = AuditLog(storage).restore_missing()
        run.result_count = len(restored)
    output.line(
        f"restored {len(restored)} records from the journal"
        + (f": {', '.join(map(str, restored))}" if restored else "")
    )
    return 0


def cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    from citywatch.models.loaders import face_model_for
    from citywatch.tasks.search.calibrate import calibrate

    storage = Storage(settings)
    folder = storage.resolve(args.folder)
    params = {
        "command": "calibrate",
        "folder": folder,
        "target_fmr": args.target_fmr,
        "face_backend": settings.faces.backend,
    }
    with governed(settings, storage, Action.CALIBRATE, None, None, params) as run:
        report = calibrate(storage, face_model_for(settings), folder, args.target_fmr, args.sizes)
        run.result_count = report.photos
    if args.json:
        output.as_json(dataclasses.asdict(report))
        return 0
    output.line(
        f"model {report.model}: {report.photos} photos of {report.people} people, "
        f"{report.genuine_pairs} genuine and {report.impostor_pairs} impostor pairs"
    )
    for skip in report.skipped:
        output.line(f"  skipped {skip.source}: {skip.reason}")
    shown = [p for p in report.points if round(p.threshold * 100) % 5 == 0]
    output.table(
        ["threshold", "FMR", "FNMR", "false matches", "missed matches"],
        [
            [f"{p.threshold:.2f}", f"{p.fmr:.4f}", f"{p.fnmr:.4f}", p.false_matches, p.false_non_matches]
            for p in shown
        ],
    )
    d = report.at_default
    output.line(f"model default {report.default_threshold:.3f}: FMR {d.fmr:.4f}, FNMR {d.fnmr:.4f}")
    best = report.recommended
    if best is not None and report.enough_impostors:
        output.line(
            f"recommended threshold for FMR <= {report.target_fmr:g}: {best.threshold:.2f} "
            f"(FMR {best.fmr:.4f}, FNMR {best.fnmr:.4f}); set "
            f"CITYWATCH_FACES__MATCH_THRESHOLD={best.threshold:.2f}"
        )
    elif best is not None:
        output.line(
            f"tentative threshold for FMR <= {report.target_fmr:g}: {best.threshold:.2f} "
            f"(FMR {best.fmr:.4f}, FNMR {best.fnmr:.4f}); do not deploy it yet:"
        )
    output.line(report.note)
    if report.by_size:
        output.line("by face size (each photo shrunk to the size vs every other photo at full size):")
        output.table(
            ["face px", "found", "FMR @default", "FNMR @default", "FMR @recommended", "FNMR @recommended"],
            [
                [
                    p.face_px,
                    f"{p.photos_found}/{p.photos_shrunk}",
                    f"{p.at_default.fmr:.4f}",
                    f"{p.at_default.fnmr:.4f}",
                    f"{p.at_recommended.fmr:.4f}" if p.at_recommended else "-",
                    f"{p.at_recommended.fnmr:.4f}" if p.at_recommended else "-",
                ]
                for p in report.by_size
            ],
        )
        output.line(f"faces under CITYWATCH_FACES__MATCH_MIN_PX={settings.faces.match_min_px:g} never match")
    return 0
