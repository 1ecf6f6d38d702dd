"""CLI subcommands. Flows are imported lazily, after the Prefect server is known."""

from __future__ import annotations

import argparse

from citywatch.cli import output
from citywatch.cli.args import add_case_arguments
from citywatch.cli.sample_files import make_sample
from citywatch.filters import parse_time
from citywatch.settings import Settings
from citywatch.stack.prefect_server import ensure_prefect_server
from citywatch.storage import Storage


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("sample", help="write the sample footage, cameras.yaml and ground truth")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--segments-per-camera", type=int, default=2)
    p.add_argument("--segment-seconds", type=float, default=30.0)
    p.set_defaults(handler=cmd_sample)

    p = sub.add_parser("index", help="index new footage segments")
    p.add_argument("--footage", help="footage URL (default <root>/footage)")
    p.add_argument("--retry-failed", action="store_true", help="retry segments that failed before")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_index)

    p = sub.add_parser("search", help="search sightings")
    search_sub = p.add_subparsers(dest="what", required=True)
    f = search_sub.add_parser("face", help="where was this face seen?")
    f.add_argument("probe", help="photo of the person (path or URL)")
    f.add_argument("--camera", action="append", default=[], help="camera id (repeatable)")
    f.add_argument("--district")
    f.add_argument("--since", help="ISO 8601 time (UTC if no offset)")
    f.add_argument("--until", help="ISO 8601 time (UTC if no offset)")
    f.add_argument("--top-k", type=int)
    f.add_argument("--face", type=int, help="which face of a group photo (0 = leftmost)")
    add_case_arguments(f)
    f.add_argument("--json", action="store_true")
    f.set_defaults(handler=cmd_search_face)

    f = search_sub.add_parser("plate", help="where was this plate seen? (OCR-aware fuzzy match)")
    f.add_argument("text", help="plate text, or a pattern with * and ? (e.g. AB12*)")
    f.add_argument(
        "--max-edits",
        type=float,
        default=1.0,
        help="edit budget; confusable characters (O/0, I/1, B/8, ...) cost 0.3",
    )
    f.add_argument("--camera", action="append", default=[], help="camera id (repeatable)")
    f.add_argument("--district")
    f.add_argument("--since", help="ISO 8601 time (UTC if no offset)")
    f.add_argument("--until", help="ISO 8601 time (UTC if no offset)")
    f.add_argument("--near", help="LAT,LON,RADIUS_M")
    f.add_argument("--top-k", type=int)
    add_case_arguments(f)
    f.add_argument("--json", action="store_true")
    f.set_defaults(handler=cmd_search_plate)

    p = sub.add_parser("retention", help="delete face/plate rows past retention unless held (admin)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_retention)

    p = sub.add_parser("hold", help="keep a track's rows past retention for a case (supervisor)")
    p.add_argument("track_id", help="a face or plate track id (from search results)")
    add_case_arguments(p)
    p.set_defaults(handler=cmd_hold)

    # the other command groups live in their own modules
    from citywatch.cli import audit as commands_audit
    from citywatch.cli import export as commands_export
    from citywatch.cli import keys as commands_keys
    from citywatch.cli import stack as commands_stack
    from citywatch.cli import watchlist as commands_watchlist
    from citywatch.cli import webhooks as commands_webhooks

    groups = (
        commands_audit,
        commands_export,
        commands_keys,
        commands_watchlist,
        commands_webhooks,
        commands_stack,
    )
    for group in groups:
        group.register(sub)


def cmd_sample(args: argparse.Namespace, settings: Settings) -> int:
    root = make_sample(settings, args.seed, args.segments_per_camera, args.segment_seconds)
    output.line(f"sample footage written under {root} (demo users in users.yaml)")
    return 0


def _summary_lines(summary) -> None:  # noqa: ANN001 - flows.index_footage.IndexSummary
    output.line(
        f"segments: {summary.found} found, {summary.already_done} already indexed, "
        f"{summary.indexed} indexed now, {len(summary.failed)} failed"
        + (
            f", {summary.skipped_failed} skipped (failed before; --retry-failed)"
            if summary.skipped_failed
            else ""
        )
        + (f", {summary.skipped_leased} left to a concurrent run" if summary.skipped_leased else "")
    )
    output.line(
        f"faces: {summary.faces}, plates: {summary.plates}; "
        f"footage {summary.footage_s:.0f} s in {summary.wall_s:.1f} s"
    )
    for uri, reason in summary.failed:
        output.line(f"  FAILED {uri}: {reason}")
    for uri, warning in summary.warnings:
        output.line(f"  warning {uri}: {warning}")
    for cam in summary.unregistered_cameras:
        output.line(f"  camera {cam} is not in cameras.yaml: registered without a location")
    for problem in summary.misnamed:
        output.line(f"  skipped: {problem}")


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    api = ensure_prefect_server(settings.state_dir)
    from citywatch.flows.index_footage import run_index

    summary = run_index(settings, args.footage, retry_failed=args.retry_failed)
    if args.json:
        output.as_json(summary.__dict__)
    else:
        _summary_lines(summary)
        output.line(f"Prefect UI: {api.removesuffix('/api')}")
    return 0


def run_face_search(
    settings: Settings,
    probe: str,
    *,
    case_id: str | None,
    justification: str | None,
    cameras: list[str] | None = None,
    district: str | None = None,
    since: str | None = None,
    until: str | None = None,
    top_k: int | None = None,
    face_index: int | None = None,
):  # noqa: ANN201 - FaceSearchResult
    ensure_prefect_server(settings.state_dir)
    from citywatch.flows.search import search

    return search(
        probe=probe,
        camera_ids=cameras or [],
        district=district,
        since=parse_time(since, "--since") if since else None,
        until=parse_time(until, "--until") if until else None,
        top_k=top_k,
        face_index=face_index,
        case_id=case_id,
        justification=justification,
        settings=settings,
    )


def print_sightings(result) -> None:  # noqa: ANN001 - FaceSearchResult
    from citywatch.tasks.report import iso

    output.table(
        ["#", "camera", "time (UTC)", "distance", "similarity", "thumbnail"],
        [
            [s.rank, s.camera_id, iso(s.ts), f"{s.distance:.3f}", f"{s.similarity:.2f}", s.thumb_uri]
            for s in result.sightings
        ],
    )
    output.line(
        f"{len(result.sightings)} sightings under distance {result.threshold:.3f}; "
        f"report: {result.report_uri}"
    )


def cmd_search_face(args: argparse.Namespace, settings: Settings) -> int:
    result = run_face_search(
        settings,
        args.probe,
        case_id=args.case_id,
        justification=args.justification,
        cameras=args.camera,
        district=args.district,
        since=args.since,
        until=args.until,
        top_k=args.top_k,
        face_index=args.face,
    )
    if args.json:
        from citywatch.tasks.report import sighting_json

        output.as_json([sighting_json(s) for s in result.sightings])
    else:
        print_sightings(result)
    return 0


def run_plate_search(
    settings: Settings,
    text: str,
    *,
    case_id: str | None,
    justification: str | None,
    max_edits: float = 1.0,
    cameras: list[str] | None = None,
    district: str | None = None,
    since: str | None = None,
    until: str | None = None,
    near: str | None = None,
    top_k: int | None = None,
):  # noqa: ANN201
    from citywatch.tasks.plate_search import parse_near

    where = parse_near(near) if near else None
    ensure_prefect_server(settings.state_dir)
    from citywatch.flows.search import search_plate

    return search_plate(
        query=text,
        camera_ids=cameras or [],
        district=district,
        since=parse_time(since, "--since") if since else None,
        until=parse_time(until, "--until") if until else None,
        max_edits=max_edits,
        near=(where.lat, where.lon, where.radius_m) if where else None,
        top_k=top_k,
        case_id=case_id,
        justification=justification,
        settings=settings,
    )


def print_plate_sightings(result) -> None:  # noqa: ANN001 - PlateSearchResult
    from citywatch.tasks.report import iso

    output.table(
        ["#", "plate", "match", "camera", "time (UTC)", "reads", "location"],
        [
            [
                s.rank,
                s.plate.text + ("?" if s.plate.low_confidence else ""),
                "exact" if s.score == 0 else f"{s.score:.1f}",
                s.plate.camera_id,
                iso(s.plate.ts),
                s.plate.reads,
                f"{s.plate.lat:.5f},{s.plate.lon:.5f}" if s.plate.lat is not None else "-",
            ]
            for s in result.sightings
        ],
    )
    output.line(
        f"{len(result.sightings)} plate sightings for {result.query} "
        f"('?' = low confidence); report: {result.report_uri}"
    )


def cmd_search_plate(args: argparse.Namespace, settings: Settings) -> int:
    result = run_plate_search(
        settings,
        args.text,
        case_id=args.case_id,
        justification=args.justification,
        max_edits=args.max_edits,
        cameras=args.camera,
        district=args.district,
        since=args.since,
        until=args.until,
        near=args.near,
        top_k=args.top_k,
    )
    if args.json:
        from citywatch.tasks.report import plate_json

        output.as_json([plate_json(s) for s in result.sightings])
    else:
        print_plate_sightings(result)
    return 0


def cmd_retention(args: argparse.Namespace, settings: Settings) -> int:
    ensure_prefect_server(settings.state_dir)
    from citywatch.flows.retention import retention

    summary = retention(settings=settings)
    if args.json:
        output.as_json(
            {
                "faces": summary.faces.__repr__(),
                "plates": summary.plates.__repr__(),
                "indexes": {"created": summary.indexes.created, "refreshed": summary.indexes.refreshed},
            }
        )
        return 0
    for counts in (summary.faces, summary.plates):
        output.line(
            f"{counts.table}: {counts.deleted_rows} rows and {counts.deleted_thumbnails} "
            f"thumbnails older than {counts.cutoff:%Y-%m-%d %H:%M} UTC deleted; "
            f"{counts.held_rows} held for cases"
        )
    output.line(f"search indexes: {summary.indexes}")
    return 0


def cmd_hold(args: argparse.Namespace, settings: Settings) -> int:
    from citywatch.governance.auth import Action, governed
    from citywatch.tasks.retention import add_hold

    storage = Storage(settings)
    with governed(
        settings, storage, Action.CASE_HOLD, args.case_id, args.justification, {"track": args.track_id}
    ) as run:
        row = add_hold(storage, run.case_id, args.track_id, run.actor.user, run.justification)
        run.result_count = 1
    output.line(f"track {row.track_id} held for case {row.case_id}: kept past retention")
    return 0
