"""Plates in one segment: read text in moving regions, track, vote one text per pass."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from citywatch.geometry import Box, PixelBox, clip, expand, iou, merge_overlapping, to_pixels
from citywatch.models.plate_reader import PlateReader
from citywatch.plate_gate import plate_gate
from citywatch.plates import fix_confusables, normalise_plate, vote_plate_text
from citywatch.settings import PlatesSettings, TrackingSettings
from citywatch.tasks.index.plate_cost import band_windows, may_hold_plate, plate_bands
from citywatch.tasks.index.tracking import Track, Tracker


@dataclass(frozen=True, slots=True)
class PlateCandidate:
    """One grammar-valid read of a plate in one sampled frame (a small crop kept)."""

    offset_s: float
    text: str  # normalised + grammar-fixed
    char_confidences: tuple[float, ...]
    confidence: float
    bbox: Box
    crop_jpeg: bytes
    gate_score: float = 1.0  # the plate acceptance rule's score (citywatch/plate_gate.py)


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
    gate_score: float = 1.0  # the lowest of its reads' (citywatch/plate_gate.py)


def _crop_jpeg(image: np.ndarray, box: Box) -> bytes:
    w, h = box[2] - box[0], box[3] - box[1]
    context = clip(expand(box, 0.3 * w, 0.8 * h), image.shape[1], image.shape[0])
    cx1, cy1, cx2, cy2 = to_pixels(context, outward=False)
    ok, buf = cv2.imencode(".jpg", image[cy1:cy2, cx1:cx2], [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes() if ok else b""


def _centre_in(box: Box, boxes: list[list[int]]) -> bool:
    """Whether ``box``'s centre lies in one of ``boxes`` (x1, y1, x2, y2, edges included)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return any(x1 <= cx <= x2 and y1 <= cy <= y2 for x1, y1, x2, y2 in boxes)


def _grow(region: PixelBox, width: int, height: int, min_side: int = 96) -> PixelBox:
    """``region`` padded by 16 px, or more to reach ``min_side``, inside the frame."""
    x1, y1, x2, y2 = region
    pad_x = max(16, (min_side - (x2 - x1)) // 2)
    pad_y = max(16, (min_side - (y2 - y1)) // 2)
    return to_pixels(clip(expand(region, pad_x, pad_y), width, height))


def detect_cost(box: tuple[int, int, int, int], target_side: int | None, max_upscale: float = 4.0) -> float:
    """Pixels text detection works on for ``box``: the plate reader upscales a small
    region until its long side reaches ``target_side`` (at most ``max_upscale`` x);
    ``target_side`` None: the box's own area."""
    w, h = box[2] - box[0], box[3] - box[1]
    if target_side is None:
        return float(w * h)
    scale = min(max_upscale, max(1.0, target_side / max(w, h, 1)))
    return w * h * scale * scale


def merge_regions(
    regions: list[tuple[int, int, int, int]],
    width: int,
    height: int,
    full_frame_share: float = 0.5,
    target_side: int | None = None,
    max_upscale: float = 4.0,
) -> list[tuple[int, int, int, int]]:
    """Grow moving regions, merge the ones that overlap, read the whole frame once if
    reading them would cost ``full_frame_share`` of reading it: each pixel goes through
    text detection at most once. With ``target_side`` (the reader's) the cost counts
    the upscaling of small regions; without, their area."""
    boxes = merge_overlapping([_grow(r, width, height) for r in regions])
    cost = sum(detect_cost(box, target_side, max_upscale) for box in boxes)
    if cost >= full_frame_share * width * height:
        return [(0, 0, width, height)]
    return boxes


def plate_sized(
    regions: list[tuple[int, int, int, int]], *, min_px: int, max_aspect: float
) -> list[tuple[int, int, int, int]]:
    """The moving regions that could hold a vehicle: neither side under ``min_px`` and
    height at most ``max_aspect`` x width. A walking person's blob is tall and narrow;
    a car (front or rear, ~0.8 as tall as wide, wider still in a frame difference,
    which covers where it was and where it is) is not. ``max_aspect`` 0: any shape."""
    return [
        r
        for r in regions
        if r[2] - r[0] >= min_px
        and r[3] - r[1] >= min_px
        and (max_aspect <= 0 or r[3] - r[1] <= max_aspect * (r[2] - r[0]))
    ]


class SegmentPlates:
    """Collects plate reads frame by frame; ``passes()`` votes one text per track."""

    def __init__(
        self,
        reader: PlateReader,
        plates: PlatesSettings,
        tracking: TrackingSettings,
        ignore: list[list[int]] | None = None,
    ) -> None:
        self.full_frame_share = plates.full_frame_share
        self._previous_t = float("-inf")  # the previous frame's offset
        self.settled_confidence = plates.settled_confidence
        # a settled track is re-read at least this often (plus frame-time jitter): well
        # inside the tracker's gap, so the track goes on
        self.settled_reread_s = min(plates.settled_reread_s, 0.85 * tracking.max_gap_s)
        # ... or, following settled tracks through the moving regions, this often (0: no following)
        self.settled_follow_s = plates.settled_follow_s
        self.max_gap_s = tracking.max_gap_s
        self.region_min_px = plates.region_min_px
        self.region_max_aspect = plates.region_max_aspect
        self.gate_contrast, self.gate_min_px = plates.text_gate_contrast, plates.text_gate_min_px
        self.detect_in_bands = plates.detect_in_bands
        self.skip_overlay_bands = plates.skip_overlay_bands
        self.gated = 0  # regions the text gate kept from text detection
        self.ignore = ignore or []  # on-screen-display boxes: text there is never a plate
        self.reader = reader
        self.grammar = plates.plate_grammar()
        self.off_format_confidence = plates.off_format_confidence
        self.low_confidence = plates.low_confidence
        self.tracker: Tracker[PlateCandidate] = Tracker(tracking.iou, tracking.max_gap_s)
        self.gate_enabled = plates.gate_enabled
        self.gate = plates.gate_thresholds()
        self.rejected_text = 0  # text lines the plate gate kept out (segment stats)

    def add_frame(
        self,
        offset_s: float,
        image: np.ndarray,
        regions: list[tuple[int, int, int, int]],
        motion: np.ndarray | None = None,
    ) -> int:
        """Read plates inside the moving ``regions`` of a (masked) frame; ``motion``: the
        motion gate's mask (the plate gate checks that a plate line moved)."""
        height, width = image.shape[:2]
        found: list[tuple[Box, PlateCandidate]] = []
        regions = plate_sized(regions, min_px=self.region_min_px, max_aspect=self.region_max_aspect)
        step, self._previous_t = offset_s - self._previous_t, offset_s
        settled_tracks = self._settled(offset_s, step)
        settled = [box for _, box in settled_tracks]
        # following: a region that also holds a live plate not yet settled (a car that came
        # in behind a settled one) is read, or that plate's reads would fall gaps apart
        unsettled = self._unsettled(offset_s, [track for track, _ in settled_tracks]) if settled else []
        for region in merge_regions(
            regions,
            width,
            height,
            self.full_frame_share,
            getattr(self.reader, "target_side_px", None),
            getattr(self.reader, "max_upscale", 4.0),
        ):
            if any(
                region[0] <= b[0] and region[1] <= b[1] and b[2] <= region[2] and b[3] <= region[3]
                for b in settled
            ) and not any(_centre_in(b, [list(region)]) for b in unsettled):
                continue  # a plate read the same twice, read again in a moment
            windows = [region]
            if self.gate_contrast > 0 and self.detect_in_bands:
                bands = plate_bands(
                    image, region, min_plate_px=self.gate_min_px, min_contrast=self.gate_contrast
                )
                if self.skip_overlay_bands:
                    # the on-screen display's glyphs are never a plate (their reads are
                    # dropped below): no detection round them
                    bands = [b for b in bands if not _centre_in(b, self.ignore)]
                windows = band_windows(bands, region) if bands else []
            elif self.gate_contrast > 0 and not may_hold_plate(
                image, region, min_plate_px=self.gate_min_px, min_contrast=self.gate_contrast
            ):
                windows = []
            if not windows:
                self.gated += 1
                continue  # nothing in it looks like a line of glyphs
            reads = [read for window in windows for read in self.reader.read(image, window)]
            for read in reads:
                bx1, by1, bx2, by2 = read.bbox
                if _centre_in(read.bbox, self.ignore):
                    continue
                if (bx2 - bx1) < 1.2 * (by2 - by1):
                    continue  # text lines on plates are wide; a lone tall glyph is not a plate
                text = fix_confusables(normalise_plate(read.text), self.grammar)
                if len(text) != len(read.char_confidences) or not self._acceptable(text, read.confidence):
                    continue
                # plates only where plates are: signs, badges, dealer frames, slogans out
                verdict = plate_gate(
                    image, read.bbox, text, self.grammar, self.gate, regions, motion, [r.bbox for r in reads]
                )
                if self.gate_enabled and not verdict.accepted:
                    self.rejected_text += 1
                    continue
                # overlapping regions read the same plate twice (boxes a pixel or two
                # apart, sometimes one read partial): keep the more confident read
                same = next((i for i, (box, _) in enumerate(found) if iou(box, read.bbox) >= 0.5), None)
                if same is not None and found[same][1].confidence >= read.confidence:
                    continue
                cand = PlateCandidate(
                    offset_s,
                    text,
                    read.char_confidences,
                    read.confidence,
                    read.bbox,
                    _crop_jpeg(image, read.bbox),
                    verdict.score,
                )
                if same is not None:
                    found[same] = (read.bbox, cand)
                else:
                    found.append((read.bbox, cand))
        updated = set(self.tracker.update(offset_s, found))
        if self.settled_follow_s > 0:
            for track, box in settled_tracks:
                cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
                if track.index not in updated and any(
                    r[0] <= cx <= r[2] and r[1] <= cy <= r[3] for r in regions
                ):
                    track.follow(offset_s, box)  # its vehicle still moves there: not read, still there
        return len(found)

    def _acceptable(self, text: str, confidence: float) -> bool:
        """A read fits the plate format, or fits none but is sure enough to keep (flagged)."""
        if self.grammar.rank(text) is not None:
            return True
        return self.off_format_confidence is not None and confidence >= self.off_format_confidence

    def _settled(self, t: float, step: float) -> list[tuple[Track[PlateCandidate], Box]]:
        """The settled tracks and where they are expected at ``t``: a track whose last two
        reads agree with every character at least ``settled_confidence`` sure, and whose
        last read would still be at most ``settled_reread_s`` old at the next frame (``step``
        from now, as far as this one from the previous). A region holding one is not read
        this frame. So a settled track is read at least every ``settled_reread_s`` (plus the
        jitter of frame times), never leaving its track's gap.

        With ``settled_follow_s`` > 0, a settled track not read in a frame is followed
        (carried to its predicted box while a moving region holds it, see ``add_frame``),
        so it lives on without reads and is re-read only every ``settled_follow_s``; a
        track that lost its region for longer than the tracker's gap is not settled."""
        if self.settled_reread_s <= 0:
            return []  # no settling: every region of every moving frame is read
        follow = self.settled_follow_s > 0
        reread_s = self.settled_follow_s if follow else self.settled_reread_s
        out = []
        for track in self.tracker.tracks:
            if len(track.items) < 2 or t - track.items[-1].offset_s + step > reread_s + 1e-3:
                continue
            if follow and t - track.last_time > self.max_gap_s:
                continue
            a, b = track.items[-2:]
            if a.text == b.text and min(a.char_confidences + b.char_confidences) >= self.settled_confidence:
                out.append((track, track.predict(t)))
        return out

    def _unsettled(self, t: float, settled: list[Track[PlateCandidate]]) -> list[Box]:
        """With ``settled_follow_s``: where the live tracks not in ``settled`` are expected at ``t``."""
        if self.settled_follow_s <= 0:
            return []
        return [
            track.predict(t)
            for track in self.tracker.tracks
            if t - track.last_time <= self.max_gap_s and all(track is not s for s in settled)
        ]

    def passes(self) -> list[PlatePass]:
        out: list[PlatePass] = []
        for track in self.tracker.tracks:
            voted = vote_plate_text(
                [(c.text, c.char_confidences) for c in track.items], min_char_confidence=self.low_confidence
            )
            best = max(track.items, key=lambda c: (c.text == voted.text, c.confidence))
            # a pass whose voted text fits no pattern of the format was kept only for its
            # confidence (plates.off_format_confidence): flagged, like a single read
            low = voted.low_confidence or len(track.items) < 2 or self.grammar.rank(voted.text) is None
            out.append(
                PlatePass(
                    track.index,
                    voted.text,
                    voted.char_confidences,
                    len(track.items),
                    low,
                    best,
                    track.times[0],
                    track.times[-1],
                    min(c.gate_score for c in track.items),
                )
            )
        return out
