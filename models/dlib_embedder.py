"""dlib face embedder: 5-point alignment + ResNet-29 128-d descriptor.

Weights are the ``.dat`` files of the ``face_recognition_models`` package, found
without importing it (its ``__init__`` imports ``pkg_resources``). dlib fits its
own 5 landmarks (eye corners, nose base) inside the detector's box, cuts a 150 px
chip with 25% padding and runs the ResNet on it, as ``face_recognition`` does.

Descriptors are compared with Euclidean distance: dlib reports 99.38% on LFW
at 0.6. On citywatch's sample photos, with
RetinaFace boxes, same-person pairs (Obama x3, also from a 50 px face) measured
0.19-0.45 and different-person pairs (Biden, Tom Hanks, the astronaut, the six
people of t1.jpg) 0.65-0.98. ``default_threshold`` is 0.55, the middle of that
gap and a little below dlib's 0.6, trading some recall for fewer false matches.

dlib networks are not thread safe, so ``embed`` holds a lock: threads of one Dask
worker that share the cached model take turns.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from importlib.metadata import version as package_version
from pathlib import Path

import cv2
import dlib
import numpy as np

from citywatch.errors import CitywatchError
from citywatch.models.base import FaceDetection, check_bgr_image, check_faces

_SHAPE_PREDICTOR = "shape_predictor_5_face_landmarks.dat"
_RESNET = "dlib_face_recognition_resnet_model_v1.dat"
_CHIP_PADDING = 0.25
DEFAULT_THRESHOLD = 0.55


def dlib_models_dir() -> Path:
    """The ``models/`` folder of the installed ``face_recognition_models`` package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise CitywatchError(
            "package face_recognition_models is not installed; the dlib face backend "
            "needs its .dat weights (pip install face-recognition-models==0.3.0)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    missing = [n for n in (_SHAPE_PREDICTOR, _RESNET) if not (folder / n).is_file()]
    if missing:
        raise CitywatchError(f"face_recognition_models install is incomplete: {missing} not in {folder}")
    return folder


class DlibEmbedder:
    """``FaceEmbedder`` producing dlib's 128-d face descriptors."""

    name = "dlib-resnet-v1"
    dim = 128
    default_threshold = DEFAULT_THRESHOLD

    def __init__(self) -> None:
        folder = dlib_models_dir()
        self.version = f"dlib-{dlib.__version__}-frm-{package_version('face_recognition_models')}"
        self._shape_predictor = dlib.shape_predictor(str(folder / _SHAPE_PREDICTOR))
        self._resnet = dlib.face_recognition_model_v1(str(folder / _RESNET))
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[object, ...]:
        # dlib models do not pickle; a copy reloads the weights.
        return (DlibEmbedder, ())

    def embed(self, image_bgr: np.ndarray, faces: Sequence[FaceDetection]) -> np.ndarray:
        image = check_bgr_image(image_bgr)
        check_faces(faces, need_landmarks=False)
        if not faces:
            return np.zeros((0, self.dim), dtype=np.float32)
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        shapes = dlib.full_object_detections()
        with self._lock:
            for face in faces:
                shapes.append(self._shape_predictor(rgb, _rectangle(face, rgb.shape)))
            # one batch: 150 px chips with 25% padding (dlib.get_face_chip), then the ResNet
            descriptors = self._resnet.compute_face_descriptor(
                rgb, shapes, num_jitters=0, padding=_CHIP_PADDING
            )
        return np.asarray([np.asarray(d) for d in descriptors], dtype=np.float32).reshape(
            len(faces), self.dim
        )


def _rectangle(face: FaceDetection, shape: tuple[int, ...]) -> dlib.rectangle:
    """The detector box as a dlib rectangle, clipped to the image."""
    height, width = shape[:2]
    x1, y1, x2, y2 = face.bbox
    left = int(np.clip(round(x1), 0, width - 1))
    top = int(np.clip(round(y1), 0, height - 1))
    right = int(np.clip(round(x2), left + 1, width))
    bottom = int(np.clip(round(y2), top + 1, height))
    return dlib.rectangle(left, top, right, bottom)
