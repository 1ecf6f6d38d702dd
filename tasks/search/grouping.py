"""Grouping face tracks by likely identity: one template per track, a neighbour graph, components.

A track's template is its best-quality embedded face (the field-accuracy issue's track
templates can replace it). Two templates are neighbours when their Euclidean distance is
at most the face match threshold; a group is a connected component of that graph, found
with exact neighbours computed block by block (numpy) and scipy's connected components.
Groups are numbered by their earliest sighting, so the same inputs give the same groups.
Groups are not identities: they carry no name and are never matched outside the request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from citywatch.schemas import FaceRow

BLOCK_ROWS = 2048  # templates compared per block: 2048 x N float32 distances at a time
MAX_NEIGHBOURS = 32  # edges kept per template (the nearest), enough to join a component


@dataclass(frozen=True, slots=True)
class TrackTemplate:
    """One face track: its best face (the row shown) and the embedding that stands for it."""

    face: FaceRow

    @property
    def track_id(self) -> str:
        return self.face.track_id

    @property
    def embedding(self) -> np.ndarray:
        return self.face.embedding


def track_templates(faces: Iterable[FaceRow]) -> list[TrackTemplate]:
    """The best-quality face of each track (ties: the smaller face id), ordered by track id."""
    best: dict[str, FaceRow] = {}
    for face in faces:
        current = best.get(face.track_id)
        if current is None or (face.quality, current.id) > (current.quality, face.id):
            best[face.track_id] = face
    return [TrackTemplate(best[track]) for track in sorted(best)]


def neighbour_components(vectors: npt.NDArray[np.float32], threshold: float) -> npt.NDArray[np.int64]:
    """Component label of each row of ``vectors`` in the graph of pairs within ``threshold``."""
    count = len(vectors)
    if count == 0:
        return np.zeros(0, np.int64)
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.einsum("ij,ij->i", data, data)
    limit = float(threshold) ** 2
    keep = min(MAX_NEIGHBOURS, count)
    rows: list[npt.NDArray[np.int64]] = []
    cols: list[npt.NDArray[np.int64]] = []
    for start in range(0, count, BLOCK_ROWS):
        block = data[start : start + BLOCK_ROWS]
        squared = norms[start : start + BLOCK_ROWS, None] + norms[None, :] - 2.0 * (block @ data.T)
        nearest = np.argpartition(squared, keep - 1, axis=1)[:, :keep] if keep < count else None
        if nearest is None:
            r, c = np.nonzero(squared <= limit)
        else:
            picked = np.take_along_axis(squared, nearest, axis=1)
            r, k = np.nonzero(picked <= limit)
            c = nearest[r, k]
        rows.append(r.astype(np.int64) + start)
        cols.append(c.astype(np.int64))
    row = np.concatenate(rows)
    col = np.concatenate(cols)
    graph = coo_matrix((np.ones(len(row), np.int8), (row, col)), shape=(count, count))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def group_tracks(templates: Sequence[TrackTemplate], threshold: float) -> list[list[TrackTemplate]]:
    """Templates grouped by likely identity; groups and their members ordered by first sighting."""
    if not templates:
        return []
    vectors = np.stack([t.embedding.astype(np.float32) for t in templates])
    labels = neighbour_components(vectors, threshold)
    groups: dict[int, list[TrackTemplate]] = {}
    for label, template in zip(labels.tolist(), templates):
        groups.setdefault(label, []).append(template)
    ordered = [sorted(members, key=_when) for members in groups.values()]
    return sorted(ordered, key=lambda members: _when(members[0]))


def representative(members: Sequence[TrackTemplate]) -> TrackTemplate:
    """The member shown for a group: its best-quality face (ties: the earliest)."""
    return max(members, key=lambda t: (t.face.quality, -t.face.ts.timestamp(), t.face.id))


def _when(template: TrackTemplate) -> tuple[dt.datetime, str]:
    return template.face.track_start, template.track_id
