"""Grouping face tracks by likely identity: one template per track, a neighbour graph, components.

A track's template is its best-quality embedded face (the field-accuracy issue's track
templates can replace it). Two templates are neighbours when their Euclidean distance is
at most the face match threshold; the connected components of that graph (exact
neighbours computed block by block, scipy's connected components) are split by average
linkage at the same threshold, so one poor view cannot chain two people together.
Groups are numbered by their earliest sighting, so the same inputs give the same groups.
Groups are not identities: they carry no name and are never matched outside the request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from citywatch.schemas import FaceRow

BLOCK_ROWS = 512  # templates compared per block: N x 512 float32 distances at a time
MAX_NEIGHBOURS = 32  # edges kept per template (the nearest), enough to join a component
MAX_REFINE = 4000  # components up to this size are split by average linkage (O(n^2) memory)


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
    """Component label of each row of ``vectors`` in the graph of pairs within ``threshold``.

    Exact distances, one block of rows against the rows after it (each pair once); a row
    keeps at most ``MAX_NEIGHBOURS`` of its nearest neighbours in a block, which is plenty
    to join a component and bounds memory when one face recurs thousands of times.
    """
    count = len(vectors)
    if count == 0:
        return np.zeros(0, np.int64)
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    half_norms = 0.5 * np.einsum("ij,ij->i", data, data)
    limit = 0.5 * float(threshold) ** 2  # compare half squared distances: one multiply less
    rows: list[npt.NDArray[np.int64]] = []
    cols: list[npt.NDArray[np.int64]] = []
    for start in range(0, count, BLOCK_ROWS):
        stop = min(count, start + BLOCK_ROWS)
        others = data[start:]
        half = others @ data[start:stop].T  # (count - start) x block: -0.5 d^2 + norms
        np.subtract(half_norms[start:, None], half, out=half)
        half += half_norms[None, start:stop]
        near = half <= limit
        per_row = near.sum(axis=0)
        crowded = np.nonzero(per_row > MAX_NEIGHBOURS)[0]
        if len(crowded):  # keep only the nearest of a very frequent face
            for j in crowded.tolist():
                column = half[:, j]
                keep = np.argpartition(column, MAX_NEIGHBOURS)[:MAX_NEIGHBOURS]
                near[:, j] = False
                near[keep[column[keep] <= limit], j] = True
        other, mine = np.nonzero(near)
        rows.append(mine.astype(np.int64) + start)
        cols.append(other.astype(np.int64) + start)
    row = np.concatenate(rows)
    col = np.concatenate(cols)
    graph = coo_matrix((np.ones(len(row), np.int8), (row, col)), shape=(count, count))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def group_labels(vectors: npt.NDArray[np.float32], threshold: float) -> npt.NDArray[np.int64]:
    """Group label of each row: neighbour components, each split by average linkage.

    A component can chain two people through one poor view (a blurred face a little
    under the threshold from both); average linkage at the same threshold joins two
    clusters only when their tracks are, on average, within it. Components larger than
    ``MAX_REFINE`` (one face seen thousands of times) are kept whole.
    """
    components = neighbour_components(vectors, threshold)
    labels = np.empty(len(vectors), np.int64)
    next_label = 0
    order = np.argsort(components, kind="stable")
    bounds = np.flatnonzero(np.diff(components[order])) + 1
    for members in np.split(order, bounds) if len(order) else []:
        if 2 < len(members) <= MAX_REFINE:
            tree = linkage(vectors[members].astype(np.float64), method="average")
            parts = fcluster(tree, t=threshold, criterion="distance").astype(np.int64) - 1
        else:
            parts = np.zeros(len(members), np.int64)
        labels[members] = parts + next_label
        next_label += int(parts.max()) + 1
    return labels


def groupable(templates: Sequence[TrackTemplate], min_quality: float) -> list[TrackTemplate]:
    """The templates good enough to group: best face quality at least ``min_quality``."""
    return [t for t in templates if t.face.quality >= min_quality]


def group_tracks(templates: Sequence[TrackTemplate], threshold: float) -> list[list[TrackTemplate]]:
    """Templates grouped by likely identity; groups and their members ordered by first sighting."""
    if not templates:
        return []
    vectors = np.stack([t.embedding.astype(np.float32) for t in templates])
    labels = group_labels(vectors, threshold)
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
