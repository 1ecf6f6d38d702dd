"""CLI subcommands. Flows are imported lazily, after the Prefect server is known."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from citywatch import output
from citywatch.errors import BadInputError
from citywatch.filters import parse_time
from citywatch.prefect_server import ensure_prefect_server, stop_prefect_server
from citywatch.settings import Settings
from citywatch.storage import Storage, is_remote


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
    f.add_argument("--json", action="store_true")
    f.set_defaults(handler=cmd_search_face)

    p = sub.add_parser("demo", help="sample -> index -> search, end to end")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("down", help="stop the local Prefect server started by citywatch")
    p.set_defaults(handler=cmd_down)


def make_sample(settings: Settings, seed: int, segments_per_camera: int = 2,
                segment_seconds: float = 30.0) -> Path:
    """Generate the sample into the storage root (via a temp dir for remote roots)."""
    from citywatch.sample import generate_sample

    storage = Storage(settings)
    if not is_remote(storage.root):
        generate_sample(Path(storage.root), seed=seed, segments_per_camera=segments_per_camera,
                        segment_seconds=segment_seconds)
        return Path(storage.root)
    with tempfile.TemporaryDirectory() as tmp:
        generate_sample(Path(tmp), seed=seed, segments_per_camera=segments_per_camera,
                        segment_seconds=segment_seconds)
        fs, path = storage.fs(storage.root)
        fs.put(f"{tmp}/", path, recursive=True)
    return Path(storage.root)


def cmd_sample(args: argparse.Namespace, settings: Settings) -> int:
    root = make_sample(settings, args.seed, args.segments_per_camera, args.segment_seconds)
    output.line(f"sample footage written under {root}")
    return 0


def _summary_lines(summary) -> None:  # noqa: ANN001 - flows.index_footage.IndexSummary
    output.line(
        f"segments: {summary.found} found, {summary.already_done} already indexed, "
        f"{summary.indexed} indexed now, {len(summary.failed)} failed"
        + (f", {summary.skipped_failed} skipped (failed before; --retry-failed)"
           if summary.skipped_failed else ""))
    output.line(f"faces: {summary.faces}; footage {summary.footage_s:.0f} s in {summary.wall_s:.1f} s")
    for uri, reason in summary.failed:
        output.line(f"  FAILED {uri}: {reason}")
    for cam in summary.unregistered_cameras:
        output.line(f"  camera {cam} is not in cameras.yaml: registered without a location")
    for problem in summary.misnamed:
        output.line(f"  skipped: {problem}")


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    api = ensure_prefect_server(settings.state_dir)
    from flows.index_footage import run_index

    summary = run_index(settings, args.footage, retry_failed=args.retry_failed)
    if args.json:
        output.as_json(summary.__dict__)
    else:
        _summary_lines(summary)
        output.line(f"Prefect UI: {api.removesuffix('/api')}")
    return 0


def run_face_search(settings: Settings, probe: str, *, cameras: list[str] | None = None,
                    district: str | None = None, since: str | None = None,
                    until: str | None = None, top_k: int | None = None,
                    face_index: int | None = None):  # noqa: ANN201 - FaceSearchResult
    ensure_prefect_server(settings.state_dir)
    from flows.search import search

    return search(
        probe=probe, camera_ids=cameras or [], district=district,
        since=parse_time(since, "--since") if since else None,
        until=parse_time(until, "--until") if until else None,
        top_k=top_k, face_index=face_index, settings=settings,
    )


def print_sightings(result) -> None:  # noqa: ANN001 - FaceSearchResult
    from tasks.report import iso

    output.table(
        ["#", "camera", "time (UTC)", "distance", "similarity", "thumbnail"],
        [[s.rank, s.camera_id, iso(s.ts), f"{s.distance:.3f}", f"{s.similarity:.2f}", s.thumb_uri]
         for s in result.sightings])
    output.line(f"{len(result.sightings)} sightings under distance {result.threshold:.3f}; "
                f"report: {result.report_uri}")


def cmd_search_face(args: argparse.Namespace, settings: Settings) -> int:
    result = run_face_search(settings, args.probe, cameras=args.camera, district=args.district,
                             since=args.since, until=args.until, top_k=args.top_k,
                             face_index=args.face)
    if args.json:
        from tasks.report import sighting_json

        output.as_json([sighting_json(s) for s in result.sightings])
    else:
        print_sightings(result)
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from citywatch.sample import load_ground_truth

    storage = Storage(settings)
    if is_remote(storage.root):
        raise BadInputError("demo runs on a local storage root; use index/search for s3")
    root = Path(storage.root)
    if not (root / "sample" / "ground_truth.json").is_file():
        output.line(f"1/3 writing sample footage under {root} ...")
        make_sample(settings, args.seed)
    else:
        output.line(f"1/3 sample footage already under {root}")
    truth = load_ground_truth(root / "sample" / "ground_truth.json")
    api = ensure_prefect_server(settings.state_dir)
    output.line(f"2/3 indexing (Prefect UI: {api.removesuffix('/api')}) ...")
    from flows.index_footage import run_index

    _summary_lines(run_index(settings))
    output.line("3/3 searching with a different photo of each person ...")
    for person in truth.people:
        if not person.probe:
            continue
        if person.in_footage and person.person_id not in ("obama",) and not person.probe_is_main:
            continue
        result = run_face_search(settings, str(root / person.probe), top_k=5)
        where = "in the footage" if person.in_footage else "NOT in the footage"
        output.line(f"\n== {person.person_id} ({where}), probe {person.probe}")
        print_sightings(result)
    return 0


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    stopped = stop_prefect_server(settings.state_dir)
    output.line("stopped the local Prefect server" if stopped else "no local Prefect server was running")
    if args and getattr(args, "purge", False):
        shutil.rmtree(settings.state_dir, ignore_errors=True)
    return 0
