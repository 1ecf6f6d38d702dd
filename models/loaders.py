"""The models a component needs, built from its settings (loaded once per process).

``load_face_model`` and ``load_plate_reader`` cache by their arguments, so every
caller asking with the same settings shares one model in a worker process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from citywatch.models.base import FaceModel
from citywatch.models.faces import load_face_model
from citywatch.settings import PlatesSettings, Settings

if TYPE_CHECKING:
    from citywatch.models.plate_reader import PlateReader


def face_model_for(settings: Settings) -> FaceModel:
    """The indexing face model: detector and embedder at the indexing thresholds."""
    faces = settings.faces
    return load_face_model(
        faces.backend,
        det_threshold=faces.det_threshold,
        max_side=faces.max_side,
        min_face_px=faces.min_px,
        insightface_dir=faces.insightface_dir,
    )


def redaction_face_model(settings: Settings) -> FaceModel:
    """The indexing detector, run with redaction's (more sensitive) thresholds."""
    return load_face_model(
        settings.faces.backend,
        det_threshold=settings.redact.det_threshold,
        max_side=settings.faces.max_side,
        min_face_px=settings.redact.min_face_px,
        insightface_dir=settings.faces.insightface_dir,
    )


def plate_reader_for(plates: PlatesSettings) -> PlateReader:
    """The plate reader (text detection + recognition) at the configured confidence."""
    from citywatch.models.plate_reader import load_plate_reader  # RapidOCR: only when plates are read

    return load_plate_reader(plates.min_confidence, plates.detect_side_px, plates.detect_max_side_px)
