"""A small plate-specific text recogniser (CNN + CTC, ONNX, CPU) for small plates.

PP-OCRv4's recogniser is a general text reader; on plates 40-80 px wide (glyphs
7-12 px tall, motion blur, JPEG) it reads about half of them exactly. This model is
trained only on plate crops (``models/training/``: synthetic plates rendered by
``citywatch.sample.plate_render`` in several fonts, warped, blurred, noised, JPEG-compressed,
pasted on street photos that the benchmark does not use) and reads 1-8 characters of
``A-Z0-9``. Its weights ship in this package (``models/weights/plate_rec.onnx``,
trained here, CC0 like the code that made them); nothing is downloaded.

Input: a crop around a detected plate's text (:func:`plate_crop_box` gives the box
from the detector's text box), grey, 32 px tall, aspect kept, padded to 128 px.
Output: per time step probabilities over [blank, A-Z, 0-9], decoded best-path.
"""

from __future__ import annotations

import logging
import string
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from citywatch.errors import BadInputError
from citywatch.geometry import Box, PixelBox, clip, expand, to_pixels

if TYPE_CHECKING:
    import onnxruntime

log = logging.getLogger(__name__)

ALPHABET = string.ascii_uppercase + string.digits  # class k+1 is ALPHABET[k]; 0 is blank
INPUT_H = 32
INPUT_W = 128
WEIGHTS = Path(__file__).parent / "weights" / "plate_rec.onnx"
# margins around the detector's text box, in units of its height (training crops
# are drawn around the true text with margins that cover the detector's spread)
MARGIN_X = 0.35
MARGIN_Y = 0.2


def plate_crop_box(box: Box, width: int, height: int) -> PixelBox:
    """The crop (x1, y1, x2, y2) fed to the model for a detected text box, in the image."""
    h = max(1.0, box[3] - box[1])
    return to_pixels(clip(expand(box, MARGIN_X * h, MARGIN_Y * h), width, height))


def prepare_crop(image_bgr: np.ndarray, box: PixelBox) -> np.ndarray:
    """The model input (1 x 32 x 128 float32) for ``box`` (x1, y1, x2, y2) of the image."""
    x1, y1, x2, y2 = box
    crop = image_bgr[y1:y2, x1:x2]
    if crop.shape[0] < 2 or crop.shape[1] < 2:
        raise BadInputError(f"plate crop {box}: smaller than 2x2 px")
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    h, w = grey.shape
    new_w = int(min(INPUT_W, max(8, round(INPUT_H * w / h))))
    interpolation = cv2.INTER_AREA if h > INPUT_H else cv2.INTER_CUBIC
    resized = cv2.resize(grey, (new_w, INPUT_H), interpolation=interpolation).astype(np.float32) / 255.0
    resized = (resized - resized.mean()) / max(float(resized.std()), 0.05)
    out = np.zeros((1, INPUT_H, INPUT_W), dtype=np.float32)
    out[0, :, :new_w] = resized
    return out


def cpu_session(path: Path) -> onnxruntime.InferenceSession:
    """A CPU session on one intra-op and one inter-op thread (Dask workers provide the
    parallelism), memory arena on."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def ctc_best_path(probs: np.ndarray) -> tuple[str, tuple[float, ...]]:
    """Best-path CTC decoding of T x 37 probabilities over [blank, A-Z0-9]: (text,
    per-character confidence, the highest over the character's time steps)."""
    best = probs.argmax(axis=1)
    text: list[str] = []
    confs: list[float] = []
    previous = 0
    for t, cls in enumerate(best):
        if cls != 0:
            p = float(probs[t, cls])
            if cls == previous:
                confs[-1] = max(confs[-1], p)
            else:
                text.append(ALPHABET[cls - 1])
                confs.append(p)
        previous = int(cls)
    return "".join(text), tuple(round(min(c, 1.0), 6) for c in confs)


class PlateRecogniser:
    """The ONNX plate recogniser on one CPU thread."""

    name = "citywatch-plate-rec"

    def __init__(self, weights: Path = WEIGHTS) -> None:
        if not weights.is_file():
            raise BadInputError(f"plate recogniser weights {weights}: not found (reinstall citywatch)")
        self._session = cpu_session(weights)
        self._input = self._session.get_inputs()[0].name

    def read(
        self, image_bgr: np.ndarray, text_box: tuple[float, float, float, float]
    ) -> tuple[str, tuple[float, ...]]:
        """Read the plate whose text the detector boxed at ``text_box`` (x1, y1, x2, y2)."""
        box = plate_crop_box(text_box, image_bgr.shape[1], image_bgr.shape[0])
        batch = prepare_crop(image_bgr, box)[np.newaxis]
        logits = self._session.run(None, {self._input: batch})[0][0]  # T x 37
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return ctc_best_path(shifted / shifted.sum(axis=1, keepdims=True))


@lru_cache(maxsize=1)
def load_plate_recogniser() -> PlateRecogniser | None:
    """The process-wide plate recogniser, or None where its weights are missing."""
    if not WEIGHTS.is_file():
        log.warning("plate recogniser weights %s missing: small plates are read by PP-OCR alone", WEIGHTS)
        return None
    return PlateRecogniser()
