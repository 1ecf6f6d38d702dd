"""Short footage of the sample's sign camera, rendered in a few seconds (no sample needed):
its shop signs only (citywatch/sample/signs.py), 8 s per segment."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from citywatch.footage import SegmentRef, format_stamp
from citywatch.sample.cameras import SITES, write_cameras_yaml
from citywatch.sample.plan import SampleConfig
from citywatch.sample.signs import SIGN_CAMERA, sign_sprites
from citywatch.sample.video import SegmentJob, render_segment

CFG = SampleConfig(seed=7, segments_per_camera=1, segment_seconds=8, fps=15, width=1280, height=720)


def render_sign_camera(root: Path, starts: list[dt.datetime]) -> list[SegmentRef]:
    """``root/cameras.yaml`` and one sign-camera segment per start; their refs."""
    index = next(i for i, s in enumerate(SITES) if s.camera_id == SIGN_CAMERA)
    write_cameras_yaml(root / "cameras.yaml", SITES, CFG.size)
    refs = []
    for k, start in enumerate(starts):
        path = root / "footage" / SIGN_CAMERA / f"{format_stamp(start)}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        signs = sign_sprites(SIGN_CAMERA, CFG.size)
        render_segment(SegmentJob(path, SITES[index], index, k, start, signs, CFG))
        size = path.stat().st_size
        refs.append(SegmentRef(f"{SIGN_CAMERA}/{path.stem}", SIGN_CAMERA, start, str(path), size))
    return refs
