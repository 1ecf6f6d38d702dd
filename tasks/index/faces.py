"""Faces in one segment: detect on gated frames, track, keep the best crops, embed."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from citywatch.geometry import clip, expand, grow, to_pixels
from citywatch.models.base import FaceDetection, FaceModel
from citywatch.schemas import NO_TEMPLATE
from citywatch.settings import FacesSettings, TrackingSettings
from citywatch.tasks.index.tracking import Tracker


@dataclass(frozen=True, slots=True)
class FaceCandidate:
    """A detected face kept as a small crop (never a whole frame)."""

    offset_s: float
    bbox: tuple[float, float, float, float]  # in frame pixels
    det_score: float
    quality: float
    crop: np.ndarray  # BGR crop around the face (privacy masks already applied)
    crop_face: FaceDetection  # the detection in crop coordinates


@dataclass(frozen=True, slots=True)
class EmbeddedFace:
    candidate: FaceCandidate
    track_index: int
    track_start_s: float
    track_end_s: float
    embedding: np.ndarray
    thumbnail_jpeg: bytes
    template: np.ndarray = dataclasses.field(
        default_factory=lambda: NO_TEMPLATE
    )  # the track's template (empty until link_tracks sets it)


def track_template(faces: list[EmbeddedFace]) -> np.ndarray:
    """A track's template: the quality-weighted mean of its faces' embeddings, renormalised.

    The mean of a few views of one face sits nearer the person's centre than any one
    view (noise and pose average out); it is scaled back to the faces' weighted mean
    length, so L2 thresholds calibrated on single embeddings still apply. A one-face
    track's template is that face's embedding.
    """
    vectors = np.stack([f.embedding for f in faces]).astype(np.float32)
    weights = np.asarray([max(f.candidate.quality, 1e-3) for f in faces], dtype=np.float32)
    weights /= weights.sum()
    mean = weights @ vectors
    length = float(np.linalg.norm(mean))
    target = float(weights @ np.linalg.norm(vectors, axis=1))
    if length == 0.0:
        return vectors[int(np.argmax(weights))]
    return (mean * (target / length)).astype(np.float32)


def face_quality(image: np.ndarray, face: FaceDetection) -> float:
    """0..1: detector score x size x sharpness x frontalness."""
    x1, y1, x2, y2 = (int(round(v)) for v in face.bbox)
    side = min(x2 - x1, y2 - y1)
    size = min(1.0, side / 112.0)
    patch = image[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)]
    sharp = 0.0
    if patch.size:
        grey = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
        sharp = min(1.0, float(cv2.Laplacian(grey, cv2.CV_64F).var()) / 150.0)
    frontal = 1.0
    if len(face.landmarks) >= 3:
        (lx, _), (rx, _), (nx, _) = face.landmarks[:3]
        eye_dist = abs(rx - lx)
        if eye_dist > 0:
            frontal = max(0.0, 1.0 - abs(nx - (lx + rx) / 2) / eye_dist)
    return float(face.score * (0.4 + 0.6 * size) * (0.3 + 0.7 * sharp) * (0.5 + 0.5 * frontal))


def crop_around(image: np.ndarray, face: FaceDetection, margin: float) -> tuple[np.ndarray, FaceDetection]:
    """A crop with ``margin`` x face size on each side, and the face in its coordinates."""
    x1, y1, x2, y2 = face.bbox
    cx1, cy1, cx2, cy2 = grow(face.bbox, margin, image.shape[1], image.shape[0])
    crop = np.ascontiguousarray(image[cy1:cy2, cx1:cx2])
    moved = FaceDetection(
        bbox=(x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1),
        score=face.score,
        landmarks=tuple((px - cx1, py - cy1) for px, py in face.landmarks),
    )
    return crop, moved


def apply_privacy_masks(image: np.ndarray, masks: list[list[list[float]]]) -> np.ndarray:
    """Solid-fill privacy mask polygons (a copy; the input is not changed)."""
    if not masks:
        return image
    out = image.copy()
    for polygon in masks:
        pts = np.round(np.asarray(polygon, dtype=np.float32)).astype(np.int32)
        cv2.fillPoly(out, [pts], (0, 0, 0))
    return out


def inside_masks(point: tuple[float, float], masks: list[list[list[float]]]) -> bool:
    for polygon in masks:
        contour = np.asarray(polygon, dtype=np.float32)
        if cv2.pointPolygonTest(contour, point, False) >= 0:
            return True
    return False


class SegmentFaces:
    """Collects face candidates frame by frame, then embeds the best per track."""

    def __init__(
        self,
        model: FaceModel,
        faces: FacesSettings,
        tracking: TrackingSettings,
        masks: list[list[list[float]]],
    ) -> None:
        self.model = model
        self.embeds_per_track = faces.embeds_per_track
        self.max_gap_s = tracking.max_gap_s
        self.masks = masks
        self.tracker: Tracker[FaceCandidate] = Tracker(tracking.iou, tracking.max_gap_s)

    def add_frame(self, offset_s: float, image: np.ndarray) -> int:
        """Detect faces in a (masked) frame; returns how many were kept."""
        found: list[tuple[tuple[float, float, float, float], FaceCandidate]] = []
        for face in self.model.detector.detect(image):
            x1, y1, x2, y2 = face.bbox
            if inside_masks(((x1 + x2) / 2, (y1 + y2) / 2), self.masks):
                continue  # faces inside private areas are never indexed
            crop, crop_face = crop_around(image, face, margin=0.6)
            cand = FaceCandidate(offset_s, face.bbox, face.score, face_quality(image, face), crop, crop_face)
            found.append((face.bbox, cand))
        self.tracker.update(offset_s, found)
        return len(found)

    def embed_best(self) -> list[EmbeddedFace]:
        """Embed the best candidates of each track, then join tracks of one face.

        A fast small face is sometimes lost between samples and starts a new track;
        tracks that follow each other within ``link_gap`` and look alike (embedding
        distance under ``link_fraction`` x the model threshold) become one track.
        """
        embedded = self._embed_tracks()
        return link_tracks(
            embedded,
            max_gap_s=2 * self.max_gap_s,
            max_distance=0.7 * self.model.embedder.default_threshold,
            keep=self.embeds_per_track,
        )

    def _embed_tracks(self) -> list[EmbeddedFace]:
        out: list[EmbeddedFace] = []
        for track in self.tracker.tracks:
            best = sorted(track.items, key=lambda c: c.quality, reverse=True)
            for cand in best[: self.embeds_per_track]:
                vectors = self.model.embedder.embed(cand.crop, [cand.crop_face])
                out.append(
                    EmbeddedFace(
                        candidate=cand,
                        track_index=track.index,
                        track_start_s=track.times[0],
                        track_end_s=track.times[-1],
                        embedding=vectors[0].astype(np.float32),
                        thumbnail_jpeg=thumbnail(cand.crop, cand.crop_face),
                    )
                )
        return out


def link_tracks(
    faces: list[EmbeddedFace], *, max_gap_s: float, max_distance: float, keep: int
) -> list[EmbeddedFace]:
    """Merge tracks that continue each other in time and look alike; keep the best few."""
    by_track: dict[int, list[EmbeddedFace]] = {}
    for face in faces:
        by_track.setdefault(face.track_index, []).append(face)
    order = sorted(by_track, key=lambda t: by_track[t][0].track_start_s)
    parent = {t: t for t in order}

    def root(t: int) -> int:
        while parent[t] != t:
            t = parent[t]
        return t

    for j_pos, j in enumerate(order):
        start_j = by_track[j][0].track_start_s
        for i in order[:j_pos]:
            group = [f for t in order if root(t) == root(i) for f in by_track[t]]
            end_i = max(f.track_end_s for f in group)
            if not 0 < start_j - end_i <= max_gap_s or root(i) == root(j):
                continue
            dist = min(float(np.linalg.norm(a.embedding - b.embedding)) for a in group for b in by_track[j])
            if dist < max_distance:
                parent[root(j)] = root(i)
                break
    groups: dict[int, list[EmbeddedFace]] = {}
    for t in order:
        groups.setdefault(root(t), []).extend(by_track[t])
    out: list[EmbeddedFace] = []
    for index, members in groups.items():
        start = min(f.track_start_s for f in members)
        end = max(f.track_end_s for f in members)
        best = sorted(members, key=lambda f: f.candidate.quality, reverse=True)[:keep]
        template = track_template(best)
        out.extend(
            dataclasses.replace(f, track_index=index, track_start_s=start, track_end_s=end, template=template)
            for f in best
        )
    return out


def thumbnail(crop: np.ndarray, face: FaceDetection, max_side: int = 160) -> bytes:
    """A JPEG of the face with a little context, long side at most ``max_side``."""
    x1, y1, x2, y2 = face.bbox
    context = clip(expand(face.bbox, 0.3 * (x2 - x1), 0.3 * (y2 - y1)), crop.shape[1], crop.shape[0])
    tx1, ty1, tx2, ty2 = to_pixels(context, outward=False)
    patch = crop[ty1:ty2, tx1:tx2]
    scale = min(1.0, max_side / max(patch.shape[:2]))
    if scale < 1.0:
        patch = cv2.resize(patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", patch, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else b""
