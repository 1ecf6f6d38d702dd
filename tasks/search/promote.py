"""Promoting a group (companions or recurring faces) to a face search or a watchlist request.

A group is named by the face sightings it lists (face ids from ``search companions`` or
``search recurring``). Its template is the mean of its tracks' templates; the sightings
must look like one person (one group at the match threshold, as they were grouped).
The template's sha256 stands for the probe in the audit record, as a photo's would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from citywatch.errors import BadInputError
from citywatch.filters import is_in
from citywatch.models.base import FaceDetection
from citywatch.storage import Storage
from citywatch.tasks.search.coappear import load_faces
from citywatch.tasks.search.faces import Probe
from citywatch.tasks.search.grouping import group_labels, track_templates

MAX_GROUP_SIGHTINGS = 500


@dataclass(frozen=True, slots=True)
class GroupTemplate:
    face_ids: tuple[str, ...]
    track_ids: tuple[str, ...]
    embedding: np.ndarray
    sha256: str
    model: str

    @property
    def source(self) -> str:
        return f"group of {len(self.track_ids)} tracks ({self.face_ids[0]}, ...)"

    def probe(self) -> Probe:
        """The template as a search probe (no photo: a zero box, score 1)."""
        return Probe(
            self.source, self.sha256, FaceDetection((0.0, 0.0, 0.0, 0.0), 1.0, ()), self.embedding, 1
        )


def group_template(storage: Storage, face_ids: Sequence[str], threshold: float) -> GroupTemplate:
    """The template of the group made of ``face_ids``; bad input when they are not one person."""
    wanted = sorted(set(face_ids))
    if not wanted:
        raise BadInputError("--sighting: name the group's face sightings (face_id, repeatable)")
    if len(wanted) > MAX_GROUP_SIGHTINGS:
        raise BadInputError(f"--sighting: {len(wanted)} given, at most {MAX_GROUP_SIGHTINGS}")
    faces = load_faces(storage, is_in("id", wanted))
    missing = sorted(set(wanted) - {f.id for f in faces})
    if missing:
        raise BadInputError(f"--sighting {missing[0]!r}: no such face sighting")
    models = sorted({f.model for f in faces})
    if len(models) > 1:
        raise BadInputError(f"the sightings come from different face models ({', '.join(models)})")
    templates = track_templates(faces)
    vectors = np.stack([t.embedding.astype(np.float32) for t in templates])
    groups = len(set(group_labels(vectors, threshold).tolist()))
    if groups > 1:
        raise BadInputError(
            f"the {len(templates)} tracks given fall into {groups} groups at the match threshold "
            f"{threshold:.3f}: they do not look like one person; promote one group at a time"
        )
    centre = vectors.mean(axis=0).astype(np.float32)
    digest = hashlib.sha256(centre.tobytes() + "\n".join(wanted).encode()).hexdigest()
    return GroupTemplate(tuple(wanted), tuple(t.track_id for t in templates), centre, digest, models[0])
