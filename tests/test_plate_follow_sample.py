"""plates.settled_follow_s on the sample: what following settled plates instead of
re-reading them may not cost. The sample's segments are decoded as indexing does and
their moving frames fed to the plate branch with the lever off (re-read every 1.6 s)
and on (the default); an investigator's checks must come out the same."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from citywatch.cameras import parse_cameras
from citywatch.footage import parse_stamp
from citywatch.models.plate_reader import load_plate_reader
from citywatch.sample.truth import load_ground_truth
from citywatch.settings import PlatesSettings, Settings
from citywatch.storage import Storage
from citywatch.tasks.index.decode import DecodeStats, MotionGate, sample_frames
from citywatch.tasks.index.faces import apply_privacy_masks
from citywatch.tasks.index.plates import PlatePass, SegmentPlates

pytestmark = pytest.mark.slow

SLACK = dt.timedelta(seconds=1.5)


def _passes(root: Path, follow_s: float) -> tuple[dict[str, list[PlatePass]], int]:
    """Every segment's plate passes (by segment key) and the text detections run."""
    base = Settings(storage__root=str(root))
    plates_settings = PlatesSettings(**(base.plates.model_dump() | {"settled_follow_s": follow_s}))
    storage = Storage(base)
    cameras = {c.id: c for c in parse_cameras((root / "cameras.yaml").read_text(), "cameras.yaml")}
    truth = load_ground_truth(root / "sample" / "ground_truth.json")
    reader = load_plate_reader(
        plates_settings.min_confidence, plates_settings.detect_side_px, plates_settings.detect_max_side_px
    )
    calls, out = reader.calls, {}
    for seg in truth.segments:
        camera = cameras[seg.camera_id]
        overlay = [list(r) for r in camera.overlay_regions]
        gate = MotionGate(base.decode.motion_pixel_delta, base.decode.motion_min_fraction, ignore=overlay)
        plates = SegmentPlates(reader, plates_settings, base.tracking, overlay)
        for frame in sample_frames(
            storage,
            storage.url(seg.key),
            sample_fps=base.decode.sample_fps,
            gate=gate,
            stats=DecodeStats(),
            skip_unsampled=base.decode.skip_unsampled,
        ):
            if frame.moving:
                masked = apply_privacy_masks(frame.image, camera.privacy_masks)
                plates.add_frame(frame.offset_s, masked, gate.regions, gate.mask)
        out[seg.key] = plates.passes()
    return out, reader.calls - calls


def test_following_settled_plates_reads_less_and_finds_the_same_plates(sample_dir: Path) -> None:
    truth = load_ground_truth(sample_dir / "sample" / "ground_truth.json")
    rereading, calls_before = _passes(sample_dir, 0.0)
    following, calls_after = _passes(sample_dir, PlatesSettings().settled_follow_s)
    assert PlatesSettings().settled_follow_s > 0  # on by default
    assert calls_after < 0.95 * calls_before

    def sightings(passes: dict[str, list[PlatePass]]) -> set[tuple[str, str]]:
        """(plate, camera) of every vehicle read exactly while it passed."""
        found = set()
        for v in truth.vehicles:
            for p in passes.get(v.key, []):
                ts = parse_stamp(Path(v.key).stem) + dt.timedelta(seconds=p.best.offset_s)
                if p.text == v.plate and v.start - SLACK <= ts <= v.end + SLACK:
                    found.add((v.plate, v.camera_id))
        return found

    def confident_texts(passes: dict[str, list[PlatePass]]) -> set[tuple[str, str]]:
        return {(key, p.text) for key, ps in passes.items() for p in ps if not p.low_confidence}

    assert sightings(following) == sightings(rereading)
    assert {v.plate for v in truth.vehicles if v.min_plate_px >= 80} <= {p for p, _ in sightings(following)}
    # no confident pass lost or made up: plate search and the watchlist sweep see the same texts
    assert confident_texts(following) == confident_texts(rereading)
