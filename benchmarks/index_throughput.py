"""Index throughput on the sample footage vs decode-only on the same files.

    .venv/bin/python benchmarks/index_throughput.py [--root DIR] [--workers 2]
    .venv/bin/python benchmarks/index_throughput.py --decode-levers [--root DIR] [--gop-s 1] [--repeats 3]

Prints seconds of footage processed per wall-clock second for (a) decode-only at
the same sample rate and the same number of worker processes, and (b) the full
index flow (Prefect server + Dask LocalCluster), their ratio, and faces embedded
per second. Both run in this one invocation so the ratio is fair on a noisy machine.
The Prefect server it starts (unless PREFECT_API_URL names one) is stopped at the end.

``--decode-levers`` runs no index flow: it decodes the same footage in this one process
with every frame decoded (the old path) and with unsampled non-reference frames skipped
(``decode_skip_unsampled``, the default), interleaved ``--repeats`` times, and prints
frames decoded (load-independent), CPU and wall seconds and their ratios, after checking
that both return the same sampled frames. ``--gop-s`` first re-encodes the footage with
keyframes that many seconds apart (same fps, x264 veryfast, B-frames on).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

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
    for _ in sample_frames(
        Storage(settings),
        uri,
        sample_fps=fps,
        gate=gate,
        stats=stats,
        skip_unsampled=settings.decode.skip_unsampled,
    ):
        pass
    return stats.duration_s


@dataclass
class LeverTotals:
    frames_decoded: int = 0
    frames_sampled: int = 0
    frames_moving: int = 0  # passed the motion gate: one face detector call each when indexing
    cpu_s: float = 0.0
    wall_s: float = 0.0


def decode_once(
    storage: Storage, uri: str, fps: float, skip: bool, threads: int
) -> tuple[list[float], LeverTotals]:
    from citywatch.tasks.index.decode import DecodeStats, MotionGate, sample_frames

    stats = DecodeStats()
    gate = MotionGate(storage.settings.decode.motion_pixel_delta, storage.settings.decode.motion_min_fraction)
    cpu, wall = time.process_time(), time.perf_counter()
    offsets = [
        f.offset_s
        for f in sample_frames(
            storage, uri, sample_fps=fps, gate=gate, stats=stats, threads=threads, skip_unsampled=skip
        )
    ]
    totals = LeverTotals(
        stats.frames_decoded,
        stats.frames_sampled,
        stats.frames_moving,
        time.process_time() - cpu,
        time.perf_counter() - wall,
    )
    return offsets, totals


def reencode(src: Path, dst: Path, gop_s: float) -> None:
    """Copy ``src`` with keyframes every ``gop_s`` seconds (same size and rate)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        rate = vin.average_rate or Fraction(15)
        vout = out.add_stream("libx264", rate=rate, options={"crf": "23", "preset": "veryfast"})
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        vout.codec_context.gop_size = max(1, round(gop_s * float(rate)))
        for i, frame in enumerate(inp.decode(vin)):
            frame.pts, frame.time_base = i, 1 / rate
            out.mux(vout.encode(frame))
        out.mux(vout.encode(None))


def decode_levers(args: argparse.Namespace, root: Path) -> None:
    """Old (every frame) vs planned (skip unsampled non-reference frames) decode, interleaved."""
    segments = sorted(root.glob("footage/*/*.mp4"))[: args.segments or None]
    if args.gop_s:
        for seg in segments:
            reencode(seg, seg.with_suffix(".tmp.mp4"), args.gop_s)
            seg.with_suffix(".tmp.mp4").replace(seg)
    storage = Storage(Settings(storage__root=str(root)))
    modes = {"every frame (old)": (False, 1), "skip unsampled (new)": (True, 1)}
    if args.threads > 1:
        modes[f"skip unsampled, {args.threads} threads"] = (True, args.threads)
    totals = {name: LeverTotals() for name in modes}
    for _ in range(args.repeats):
        for seg in segments:
            reference: list[float] | None = None
            for name, (skip, threads) in modes.items():
                offsets, t = decode_once(storage, str(seg), args.sample_fps, skip, threads)
                if reference is None:
                    reference = offsets
                elif offsets != reference:
                    raise SystemExit(f"{seg}: {name} sampled other frames than the old path")
                total = totals[name]
                total.frames_decoded += t.frames_decoded
                total.frames_sampled += t.frames_sampled
                total.frames_moving += t.frames_moving
                total.cpu_s += t.cpu_s
                total.wall_s += t.wall_s
    gop = f"{args.gop_s} s (re-encoded)" if args.gop_s else "as generated"
    print(
        f"segments: {len(segments)} x {args.repeats} repeats, sample fps: {args.sample_fps}, GOP: {gop}, "
        f"load avg before: {args.load_before:.1f}, after: {os.getloadavg()[0]:.1f}"
    )
    old = totals["every frame (old)"]
    print(
        f"{'mode':34} {'decoded':>8} {'sampled':>8} {'moving':>7} {'cpu s':>8} {'wall s':>8} "
        f"{'cpu ratio':>9} {'wall ratio':>10}"
    )
    for name, t in totals.items():
        print(
            f"{name:34} {t.frames_decoded:8d} {t.frames_sampled:8d} {t.frames_moving:7d} "
            f"{t.cpu_s:8.2f} {t.wall_s:8.2f} "
            f"{t.cpu_s / old.cpu_s:9.2f} {t.wall_s / old.wall_s:10.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="an existing sample root (default: generate one)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample-fps", type=float, default=2.0)
    parser.add_argument("--decode-levers", action="store_true", help="compare decode paths only")
    parser.add_argument("--gop-s", type=float, default=0.0, help="re-encode with this GOP first")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--segments", type=int, default=0, help="only the first N segments (0: all)")
    parser.add_argument("--threads", type=int, default=1, help="also time skipping with N threads")
    args = parser.parse_args()
    args.load_before = os.getloadavg()[0]

    tmp = Path(tempfile.mkdtemp(prefix="cw-bench-"))
    own_server = not os.environ.get("PREFECT_API_URL")
    try:
        run(args, tmp)
    finally:
        if own_server and not args.decode_levers:  # what the benchmark started, it stops
            stop_prefect_server(str(tmp / "state"))
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: Path) -> None:
    root = tmp / "data"
    if args.root:
        shutil.copytree(args.root, root, ignore=shutil.ignore_patterns("db", "thumbs", "reports"))
    else:
        from citywatch.sample.dataset import generate_sample

        generate_sample(root)
    if args.decode_levers:
        decode_levers(args, root)
        return
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
    print(f"real time per core: {index_rate / args.workers:.2f}x (footage s per wall s per worker)")
    print(f"peak memory of a worker process: {summary.peak_worker_rss_mb:.0f} MB")
    print_stages(summary.stages, summary.footage_s)


def print_stages(stages, footage_s: float) -> None:  # noqa: ANN001 - a StageCpu
    """The index flow's CPU per stage (tasks/index/stages.py), per hour of footage."""
    per_hour = stages.per_footage_hour(footage_s)
    total = per_hour["total"] or 1.0
    print(f"CPU per footage hour, by stage (all workers; {stages.total:.1f} CPU s in all):")
    for name, value in per_hour.items():
        print(f"  {name:<13} {value:8.0f} s  {100 * value / total:5.1f} %")


if __name__ == "__main__":
    main()
