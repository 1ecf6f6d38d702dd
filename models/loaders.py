"""The models a component needs, built from its settings (loaded once per process).

``load_face_model`` and ``load_plate_reader`` cache by their arguments, so every
caller asking with the same settings shares one model in a worker process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from citywatch.models.base import FaceModel
from citywatch.models.faces import load_face_model
from citywatch.plates import PlateGrammar
from citywatch.settings import Settings

if TYPE_CHECKING:
    from citywatch.models.plate_reader import PlateReader


def face_model_for(settings: Settings) -> FaceModel:
    """The indexing face model: detector and embedder at the indexing thresholds."""
    return load_face_model(
        settings.face_backend,
        det_threshold=settings.face_det_threshold,
        max_side=settings.face_max_side,
        min_face_px=settings.face_min_px,
        insightface_dir=settings.insightface_dir,
    )


def redaction_face_model(settings: Settings) -> FaceModel:
    """The indexing detector, run with redaction's (more sensitive) thresholds."""
    return load_face_model(
        settings.face_backend,
        det_threshold=settings.redact_det_threshold,
        max_side=settings.face_max_side,
        min_face_px=settings.redact_min_face_px,
        insightface_dir=settings.insightface_dir,
    )


def plate_reader_for(settings: Settings) -> PlateReader:
    """The plate reader (text detection + recognition) at the configured confidence."""
    from citywatch.models.plate_reader import load_plate_reader  # RapidOCR: only when plates are read

    return load_plate_reader(settings.plate_min_confidence, settings.plate_detect_side_px)


def plate_grammar_for(settings: Settings) -> PlateGrammar:
    """The plate grammar reads are checked and fixed against."""
    return PlateGrammar(settings.plate_grammar, settings.plate_grammar_fix_targets)
