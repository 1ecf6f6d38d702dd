"""Interface types shared by every face model wrapper.

A face model is a detector (image -> boxes, scores, 5 landmarks) plus an embedder
(image + detections -> one vector per face). Wrappers in this package implement
``FaceDetector`` / ``FaceEmbedder``; ``models.faces.load_face_model`` pairs them.
Embeddings are compared with Euclidean (L2) distance against the embedder's
``default_threshold``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from citywatch.errors import BadInputError

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class FaceDetection:
    """One face found in an image, in pixels of the image given to ``detect``."""

    bbox: tuple[float, float, float, float]
    """x1, y1, x2, y2."""
    score: float
    """Detector confidence, 0..1."""
    landmarks: tuple[Point, ...]
    """5 points (x, y): left eye, right eye, nose, left and right mouth corner
    (RetinaFace/SCRFD order; "left" is the image's left)."""

    @classmethod
    def from_arrays(cls, box: np.ndarray, score: float, points: np.ndarray) -> FaceDetection:
        """From numpy: ``box`` x1, y1, x2, y2 (extra columns ignored), ``points`` 5x2."""
        x1, y1, x2, y2 = (float(v) for v in box[:4])
        pairs = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return cls((x1, y1, x2, y2), float(score), tuple((float(x), float(y)) for x, y in pairs))

    @property
    def width(self) -> float:
        return self.bbox[2] - self.bbox[0]

    @property
    def height(self) -> float:
        return self.bbox[3] - self.bbox[1]


class FaceDetector(Protocol):
    """Finds faces in a BGR frame."""

    name: str
    version: str

    def detect(self, image_bgr: np.ndarray) -> list[FaceDetection]:
        """Faces in a uint8 HxWx3 BGR image, sorted by score, highest first."""
        ...


class FaceEmbedder(Protocol):
    """Turns detected faces into fixed-length identity vectors."""

    name: str
    version: str
    dim: int
    default_threshold: float
    """L2 distance below which two embeddings are taken as the same person."""

    def embed(self, image_bgr: np.ndarray, faces: Sequence[FaceDetection]) -> np.ndarray:
        """A ``(len(faces), dim)`` float32 array; ``(0, dim)`` for no faces."""
        ...


@dataclass(frozen=True)
class FaceModel:
    """A detector and an embedder that are used (and versioned) together."""

    detector: FaceDetector
    embedder: FaceEmbedder

    @property
    def name(self) -> str:
        return f"{self.detector.name}+{self.embedder.name}"

    @property
    def version(self) -> str:
        return f"{self.detector.version}+{self.embedder.version}"


def check_bgr_image(image_bgr: object, what: str = "image_bgr") -> np.ndarray:
    """``image_bgr`` as a C-contiguous array if it is a non-empty uint8 HxWx3 array."""
    if not isinstance(image_bgr, np.ndarray):
        raise BadInputError(f"{what} must be a numpy array, got {type(image_bgr).__name__}")
    if image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise BadInputError(
            f"{what} must be a uint8 HxWx3 BGR array, got dtype {image_bgr.dtype} shape {image_bgr.shape}"
        )
    if image_bgr.shape[0] == 0 or image_bgr.shape[1] == 0:
        raise BadInputError(f"{what} is empty: shape {image_bgr.shape}")
    return np.ascontiguousarray(image_bgr)


def check_detector_settings(det_threshold: float, max_side: int, min_face_px: int) -> None:
    """Raise unless the detector settings are usable (shared by every detector)."""
    if not 0.0 < det_threshold < 1.0:
        raise BadInputError(f"det_threshold must be in (0, 1), got {det_threshold}")
    if max_side < 32:
        raise BadInputError(f"max_side must be at least 32 px, got {max_side}")
    if min_face_px < 0:
        raise BadInputError(f"min_face_px must be >= 0, got {min_face_px}")


def check_faces(faces: Sequence[FaceDetection], *, need_landmarks: bool, what: str = "faces") -> None:
    """Raise unless every face is a ``FaceDetection`` (with 5 landmarks if needed)."""
    for i, face in enumerate(faces):
        if not isinstance(face, FaceDetection):
            raise BadInputError(f"{what}[{i}] must be a FaceDetection, got {type(face).__name__}")
        if need_landmarks and len(face.landmarks) != 5:
            raise BadInputError(
                f"{what}[{i}] has {len(face.landmarks)} landmarks; 5 are needed for alignment"
            )
