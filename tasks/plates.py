"""Plates in one segment: read text in moving regions, track, vote one text per pass."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from citywatch.plates import PlateGrammar, fix_confusables, normalise_plate, vote_plate_text
from models.plate_reader import PlateReader
from tasks.tracking import Tracker, iou

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class PlateCandidate:
    """One grammar-valid read of a plate in one sampled frame (a small crop kept)."""

    offset_s: float
    text: str  # normalised + grammar-fixed
    char_confidences: tuple[float, ...]
    confidence: float
    bbox: Box
    crop_jpeg: bytes


@dataclass(frozen=True, slots=True)
class PlatePass:
    """A plate's pass in front of the camera: a track with its voted text."""

    track_index: int
    text: str
    char_confidences: tuple[float, ...]
    reads: int
    low_confidence: bool
    best: PlateCandidate
    first_s: float
    last_s: float


def _crop_jpeg(image: np.ndarray, box: Box) -> bytes:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx1, cy1 = int(max(0, x1 - 0.3 * w)), int(max(0, y1 - 0.8 * h))
    cx2, cy2 = int(min(image.shape[1], x2 + 0.3 * w)), int(min(image.shape[0], y2 + 0.8 * h))
    ok, buf = cv2.imencode(".jpg", image[cy1:cy2, cx1:cx2], [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes() if ok else b""


def _grow(region: tuple[int, int, int, int], width: int, height: int,
          min_side: int = 96) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = region
    pad_x = max(16, (min_side - (x2 - x1)) // 2)
    pad_y = max(16, (min_side - (y2 - y1)) // 2)
    return max(0, x1 - pad_x), max(0, y1 - pad_y), min(width, x2 + pad_x), min(height, y2 + pad_y)


def merge_regions(regions: list[tuple[int, int, int, int]], width: int, height: int,
                  full_frame_share: float = 0.5) -> list[tuple[int, int, int, int]]:
    """Grow moving regions, merge the ones that overlap, read the whole frame once if
    they cover most of it: each pixel goes through text detection at most once."""
    boxes = [_grow(r, width, height) for r in regions]
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    boxes[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    area = sum((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in boxes)
    if area >= full_frame_share * width * height:
        return [(0, 0, width, height)]
    return boxes


class SegmentPlates:
    """Collects plate reads frame by frame; ``passes()`` votes one text per track."""

    def __init__(self, reader: PlateReader, grammar: PlateGrammar, *,
                 min_affinity: float, max_gap_s: float, low_confidence: float,
                 ignore: list[list[int]] | None = None) -> None:
        self.ignore = ignore or []  # on-screen-display boxes: text there is never a plate
        self.reader = reader
        self.grammar = grammar
        self.low_confidence = low_confidence
        self.tracker: Tracker[PlateCandidate] = Tracker(min_affinity, max_gap_s)

    def add_frame(self, offset_s: float, image: np.ndarray,
                  regions: list[tuple[int, int, int, int]]) -> int:
        """Read plates inside the moving ``regions`` of a (masked) frame."""
        height, width = image.shape[:2]
        found: list[tuple[Box, PlateCandidate]] = []
        for region in merge_regions(regions, width, height):
            for read in self.reader.read(image, region):
                bx1, by1, bx2, by2 = read.bbox
                cx, cy = (bx1 + bx2) / 2, (by1 + by2) / 2
                if any(x1 <= cx <= x2 and y1 <= cy <= y2 for x1, y1, x2, y2 in self.ignore):
                    continue
                if (bx2 - bx1) < 1.2 * (by2 - by1):
                    continue  # text lines on plates are wide; a lone tall glyph is not a plate
                text = fix_confusables(normalise_plate(read.text), self.grammar)
                if self.grammar.rank(text) is None or len(text) != len(read.char_confidences):
                    continue
                # overlapping regions read the same plate twice (boxes a pixel or two
                # apart, sometimes one read partial): keep the more confident read
                same = next((i for i, (box, _) in enumerate(found)
                             if iou(box, read.bbox) >= 0.5), None)
                if same is not None and found[same][1].confidence >= read.confidence:
                    continue
                cand = PlateCandidate(offset_s, text, read.char_confidences, read.confidence,
                                      read.bbox, _crop_jpeg(image, read.bbox))
                if same is not None:
                    found[same] = (read.bbox, cand)
                else:
                    found.append((read.bbox, cand))
        self.tracker.update(offset_s, found)
        return len(found)

    def passes(self) -> list[PlatePass]:
        out: list[PlatePass] = []
        for track in self.tracker.tracks:
            voted = vote_plate_text([(c.text, c.char_confidences) for c in track.items],
                                    min_char_confidence=self.low_confidence)
            best = max(track.items, key=lambda c: (c.text == voted.text, c.confidence))
            low = voted.low_confidence or len(track.items) < 2
            out.append(PlatePass(track.index, voted.text, voted.char_confidences, len(track.items),
                                 low, best, track.times[0], track.times[-1]))
        return out
