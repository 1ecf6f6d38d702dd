"""Plate branch cost vs accuracy on the sample, in-process, per reader/gate configuration.

    .venv/bin/python benchmarks/plate_cost.py --root ROOT [--config NAME=ENV,ENV ...] [--segments N]

Decodes each sample segment once exactly as indexing does (sampling, motion gate,
privacy masks), then feeds the same moving frames, regions and motion masks to one ``SegmentPlates``
per configuration, interleaved per segment so each sees the same machine load. A
configuration is a name and plates-section overrides as ``field=value`` (comma
separated), e.g. ``side320=detect_side_px=320``. Prints per configuration: CPU seconds
per footage hour of PP-OCR text detection, recognition and the branch in all (thread
CPU time, load-independent), reader calls, and against ``sample/ground_truth.json``:
plates >= 80 px read exactly (the e2e test's guard), 40-80 px plates read exactly, and
confident rows the footage does not show (should be 0).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from citywatch.cameras import parse_cameras  # noqa: E402
from citywatch.footage import parse_stamp  # noqa: E402
from citywatch.models.plate_reader import PlateReader, load_plate_reader  # noqa: E402
from citywatch.sample.truth import load_ground_truth  # noqa: E402
from citywatch.settings import PlatesSettings, Settings  # noqa: E402
from citywatch.storage import Storage  # noqa: E402
from citywatch.tasks.index.decode import DecodeStats, MotionGate, sample_frames  # noqa: E402
from citywatch.tasks.index.faces import apply_privacy_masks  # noqa: E402
from citywatch.tasks.index.plate_frames import PlateFrames  # noqa: E402
from citywatch.tasks.index.plates import SegmentPlates  # noqa: E402

SLACK = dt.timedelta(seconds=1.5)


@dataclass
class Row:
    camera_id: str
    ts: dt.datetime
    text: str
    low: bool


@dataclass
class Totals:
    detect_s: float = 0.0
    read_s: float = 0.0
    branch_s: float = 0.0
    calls: int = 0
    gated: int = 0
    rows: list[Row] = field(default_factory=list)


def parse_config(text: str) -> tuple[str, dict[str, str]]:
    name, _, rest = text.partition("=")
    overrides = dict(item.split("=", 1) for item in rest.split(",") if item)
    return name, overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="a sample root (citywatch sample)")
    parser.add_argument("--config", action="append", default=[], help="NAME=field=value,field=value")
    parser.add_argument("--segments", type=int, default=0)
    args = parser.parse_args()
    root = Path(args.root)
    base = Settings(storage__root=str(root))
    storage = Storage(base)
    configs = [("default", {})] + [parse_config(c) for c in args.config]
    plates_by = {
        name: PlatesSettings(**(base.plates.model_dump() | overrides)) for name, overrides in configs
    }
    cameras = {c.id: c for c in parse_cameras((root / "cameras.yaml").read_text(), "cameras.yaml")}
    truth = load_ground_truth(root / "sample" / "ground_truth.json")
    segments = sorted(truth.segments, key=lambda s: s.key)
    if args.segments:
        segments = segments[: args.segments]
    readers: dict[tuple[float, int, int | None], PlateReader] = {}
    for p in plates_by.values():
        key = (p.min_confidence, p.detect_side_px, p.detect_max_side_px)
        if key not in readers:  # the process-wide cache holds two only
            readers[key] = load_plate_reader.__wrapped__(*key)
    totals = {name: Totals() for name, _ in configs}
    footage_s = 0.0
    for seg in segments:
        camera = cameras[seg.camera_id]
        overlay = [list(r) for r in camera.overlay_regions]
        masks = [[list(p) for p in poly] for poly in camera.privacy_masks]
        gate = MotionGate(base.decode.motion_pixel_delta, base.decode.motion_min_fraction, ignore=overlay)
        stats = DecodeStats()
        frames: list[tuple[float, np.ndarray | None, list[tuple[int, int, int, int]], np.ndarray | None]] = []
        for frame in sample_frames(
            storage,
            storage.url(seg.key),
            sample_fps=base.decode.sample_fps,
            gate=gate,
            stats=stats,
            skip_unsampled=base.decode.skip_unsampled,
        ):
            if frame.moving:  # as indexing feeds the plate branch (tasks/index/segment.py)
                image = apply_privacy_masks(frame.image, masks)
                motion = None if gate.mask is None else gate.mask.copy()
                frames.append((frame.offset_s, image, list(gate.regions), motion))
            else:
                frames.append((frame.offset_s, None, [], None))
        footage_s += stats.duration_s
        start = parse_stamp(Path(seg.key).stem)
        for name, _ in configs:
            p = plates_by[name]
            reader = readers[(p.min_confidence, p.detect_side_px, p.detect_max_side_px)]
            plates = SegmentPlates(reader, plates_by[name], base.tracking, overlay)
            before = (reader.cpu_detect_s, reader.cpu_read_s)
            calls_before = reader.calls
            t0 = time.thread_time()
            ordered = PlateFrames(plates_by[name].first_frame_waits)
            for offset, image, regions, motion in frames:
                if image is None:
                    ordered.still()
                    continue
                for ready in ordered.moving(offset, image, regions, motion):
                    plates.add_frame(ready.offset_s, ready.image, ready.regions, ready.motion)
            for ready in ordered.end():
                plates.add_frame(ready.offset_s, ready.image, ready.regions, ready.motion)
            passes = plates.passes()
            tot = totals[name]
            tot.branch_s += time.thread_time() - t0
            tot.detect_s += reader.cpu_detect_s - before[0]
            tot.read_s += reader.cpu_read_s - before[1]
            tot.calls += reader.calls - calls_before
            tot.gated += plates.gated
            tot.rows += [
                Row(seg.camera_id, start + dt.timedelta(seconds=p.best.offset_s), p.text, p.low_confidence)
                for p in passes
            ]
        moving = sum(1 for f in frames if f[1] is not None)
        print(f"  {seg.key}: {stats.duration_s:.0f} s, {moving} moving frames", flush=True)
    scale = 3600.0 / footage_s
    print(f"\n{len(segments)} segments, {footage_s:.0f} s of footage; CPU s per footage hour")
    print("| config | detect | read | branch | calls | gated | >=80 px | 40-80 px | confident wrong |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, _ in configs:
        tot = totals[name]
        big = small = big_n = small_n = 0
        for v in truth.vehicles:
            hit = any(
                r.camera_id == v.camera_id and v.start - SLACK <= r.ts <= v.end + SLACK and r.text == v.plate
                for r in tot.rows
            )
            if v.min_plate_px >= 80:
                big_n, big = big_n + 1, big + hit
            elif v.min_plate_px >= 40:
                small_n, small = small_n + 1, small + hit
        wrong = [
            r.text
            for r in tot.rows
            if not r.low
            and not any(
                r.text == v.plate and r.camera_id == v.camera_id and v.start - SLACK <= r.ts <= v.end + SLACK
                for v in truth.vehicles
            )
        ]
        print(
            f"| {name} | {tot.detect_s * scale:.0f} | {tot.read_s * scale:.0f} | {tot.branch_s * scale:.0f}"
            f" | {tot.calls} | {tot.gated} | {big}/{big_n} | {small}/{small_n} | {len(wrong)} {wrong[:4]} |"
        )


if __name__ == "__main__":
    main()
