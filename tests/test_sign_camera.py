"""Issue 18: a camera with shop signs and no vehicles produces no plate rows.

The sample's sign camera (citywatch/sample/signs.py: WHGOV, a blinking neon OPEN,
SUNTRUP, QZ01 on its walls) rendered for one segment with its signs and nothing else,
then indexed through the real index path (decode, motion gate, text gate, PP-OCR, plate
gate, rows): no plate row, no plate text, and the refused lines counted in the
segment's stats.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from citywatch.sample.signs import SIGN_CAMERA
from citywatch.shards import read_index
from citywatch.storage import Storage
from citywatch.tables import segments_table
from citywatch.tasks.index.catalog import register_cameras
from citywatch.tasks.index.segment import SegmentOutcome, index_segments
from tests.conftest import settings_for
from tests.short_segments import render_sign_camera

START = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)


def _index_sign_camera(tmp_path: Path, **overrides: object) -> tuple[SegmentOutcome, Storage]:
    root = tmp_path / "data"
    (ref,) = render_sign_camera(root, [START])
    settings = settings_for(root, tmp_path, **overrides)
    storage = Storage(settings)
    cameras, _ = register_cameras(storage, settings, {SIGN_CAMERA})
    (outcome,) = index_segments([ref], cameras[SIGN_CAMERA], settings, "run-signs")
    return outcome, storage


def test_a_camera_with_shop_signs_and_no_vehicles_makes_no_plate_rows(tmp_path: Path) -> None:
    outcome, storage = _index_sign_camera(tmp_path)
    assert outcome.state == "done", outcome.error
    assert outcome.frames_analysed > 0  # the neon sign blinks: the gate let frames through
    assert outcome.plates == 0
    plates = read_index(storage.db, "plates", columns=["text"])
    assert plates is None or plates.num_rows == 0, plates.column("text").to_pylist()
    (segment,) = segments_table(storage.db).to_arrow().to_pylist()
    assert segment["state"] == "done"
    assert segment["plates_rejected_text"] > 0  # the signs were read and refused, not missed


def test_without_the_plate_gate_the_same_signs_become_plate_rows(tmp_path: Path) -> None:
    """What the rule above protects: the same segment with plates.gate_enabled off."""
    outcome, _ = _index_sign_camera(tmp_path, plates__gate_enabled=False)
    assert outcome.state == "done" and outcome.plates > 0
