"""CLI: ``search face`` and ``search plate`` (case-bound, audited, with an HTML report);
``search companions|recurring|recurring-approve`` are in cli/coappear.py."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from citywatch.cli import coappear, output
from citywatch.cli.args import (
    Parser,
    Subcommands,
    add_case_arguments,
    add_command,
    add_json_argument,
    add_subcommands,
)
from citywatch.filters import parse_time
from citywatch.governance.auth import Action
from citywatch.governance.refusals import refusals_on_record
from citywatch.settings import Settings
from citywatch.stack.prefect_server import ensure_prefect_server
from citywatch.storage import Storage

if TYPE_CHECKING:  # flows are imported lazily, after the Prefect server is known
    from citywatch.flows.search import FaceSearchResult, PlateSearchResult


def register(sub: Subcommands[Parser]) -> None:
    p = add_command(
        sub,
        "search",
        help="search sightings of a face or a plate, companions, recurring faces",
        examples=[
            'citywatch search face probe.jpg --case C-1 --why "missing person report"',
            'citywatch search plate "AB12*" --case C-1 --why "stolen car report"',
            'citywatch search companions --case C-1 --why "who was with the suspect on 20 Nov"',
        ],
    )
    search_sub = add_subcommands(p, "what", "face, plate, companions or recurring")
    f = add_command(
        search_sub,
        "face",
        help="where was this face seen?",
        description="Embed the face of a probe photo and list the tracks in which that person "
        "was (probably) seen, nearest first, with an HTML report. A match is a lead for a "
        "person to check, never an identification.",
        examples=[
            'citywatch search face probe.jpg --case C-1 --why "missing person report"',
            "citywatch search face group.jpg --face 1 --district north --since 2026-11-20T08:00 "
            '--case C-1 --why "missing person report" --json',
        ],
    )
    f.add_argument("probe", help="photo of the person (path or URL)")
    _add_filter_arguments(f)
    f.add_argument("--top-k", type=int, help="at most this many sightings (default: the top_k setting)")
    f.add_argument("--face", type=int, help="which face of a group photo (0 = leftmost)")
    add_case_arguments(f)
    add_json_argument(f)
    f.set_defaults(handler=cmd_search_face)

    f = add_command(
        search_sub,
        "plate",
        help="where was this plate seen? (OCR-aware fuzzy match)",
        examples=[
            'citywatch search plate AB1234 --case C-1 --why "stolen car report"',
            'citywatch search plate "AB12*" --near 22.30,114.17,500 --case C-1 --why "stolen car report"',
        ],
    )
    f.add_argument("text", help="plate text, or a pattern with * and ? (e.g. AB12*)")
    f.add_argument(
        "--max-edits",
        type=float,
        default=1.0,
        help="edit budget; confusable characters (O/0, I/1, B/8, ...) cost 0.3 (default %(default)s)",
    )
    _add_filter_arguments(f)
    f.add_argument("--near", help="LAT,LON,RADIUS_M: only sightings within RADIUS_M metres")
    f.add_argument("--top-k", type=int, help="at most this many sightings (default: the top_k setting)")
    add_case_arguments(f)
    add_json_argument(f)
    f.set_defaults(handler=cmd_search_plate)
    coappear.register(search_sub)
    coappear.register_top_level(sub)


def _add_filter_arguments(parser: Parser) -> None:
    parser.add_argument("--camera", action="append", default=[], help="camera id (repeatable)")
    parser.add_argument("--district", help="only cameras of this district (as in cameras.yaml)")
    parser.add_argument("--since", help="ISO 8601 time (UTC if no offset)")
    parser.add_argument("--until", help="ISO 8601 time (UTC if no offset)")


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
) -> FaceSearchResult:
    params = {"probe": probe, "since": since, "until": until}
    with refusals_on_record(settings, Storage(settings), Action.SEARCH_FACE, case_id, justification, params):
        start = parse_time(since, "--since") if since else None
        end = parse_time(until, "--until") if until else None
    ensure_prefect_server(settings.storage.state_dir)
    from citywatch.flows.search import search

    return search(
        probe=probe,
        camera_ids=cameras or [],
        district=district,
        since=start,
        until=end,
        top_k=top_k,
        face_index=face_index,
        case_id=case_id,
        justification=justification,
        settings=settings,
    )


def print_sightings(result: FaceSearchResult) -> None:
    from citywatch.times import format_utc

    output.table(
        ["#", "camera", "time (UTC)", "distance", "similarity", "face px", "thumbnail"],
        [
            [
                s.rank,
                s.camera_id,
                format_utc(s.ts),
                f"{s.distance:.3f}",
                f"{s.similarity:.2f}",
                f"{s.face_px:.0f}",
                s.thumb_uri,
            ]
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
        from citywatch.tasks.search.report import sighting_json

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
) -> PlateSearchResult:
    from citywatch.tasks.search.plates import parse_near

    params = {"query": text, "since": since, "until": until, "near": near}
    with refusals_on_record(settings, Storage(settings), Action.SEARCH_PLATE, case_id, justification, params):
        where = parse_near(near) if near else None
        start = parse_time(since, "--since") if since else None
        end = parse_time(until, "--until") if until else None
    ensure_prefect_server(settings.storage.state_dir)
    from citywatch.flows.search import search_plate

    return search_plate(
        query=text,
        camera_ids=cameras or [],
        district=district,
        since=start,
        until=end,
        max_edits=max_edits,
        near=(where.lat, where.lon, where.radius_m) if where else None,
        top_k=top_k,
        case_id=case_id,
        justification=justification,
        settings=settings,
    )


def print_plate_sightings(result: PlateSearchResult) -> None:
    from citywatch.times import format_utc

    output.table(
        ["#", "plate", "match", "camera", "time (UTC)", "reads", "location"],
        [
            [
                s.rank,
                s.plate.text + ("?" if s.plate.low_confidence else ""),
                "exact" if s.score == 0 else f"{s.score:.1f}",
                s.plate.camera_id,
                format_utc(s.plate.ts),
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
        from citywatch.tasks.search.report import plate_json

        output.as_json([plate_json(s) for s in result.sightings])
    else:
        print_plate_sightings(result)
    return 0
