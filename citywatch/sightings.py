"""What a search returns: face sightings and plate sightings, ranked.

One type for each, used by the search tasks that make them, the reports and the CLI
that show them, and the analytics that turn them into timelines.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from citywatch.geometry import Box
from citywatch.schemas import PlateRow


@dataclass(frozen=True, slots=True)
class Sighting:
    """One track in which the probe's person was (probably) seen."""

    rank: int
    face_id: str
    camera_id: str
    camera_name: str
    ts: dt.datetime
    track_start: dt.datetime
    track_end: dt.datetime
    distance: float
    similarity: float
    bbox: Box
    segment_uri: str
    thumb_uri: str
    lat: float | None
    lon: float | None
    face_px: float = 0.0  # the face's size in the frame (smaller side of its box, px)
    best_distance: float | None = None  # the best face's own distance (``distance`` is the decision's)


@dataclass(frozen=True, slots=True)
class PlateSighting:
    """One pass of a plate matching the query, with its camera and footage segment."""

    rank: int
    plate: PlateRow
    camera_name: str
    score: float  # 0 exact; weighted edit distance otherwise
    segment_uri: str
