"""Face watchlist entries: enrolment from photos (each holding exactly one usable face)
or from a face group's template (citywatch coappear). The entry is written ``pending``;
governance/watchlist.py approves, lists and removes entries of every kind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from citywatch.errors import BadInputError
from citywatch.governance.enrolment_crops import write_crops
from citywatch.governance.watchlist import EntryRequest, base_row, entry_threshold, watchlist_table
from citywatch.images import MAX_IMAGE_PIXELS, decode_image, face_crop_jpeg
from citywatch.schemas import EntryKind, WatchlistRow, rows_to_arrow, utcnow
from citywatch.storage import Storage
from citywatch.tables import upsert

if TYPE_CHECKING:
    from citywatch.models.base import FaceModel

MIN_ENROL_FACE_PX = 40  # smaller faces embed poorly: refused at enrolment
MAX_ENROL_PHOTOS = 10


def enrolment_embedding(
    data: bytes, source: str, model: FaceModel, *, max_pixels: int = MAX_IMAGE_PIXELS
) -> tuple[np.ndarray, str]:
    """(embedding, sha256) of the one usable face in an enrolment photo, else BadInputError."""
    vector, sha, _crop = enrolment_face(data, source, model, max_pixels=max_pixels)
    return vector, sha


def enrolment_face(
    data: bytes, source: str, model: FaceModel, *, max_pixels: int = MAX_IMAGE_PIXELS
) -> tuple[np.ndarray, str, bytes]:
    """(embedding, sha256, face crop JPEG) of the one usable face in an enrolment photo.

    Same detection and embedding as a search probe (tasks/search/faces.py:embed_probe), but
    stricter: a group photo is refused rather than a face picked from it.
    """
    image = decode_image(data, source, max_pixels=max_pixels)
    faces = model.detector.detect(image)
    if len(faces) != 1:
        found = "no face" if not faces else f"{len(faces)} faces"
        raise BadInputError(
            f"enrolment photo {source}: {found} found; each photo must hold exactly one "
            "face (crop group photos to the one person)"
        )
    face = faces[0]
    if min(face.width, face.height) < MIN_ENROL_FACE_PX:
        raise BadInputError(
            f"enrolment photo {source}: the face is {face.width:.0f}x{face.height:.0f} px, "
            f"at least {MIN_ENROL_FACE_PX} px per side is needed for a usable template"
        )
    vector = model.embedder.embed(image, [face])[0].astype(np.float32)
    return vector, hashlib.sha256(data).hexdigest(), face_crop_jpeg(image, face.bbox)


def enrol_face(
    storage: Storage,
    model: FaceModel,
    photos: Sequence[tuple[bytes, str]],
    request: EntryRequest,
    *,
    default_threshold: float,
    max_days: int,
    now: dt.datetime | None = None,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> WatchlistRow:
    """Enrol a person from one or more photos ((bytes, source) pairs); returns the pending entry."""
    now = now or utcnow()
    if not photos:
        raise BadInputError("a face entry needs at least one enrolment photo (--photo)")
    if len(photos) > MAX_ENROL_PHOTOS:
        raise BadInputError(f"{len(photos)} enrolment photos given, at most {MAX_ENROL_PHOTOS}")
    threshold = entry_threshold(request, default_threshold)
    row = base_row(request, EntryKind.FACE, now, max_days, threshold)
    vectors: list[np.ndarray] = []
    shas: list[str] = []
    crops: list[bytes] = []
    for data, source in photos:
        vector, sha, crop = enrolment_face(data, source, model, max_pixels=max_pixels)
        if sha in shas:
            raise BadInputError(f"enrolment photo {source} is given twice (same sha256)")
        vectors.append(vector)
        shas.append(sha)
        crops.append(crop)
    for i in range(len(vectors)):
        for j in range(i + 1, len(vectors)):
            gap = float(np.linalg.norm(vectors[i] - vectors[j]))
            if gap >= default_threshold:
                raise BadInputError(
                    f"enrolment photos {photos[i][1]} and {photos[j][1]} do not look like "
                    f"the same person (distance {gap:.3f} >= {default_threshold:.3f})"
                )
    row = replace(
        row, model=model.name, embeddings=[v.astype(np.float32).tolist() for v in vectors], photo_sha256=shas
    )
    write_crops(storage, row.id, list(zip(shas, crops)))  # before the row: a row never lacks them
    upsert(watchlist_table(storage.db), rows_to_arrow([row], WatchlistRow.SCHEMA))
    return row


def enrol_face_template(
    storage: Storage,
    template: Sequence[float],
    source_sha256: str,
    model_name: str,
    request: EntryRequest,
    *,
    default_threshold: float,
    max_days: int,
    now: dt.datetime | None = None,
) -> WatchlistRow:
    """Enrol a person from a face group's template (no photo); the group's sha256 is the source."""
    now = now or utcnow()
    threshold = entry_threshold(request, default_threshold)
    vector = np.asarray(template, dtype=np.float32)
    if vector.ndim != 1 or not vector.size or not np.isfinite(vector).all():
        raise BadInputError("a group template must be one finite embedding")
    row = replace(
        base_row(request, EntryKind.FACE, now, max_days, threshold),
        model=model_name,
        embeddings=[vector.tolist()],
        photo_sha256=[f"group:{source_sha256}"],
    )
    upsert(watchlist_table(storage.db), rows_to_arrow([row], WatchlistRow.SCHEMA))
    return row
