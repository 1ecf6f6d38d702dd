"""Licence-plate text reader: PaddleOCR PP-OCRv4 detection + recognition (ONNX, CPU).

The ONNX files ship inside ``rapidocr-onnxruntime`` (no download). We use its
detector as is (``det_limit_type="max"``, so frames are never upscaled to 736 px
short side), skip the angle classifier, run every session on one intra-op and one
inter-op thread (Dask workers provide the parallelism), and decode the recogniser's
softmax ourselves:

- the alphabet is restricted to plate characters: per time step the recogniser's
  probabilities are folded into ``blank`` (+ space and punctuation, e.g. the plate
  border read as ``[`` or ``|``) and the 36 classes ``A-Z0-9`` (lower-case letters
  fold into upper case, ``l`` into ``I``); CJK and other symbols are ignored. CTC
  best-path decoding then yields only ``A-Z0-9``.
- a character's confidence is the highest folded probability over the time steps
  of its CTC run; a read's confidence is the mean of its characters'.

Small inputs (a region around a moving vehicle, a plate crop) are upscaled so their
long side reaches ``target_side_px`` (at most ``max_upscale`` times) and padded
before *detection* only; the detected quads are mapped back to the pixels of the
image given and recognised from those original pixels (recognising from the
upscaled copy measured ~7 points worse on 40-80 px plates). Boxes that belong to
one plate (split on one line, or a two-line plate) are joined into one read.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version as package_version

import cv2
import numpy as np
from rapidocr_onnxruntime import RapidOCR
from rapidocr_onnxruntime.main import DEFAULT_CFG_PATH
from rapidocr_onnxruntime.utils import read_yaml

from citywatch.errors import BadInputError
from citywatch.geometry import PixelBox, clip, to_pixels
from citywatch.models.plate_rec import ALPHABET as PLATE_ALPHABET
from citywatch.models.plate_rec import PlateRecogniser, cpu_session, ctc_best_path, load_plate_recogniser

log = logging.getLogger(__name__)

_NO_PAD_SIDE = 480
_GAP_CHARS = set(" !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~·•—–、。，：；（）【】「」《》")


@dataclass(frozen=True, slots=True)
class PlateRead:
    """One plate's text as read from one image."""

    text: str  # A-Z0-9 only (constrained decoding); normalise/grammar-fix downstream
    confidence: float  # 0..1, mean of char_confidences
    char_confidences: tuple[float, ...]  # one per character of text
    bbox: tuple[float, float, float, float]  # x1, y1, x2, y2 in the given image's pixels


@dataclass(frozen=True, slots=True)
class TextBox:
    """One detected, recognised text line, axis-aligned, in image pixels."""

    text: str
    char_confidences: tuple[float, ...]
    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1


def _same_line(a: TextBox, b: TextBox) -> bool:
    """Side by side: overlapping rows, similar height, small horizontal gap."""
    overlap = min(a.y2, b.y2) - max(a.y1, b.y1)
    heights = sorted((a.height, b.height))
    gap = max(a.x1, b.x1) - min(a.x2, b.x2)
    return overlap >= 0.5 * heights[0] and heights[1] <= 1.6 * heights[0] and gap <= 0.8 * heights[1]


def _stacked(a: TextBox, b: TextBox) -> bool:
    """One above the other (two-line plate): overlapping columns, similar size, small gap."""
    overlap = min(a.x2, b.x2) - max(a.x1, b.x1)
    widths = sorted((a.width, b.width))
    heights = sorted((a.height, b.height))
    gap = max(a.y1, b.y1) - min(a.y2, b.y2)
    return (
        overlap >= 0.6 * widths[0]
        and widths[1] <= 2.5 * widths[0]
        and heights[1] <= 1.6 * heights[0]
        and -0.3 * heights[0] <= gap <= 0.6 * heights[1]
    )


def group_plate_boxes(boxes: list[TextBox]) -> list[list[TextBox]]:
    """Group text boxes that belong to one plate; each group in reading order."""
    parent = list(range(len(boxes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            if _same_line(boxes[i], boxes[j]) or _stacked(boxes[i], boxes[j]):
                parent[root(i)] = root(j)
    groups: dict[int, list[TextBox]] = {}
    for i, box in enumerate(boxes):
        groups.setdefault(root(i), []).append(box)
    ordered = []
    for members in groups.values():
        members.sort(key=lambda b: (b.y1 + b.y2) / 2)
        rows: list[list[TextBox]] = []
        for box in members:  # a new row starts when the box is below the row's middle
            if rows and (box.y1 + box.y2) / 2 < max(b.y2 for b in rows[-1]):
                rows[-1].append(box)
            else:
                rows.append([box])
        ordered.append([b for row in rows for b in sorted(row, key=lambda b: b.x1)])
    return sorted(ordered, key=lambda g: (min(b.y1 for b in g), min(b.x1 for b in g)))


class PlateReader:
    """PP-OCRv4 det + rec with plate-specific decoding and box grouping."""

    name = "ppocrv4-det+rec"

    def __init__(
        self,
        *,
        min_confidence: float = 0.5,
        target_side_px: int = 480,
        max_side_px: int | None = None,
        max_upscale: float = 4.0,
        pad_fraction: float = 0.15,
        det_box_thresh: float = 0.5,
        det_unclip_ratio: float = 1.6,
        small_text_px: float = 24.0,
        tiny_text_px: float = 16.0,
        sure_confidence: float = 0.9,
        small_plate_reader: PlateRecogniser | None = None,
    ) -> None:
        if not 0.0 <= min_confidence <= 1.0:
            raise BadInputError(f"plate reader min_confidence {min_confidence}: expected 0..1")
        if max_upscale < 1.0:
            raise BadInputError(f"plate reader max_upscale {max_upscale}: expected >= 1")
        self.version = f"rapidocr-onnxruntime-{package_version('rapidocr-onnxruntime')}"
        self.min_confidence = min_confidence
        self.target_side_px = target_side_px
        self.max_upscale = max_upscale
        # detection input's long side at most this: larger inputs (a whole 1280x720
        # frame, a large region) are downscaled to it. None: detected at their own
        # size (rapidocr's "max" limit never downscales under 1500 px)
        self.max_side_px = max_side_px
        self.pad_fraction = pad_fraction
        # text lines lower than this (image px; ~16 px on a plate ~75 px wide) are also
        # read by the plate-specific recogniser and the more confident read wins. Larger
        # plates are PP-OCR's alone: it reads them near perfectly, in any font, while
        # the plate recogniser knows only the fonts it was trained on.
        self.small_text_px = small_text_px
        self.tiny_text_px = tiny_text_px  # below: the plate recogniser may overrule any read
        self.sure_confidence = sure_confidence  # above (and not tiny): PP-OCR's read stands
        self._small_reader = small_plate_reader
        # this thread's CPU seconds in text detection / recognition (tasks/index/stages.py)
        self.cpu_detect_s = 0.0
        self.cpu_read_s = 0.0
        self.calls = 0  # text detections run
        self._engine = RapidOCR(
            det_limit_type="max",
            det_box_thresh=det_box_thresh,
            det_unclip_ratio=det_unclip_ratio,
            use_cls=False,
            intra_op_num_threads=1,
            inter_op_num_threads=1,
        )
        # rapidocr builds its sessions with the CPU memory arena off; with it on, a
        # 1280x720 detection is ~25% faster. Same models, same thread settings.
        config = read_yaml(DEFAULT_CFG_PATH)
        self._engine.text_det.infer.session = cpu_session(
            DEFAULT_CFG_PATH.parent / config["Det"]["model_path"]
        )
        self._engine.text_rec.session.session = cpu_session(
            DEFAULT_CFG_PATH.parent / config["Rec"]["model_path"]
        )
        self._rec_session = self._engine.text_rec.session
        self._rec_height = int(self._engine.text_rec.rec_image_shape[1])
        self._fold = _folding_table(self._engine.text_rec.postprocess_op.character)

    # --- public ----------------------------------------------------------------------

    def read(self, image_bgr: np.ndarray, region: PixelBox | None = None) -> list[PlateRead]:
        """Read plates in ``image_bgr`` (or in ``region`` = x1, y1, x2, y2 of it)."""
        image = _check_image(image_bgr)
        x1, y1, x2, y2 = _check_region(region, image.shape[1], image.shape[0])
        crop = image[y1:y2, x1:x2]
        scale = min(self.max_upscale, max(1.0, self.target_side_px / max(crop.shape[:2])))
        if self.max_side_px is not None and max(crop.shape[:2]) > self.max_side_px:
            scale = self.max_side_px / max(crop.shape[:2])
        if scale > 1.0:
            crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        elif scale < 1.0:
            crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        # small inputs get a margin so text at their edge is still detected
        pad = (
            0
            if min(crop.shape[:2]) >= _NO_PAD_SIDE
            else int(round(self.pad_fraction * min(crop.shape[:2]))) + 8
        )
        fill = [int(v) for v in np.median(np.concatenate([crop[0], crop[-1]]), axis=0)]
        padded = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=fill)
        started = time.thread_time()
        self.calls += 1
        quads = [(np.asarray(q, dtype=np.float32) - pad) / scale + (x1, y1) for q in self._detect(padded)]
        detected = time.thread_time()
        self.cpu_detect_s += detected - started
        if not quads:
            return []
        try:
            return self._read_lines(image, quads)
        finally:
            self.cpu_read_s += time.thread_time() - detected

    def _read_lines(self, image: np.ndarray, quads: list[np.ndarray]) -> list[PlateRead]:
        """Recognise the detected text lines, group them into plates, keep the sure ones."""
        # recognise from the original pixels: upscaled (interpolated) crops read worse
        texts = self._recognise([_rectify(image, quad) for quad in quads])
        boxes = [  # boxes PP-OCR reads as empty stay: the plate recogniser may read them
            TextBox(
                text=text,
                char_confidences=confs,
                x1=float(quad[:, 0].min()),
                y1=float(quad[:, 1].min()),
                x2=float(quad[:, 0].max()),
                y2=float(quad[:, 1].max()),
            )
            for quad, (text, confs) in zip(quads, texts, strict=True)
        ]
        reads = []
        for group in group_plate_boxes(boxes):
            bbox = (
                min(b.x1 for b in group),
                min(b.y1 for b in group),
                max(b.x2 for b in group),
                max(b.y2 for b in group),
            )
            text = "".join(b.text for b in group)
            confs = tuple(c for b in group for c in b.char_confidences)
            height = bbox[3] - bbox[1]
            sure = bool(confs) and height >= self.tiny_text_px and np.mean(confs) >= self.sure_confidence
            if (
                self._small_reader is not None
                and not sure
                and height < self.small_text_px
                and _one_line(group)
            ):
                small_text, small_confs = self._small_reader.read(image, bbox)
                if small_confs and (not confs or np.mean(small_confs) >= np.mean(confs)):
                    text, confs = small_text, small_confs
            if not text:
                continue
            confidence = float(np.mean(confs))
            if confidence < self.min_confidence:
                continue
            reads.append(
                PlateRead(text=text, confidence=round(confidence, 6), char_confidences=confs, bbox=bbox)
            )
        return reads

    # --- steps -----------------------------------------------------------------------

    def _detect(self, image: np.ndarray) -> list[np.ndarray]:
        quads, _elapsed = self._engine.text_det(image)
        if quads is None or len(quads) == 0:
            return []
        return list(self._engine.sorted_boxes(quads))

    def _recognise(self, crops: list[np.ndarray]) -> list[tuple[str, tuple[float, ...]]]:
        """Recognise text crops; one (text, per-char confidences) per crop."""
        results = []
        for crop in crops:  # one at a time: no padding waste, boxes are few
            h, w = crop.shape[:2]
            width = max(self._rec_height, int(math.ceil(self._rec_height * w / max(h, 1))))
            norm = self._engine.text_rec.resize_norm_img(crop, width / self._rec_height)
            probs = self._rec_session(norm[np.newaxis].astype(np.float32))[0][0]
            results.append(_ctc_decode(probs, self._fold))
        return results


def _one_line(group: list[TextBox]) -> bool:
    """All boxes side by side (the plate recogniser reads one line)."""
    return all(_same_line(group[0], b) for b in group[1:])


def _rectify(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """The quad (tl, tr, br, bl) warped to an upright rectangle; tall crops turned."""
    width = max(2, int(round(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[3] - quad[2])))))
    height = max(2, int(round(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2])))))
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    crop = cv2.warpPerspective(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return np.rot90(crop) if height >= 1.5 * width else crop


def _folding_table(characters: list[str]) -> np.ndarray:
    """For each recogniser class: 0 (gap), 1..36 (A-Z0-9) or -1 (ignored)."""
    target = np.full(len(characters), -1, dtype=np.int64)  # -1: ignored (CJK etc.)
    for index, char in enumerate(characters):
        if index == 0 or char in _GAP_CHARS:
            target[index] = 0
        elif len(char) == 1 and char.isascii() and char.isalnum():
            folded = "I" if char == "l" else char.upper()
            target[index] = 1 + PLATE_ALPHABET.index(folded)
    return target


def _ctc_decode(probs: np.ndarray, fold: np.ndarray) -> tuple[str, tuple[float, ...]]:
    """Best-path CTC over [gap, A-Z0-9] folded from the recogniser's softmax (T x C)."""
    classes = np.zeros((probs.shape[0], 1 + len(PLATE_ALPHABET)), dtype=np.float32)
    kept = fold >= 0
    np.add.at(classes.T, fold[kept], probs[:, kept].T)
    return ctc_best_path(classes)


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise BadInputError(
            f"plate reader image: expected a uint8 numpy array, got {type(image).__name__}"
            f" {getattr(image, 'dtype', '')}"
        )
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 4:
        raise BadInputError(f"plate reader image: expected HxWx3 BGR at least 4x4, got shape {image.shape}")
    return image


def _check_region(region: PixelBox | None, width: int, height: int) -> PixelBox:
    if region is None:
        return 0, 0, width, height
    x1, y1, x2, y2 = (int(v) for v in region)
    cx1, cy1, cx2, cy2 = to_pixels(clip((x1, y1, x2, y2), width, height))
    if cx2 - cx1 < 4 or cy2 - cy1 < 4:
        raise BadInputError(
            f"plate reader region {region}: less than 4x4 px inside the {width}x{height} image"
        )
    return cx1, cy1, cx2, cy2


@lru_cache(maxsize=2)
def load_plate_reader(
    min_confidence: float = 0.5, detect_side_px: int = 480, max_side_px: int | None = None
) -> PlateReader:
    """The process-wide plate reader (models loaded once per process)."""
    reader = PlateReader(
        min_confidence=min_confidence,
        target_side_px=detect_side_px,
        max_side_px=max_side_px,
        max_upscale=4.0 if detect_side_px <= 480 else 8.0,
        small_plate_reader=load_plate_recogniser(),
    )
    log.info("loaded plate reader %s (%s)", reader.name, reader.version)
    return reader
