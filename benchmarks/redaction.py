"""Redaction/export throughput against decode-only and decode+encode, same footage.

    python benchmarks/redaction.py [--sample DIR] [--camera cam-hennessy-rd]
                                   [--start 5] [--seconds 20] [--mode pixelate]

Uses the sample footage (generated into a temp dir unless ``--sample`` points at
one) and cuts ``--seconds`` of one camera starting ``--start`` s into its first
segment, so the clip crosses a segment boundary. Stages, each over the same frames:

- decode: PyAV decode + BGR conversion of every clip frame (``iter_clip_frames``);
- decode+encode: the same, encoded to H.264 MP4 without redaction (``render_clip``);
- scan: decode + face detection and tracking on every frame (export pass 1);
- redact+encode: decode + redaction + H.264 encoding (export pass 2);
- export: scan + redact+encode, i.e. what ``citywatch export`` spends per frame.

Prints frames per second and each stage's speed as a ratio of decode-only and of
decode+encode. Single process; the detector runs on one thread as in the workers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np

from citywatch.cameras import parse_cameras
from citywatch.footage import discover_segments
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tasks.export.clip import ClipFrame, ClipPlan, ClipSource, iter_clip_frames, render_clip
from citywatch.tasks.export.redact import FrameRedactor, RedactionStyle
from citywatch.tasks.export.redact_plan import SubjectChoice, plan_redactions
from citywatch.tasks.export.scan import scan_clip


def clip_plan(root: Path, camera_id: str, start_s: float, seconds: float) -> ClipPlan:
    storage = Storage(Settings(storage__root=str(root)))
    cameras = {c.id: c.to_row() for c in parse_cameras((root / "cameras.yaml").read_text(), "cameras.yaml")}
    segments = [
        s
        for s in discover_segments(storage.list_files(str(root / "footage"))).segments
        if s.camera_id == camera_id
    ]
    begin = segments[0].start + dt.timedelta(seconds=start_s)
    end = begin + dt.timedelta(seconds=seconds)
    sources = []
    for ref, nxt in zip(segments, [*segments[1:], None]):
        seg_end = nxt.start - dt.timedelta(microseconds=1) if nxt else ref.start + dt.timedelta(hours=1)
        if seg_end < begin or ref.start > end:
            continue
        sources.append(
            ClipSource(
                ref.id,
                ref.uri,
                "",
                ref.size_bytes,
                ref.start,
                seg_end,
                max(begin, ref.start),
                min(end, seg_end),
            )
        )
    return ClipPlan(cameras[camera_id], begin, end, tuple(sources), ())


def timed(label: str, fn):  # noqa: ANN001, ANN201 - benchmark helper
    began = time.perf_counter()
    result = fn()
    return label, result, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, help="a generated sample root (default: make one)")
    parser.add_argument("--camera", default="cam-hennessy-rd")
    parser.add_argument("--start", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--mode", default="pixelate", choices=["pixelate", "blur", "fill"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.sample
        if root is None:
            from citywatch.sample.dataset import generate_sample

            root = Path(tmp, "sample")
            generate_sample(root, seed=7, segments_per_camera=2, segment_seconds=20.0)
        settings = Settings(storage__root=str(Path(tmp, "out")), redact__mode=args.mode)
        storage = Storage(settings)
        plan = clip_plan(root.resolve(), args.camera, args.start, args.seconds)
        scan_clip(
            storage,
            ClipPlan(plan.camera, plan.start, plan.start + dt.timedelta(seconds=0.2), plan.sources[:1], ()),
            settings,
        )  # load models outside timing
        rows = []
        rows.append(timed("decode", lambda: sum(1 for _ in iter_clip_frames(storage, plan))))
        rows.append(
            timed(
                "decode+encode",
                lambda: (
                    render_clip(
                        storage,
                        plan,
                        "bench/plain.mp4",
                        lambda f: f.image,
                        crf=settings.export.crf,
                        preset=settings.export.preset,
                        fps=15.0,
                    ).frames
                ),
            )
        )
        label, scan, scan_s = timed("scan (detect+track)", lambda: scan_clip(storage, plan, settings))
        rows.append((label, scan.frames, scan_s))
        frames, _ = plan_redactions(
            scan.tracks,
            SubjectChoice((), "no-subject"),
            n_frames=scan.frames,
            width=scan.width,
            height=scan.height,
            hold=settings.redact.hold_frames,
            margin=settings.redact.face_margin,
        )
        redactor = FrameRedactor.build(
            RedactionStyle.from_settings(settings), plan.camera.privacy_masks, scan.width, scan.height
        )

        def redact(frame: ClipFrame) -> np.ndarray:
            return redactor(frame.image, frames[frame.index])

        label, clip, render_s = timed(
            "redact+encode",
            lambda: render_clip(
                storage,
                plan,
                "bench/redacted.mp4",
                redact,
                crf=settings.export.crf,
                preset=settings.export.preset,
                fps=scan.fps,
            ),
        )
        rows.append((label, clip.frames, render_s))
        rows.append(("export (scan + redact+encode)", clip.frames, scan_s + render_s))
    decode_fps = rows[0][1] / rows[0][2]
    encode_fps = rows[1][1] / rows[1][2]
    print(
        f"{args.camera}, {args.seconds:.0f} s from +{args.start:.0f} s, mode {args.mode}, "
        f"crf {settings.export.crf} {settings.export.preset}; "
        f"{sum(len(t.frames) for t in scan.tracks)} face detections in {len(scan.tracks)} tracks"
    )
    print(f"{'stage':32} {'frames':>6} {'seconds':>8} {'fps':>7} {'vs decode':>10} {'vs dec+enc':>10}")
    for label, n, seconds in rows:
        fps = n / seconds
        print(
            f"{label:32} {n:6d} {seconds:8.2f} {fps:7.1f} {fps / decode_fps:10.3f} {fps / encode_fps:10.3f}"
        )


if __name__ == "__main__":
    main()
