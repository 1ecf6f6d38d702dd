"""Plate passes as indexing writes them, for the plate search tests."""

from __future__ import annotations

import datetime as dt
import random

from citywatch.schemas import PlateRow


def plate_pass(
    i: int, camera: str, ts: dt.datetime, text: str, confidence: float, rng: random.Random
) -> PlateRow:
    """Pass ``i`` (segment ``i // 10``) of ``text`` on ``camera`` at ``ts``; two passes in three
    carry a GPS position near Central (drawn from ``rng``), the others none."""
    gps = i % 3 != 0
    return PlateRow(
        id=f"seg{i // 10}#p{i}",
        segment_id=f"{camera}/seg{i // 10}",
        camera_id=camera,
        ts=ts,
        first_ts=ts,
        last_ts=ts,
        text=text,
        confidence=confidence,
        char_confidences=[],
        reads=2,
        low_confidence=False,
        bbox=(0.0, 0.0, 1.0, 1.0),
        track_id=f"seg{i // 10}#p{i}",
        thumb_uri="",
        lat=22.28 + rng.uniform(-0.01, 0.01) if gps else None,
        lon=114.15 + rng.uniform(-0.01, 0.01) if gps else None,
        model="test",
    )
