"""First pass over a clip: find and track every face (and plate) in every frame.

No frame is kept: the scan returns tracks (boxes per frame index), the clip's
frame times and, for face tracks, the distance of their best crops to the
subject's embeddings. The second pass (``render_clip``) decodes the frames again.
"""

from __future__ import annotations

import datetime as dt
import heapq
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from citywatch.geometry import Box
from citywatch.models.base import FaceDetection, FaceModel
from citywatch.models.loaders import plate_reader_for, redaction_face_model
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tasks.export.clip import ClipPlan, iter_clip_frames
from citywatch.tasks.export.redact_plan import ClipTrack
from citywatch.tasks.index.faces import crop_around
from citywatch.tasks.index.tracking import Tracker

PlateFinder = Callable[[np.ndarray], list[Box]]
"""Hook for plate redaction: a frame -> plate boxes in its pixels."""


@dataclass(frozen=True, slots=True)
class SourceSpan:
    """Which clip frames came from one source segment."""

    source: int
    first_frame: int
    frames: int
    first_ts: dt.datetime
    last_ts: dt.datetime


@dataclass(frozen=True, slots=True)
class ClipScan:
    frames: int
    width: int
    height: int
    fps: float
    frame_times: tuple[dt.datetime, ...]
    spans: tuple[SourceSpan, ...]
    tracks: tuple[ClipTrack, ...]
    detector: str  # name and version of the face detector used
    embedder: str

    def frame_at(self, ts: dt.datetime) -> int:
        """The clip frame nearest ``ts``."""
        return min(range(self.frames), key=lambda i: abs(self.frame_times[i] - ts))


@dataclass
class _Crops:
    """The few best crops of one face track, for embedding at the end."""

    keep: int
    heap: list[tuple[float, int, np.ndarray, FaceDetection]] = field(default_factory=list)

    def offer(self, frame: int, image: np.ndarray, face: FaceDetection) -> None:
        rank = face.score * min(face.width, face.height)
        if len(self.heap) >= self.keep and rank <= self.heap[0][0]:
            return
        crop, moved = crop_around(image, face, margin=0.6)
        item = (rank, frame, crop, moved)
        if len(self.heap) < self.keep:
            heapq.heappush(self.heap, item)
        else:
            heapq.heapreplace(self.heap, item)


def _tracks(tracker: Tracker[int], kind: str, offset: int) -> list[ClipTrack]:
    return [ClipTrack(offset + t.index, kind, tuple(t.items), tuple(t.boxes)) for t in tracker.tracks]


def scan_clip(
    storage: Storage,
    plan: ClipPlan,
    settings: Settings,
    subject_embeddings: np.ndarray | None = None,
    plate_finder: PlateFinder | None = None,
) -> ClipScan:
    """Detect and track faces (and plates) on every frame of the clip."""
    model = redaction_face_model(settings)
    faces: Tracker[int] = Tracker(settings.tracking.iou, settings.tracking.max_gap_s)
    plates: Tracker[int] = Tracker(settings.tracking.iou, settings.tracking.max_gap_s)
    crops: dict[int, _Crops] = {}
    times: list[dt.datetime] = []
    spans: list[SourceSpan] = []
    width = height = 0
    for frame in iter_clip_frames(storage, plan):
        height, width = frame.image.shape[:2]
        t = (frame.ts - plan.start).total_seconds()
        found = model.detector.detect(frame.image)
        ids = faces.update(t, [(f.bbox, frame.index) for f in found])
        if subject_embeddings is not None:
            for track_id, face in zip(ids, found):
                crops.setdefault(track_id, _Crops(settings.faces.embeds_per_track)).offer(
                    frame.index, frame.image, face
                )
        if plate_finder is not None:
            plates.update(
                t,
                [
                    (box, frame.index)
                    for box in plate_finder(frame.image)
                    if not _in_overlay(box, plan.camera.overlay_regions)
                ],
            )
        times.append(frame.ts)
        if spans and spans[-1].source == frame.source:
            last = spans[-1]
            spans[-1] = SourceSpan(last.source, last.first_frame, last.frames + 1, last.first_ts, frame.ts)
        else:
            spans.append(SourceSpan(frame.source, frame.index, 1, frame.ts, frame.ts))
    face_tracks = _tracks(faces, "face", 0)
    if subject_embeddings is not None:
        face_tracks = [_with_distance(t, crops.get(t.index), model, subject_embeddings) for t in face_tracks]
    tracks = face_tracks + _tracks(plates, "plate", len(face_tracks))
    steps = [(b - a).total_seconds() for a, b in zip(times, times[1:]) if b > a]
    fps = 1.0 / statistics.median(steps) if steps else 1.0
    return ClipScan(
        len(times),
        width,
        height,
        fps,
        tuple(times),
        tuple(spans),
        tuple(tracks),
        f"{model.detector.name} {model.detector.version}",
        f"{model.embedder.name} {model.embedder.version}",
    )


def _in_overlay(box: Box, regions: list[list[int]]) -> bool:
    """Text burned in by the camera (clock, name) is evidence, not a plate."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return any(x1 <= cx <= x2 and y1 <= cy <= y2 for x1, y1, x2, y2 in regions)


def _with_distance(
    track: ClipTrack, crops: _Crops | None, model: FaceModel, subject: np.ndarray
) -> ClipTrack:
    if crops is None or not crops.heap:
        return track
    vectors = np.vstack([model.embedder.embed(crop, [face]) for _, _, crop, face in crops.heap])
    dists = np.linalg.norm(vectors[:, None, :] - subject[None, :, :], axis=2)
    return ClipTrack(track.index, track.kind, track.frames, track.boxes, float(dists.min()))


def plate_finder_for(settings: Settings) -> PlateFinder | None:
    """The plate hook: the indexing plate reader's boxes, when ``redact_plates`` is on."""
    if not settings.redact.plates:
        return None
    reader = plate_reader_for(settings.plates)
    return lambda image: [read.bbox for read in reader.read(image)]
