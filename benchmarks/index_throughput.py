"""Index throughput on the sample footage vs decode-only on the same files.

    .venv/bin/python benchmarks/index_throughput.py [--root DIR] [--workers 2]

Prints seconds of footage processed per wall-clock second for (a) decode-only at
the same sample rate and the same number of worker processes, and (b) the full
index flow (Prefect server + Dask LocalCluster), their ratio, and faces embedded
per second. Both run in this one invocation so the ratio is fair on a noisy machine.
The Prefect server it starts (unless PREFECT_API_URL names one) is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from citywatch.settings import Settings  # noqa: E402
from citywatch.stack.prefect_server import ensure_prefect_server, stop_prefect_server  # noqa: E402
from citywatch.storage import Storage  # noqa: E402


def decode_only(args: tuple[str, str, float]) -> float:
    """Decode one segment exactly as indexing does (sampling + motion gate)."""
    from citywatch.tasks.index.decode import DecodeStats, MotionGate, sample_frames

    root, uri, fps = args
    settings = Settings(storage__root=root)
    stats = DecodeStats()
    gate = MotionGate(settings.decode.motion_pixel_delta, settings.decode.motion_min_fraction)
    for _ in sample_frames(Storage(settings), uri, sample_fps=fps, gate=gate, stats=stats):
        pass
    return stats.duration_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="an existing sample root (default: generate one)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample-fps", type=float, default=2.0)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cw-bench-"))
    own_server = not os.environ.get("PREFECT_API_URL")
    try:
        run(args, tmp)
    finally:
        if own_server:  # what the benchmark started, it stops
            stop_prefect_server(str(tmp / "state"))
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: Path) -> None:
    root = tmp / "data"
    if args.root:
        shutil.copytree(args.root, root, ignore=shutil.ignore_patterns("db", "thumbs", "reports"))
    else:
        from citywatch.sample.dataset import generate_sample

        generate_sample(root)
    settings = Settings(
        storage__root=str(root),
        storage__state_dir=str(tmp / "state"),
        user="demo-admin",
        dask__workers=args.workers,
        decode__sample_fps=args.sample_fps,
    )
    storage = Storage(settings)
    from citywatch.governance.auth import write_demo_users

    write_demo_users(storage)
    segments = [o.url for o in storage.list_files(storage.url("footage")) if o.url.endswith(".mp4")]

    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        footage_s = sum(pool.map(decode_only, [(str(root), u, args.sample_fps) for u in segments]))
    decode_wall = time.perf_counter() - t0

    ensure_prefect_server(settings.storage.state_dir)
    from citywatch.flows.index_footage import run_index

    t0 = time.perf_counter()
    summary = run_index(settings)
    index_wall = time.perf_counter() - t0

    decode_rate = footage_s / decode_wall
    index_rate = summary.footage_s / index_wall
    print(
        f"segments: {len(segments)}, footage: {footage_s:.0f} s, workers: {args.workers}, "
        f"sample fps: {args.sample_fps}"
    )
    print(f"decode-only : {decode_rate:7.1f} s of footage per s  ({decode_wall:.1f} s wall)")
    print(
        f"index flow  : {index_rate:7.1f} s of footage per s  ({index_wall:.1f} s wall, "
        f"incl. Dask cluster start)"
    )
    print(f"ratio index/decode: {index_rate / decode_rate:.2f}")
    print(f"faces embedded: {summary.faces} ({summary.faces / index_wall:.1f} per s)")


if __name__ == "__main__":
    main()
