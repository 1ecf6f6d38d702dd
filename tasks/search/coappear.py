"""Co-appearance: who was seen with the subject (same camera, within ±T seconds).

The subject is a set of face tracks: a case's kept sightings (its holds) or the tracks
of a face search result. Every other face track on the subject's camera within
``window_s`` of one of those tracks is a companion sighting; companions are grouped by
likely identity across cameras (tasks/search/grouping.py) and ranked by how many
distinct subject sightings they accompany, then by cameras and sightings.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from citywatch.errors import BadInputError
from citywatch.filters import all_of, any_of, compare, eq, is_in, not_in
from citywatch.schemas import CameraRow, FaceRow, HoldRow, arrow_to_rows
from citywatch.shards import read_index
from citywatch.sightings import Sighting
from citywatch.storage import Storage
from citywatch.tables import cameras_table, has_table, open_table
from citywatch.tasks.search.faces import TrackHit, face_sighting, segment_uris
from citywatch.tasks.search.grouping import (
    TrackTemplate,
    group_tracks,
    groupable,
    representative,
    track_templates,
)
from citywatch.tasks.search.report import sighting_json
from citywatch.times import format_utc

MAX_SUBJECT_TRACKS = 500


@dataclass(frozen=True, slots=True)
class FaceGroup:
    """Face tracks that likely show one (unnamed) person, with the sightings behind it."""

    rank: int
    thumb_uri: str  # the representative (best-quality) face's thumbnail
    cameras: tuple[str, ...]
    first_ts: dt.datetime
    last_ts: dt.datetime
    sightings: tuple[Sighting, ...]  # one per track, earliest first; distance to the representative
    accompanies: tuple[str, ...] = ()  # co-appearance: the subject tracks it was seen with

    @property
    def count(self) -> int:
        return len(self.sightings)


def check_window(window_s: float) -> float:
    if not isinstance(window_s, int | float) or not math.isfinite(window_s) or window_s < 0:
        raise BadInputError(f"--window {window_s!r}: seconds around each sighting must be 0 or more")
    return float(window_s)


def case_tracks(storage: Storage, case_id: str) -> list[str]:
    """The tracks a case keeps (its holds), sorted; an empty case is bad input."""
    tracks: list[str] = []
    if has_table(storage.db, HoldRow.TABLE):
        table = open_table(storage.db, HoldRow.TABLE, HoldRow.SCHEMA)
        rows = arrow_to_rows(table.search().where(eq("case_id", case_id)).limit(None).to_arrow(), HoldRow)
        tracks = sorted({r.track_id for r in rows})
    if not tracks:
        raise BadInputError(
            f"case {case_id!r} keeps no sightings: hold the subject's tracks first "
            "(citywatch hold TRACK --case ...) or name them with --sighting FACE_ID"
        )
    return tracks


def load_faces(storage: Storage, where: str) -> list[FaceRow]:
    """Face rows matching ``where`` (built with citywatch.filters)."""
    found = read_index(storage.db, FaceRow.TABLE, where)
    return arrow_to_rows(found, FaceRow) if found is not None else []


def find_companions(
    storage: Storage,
    subject_tracks: Sequence[str],
    *,
    window_s: float,
    threshold: float,
    min_quality: float = 0.0,
) -> list[FaceGroup]:
    """Groups of faces seen with the subject, most subject sightings accompanied first."""
    window = dt.timedelta(seconds=check_window(window_s))
    wanted = sorted(set(subject_tracks))
    if not wanted:
        raise BadInputError("no subject sightings given")
    if len(wanted) > MAX_SUBJECT_TRACKS:
        raise BadInputError(f"{len(wanted)} subject tracks given; at most {MAX_SUBJECT_TRACKS}")
    subject = track_templates(load_faces(storage, is_in("track_id", wanted)))
    missing = sorted(set(wanted) - {t.track_id for t in subject})
    if missing:
        raise BadInputError(f"subject track(s) {', '.join(missing[:5])} not in the faces table")
    subject_vectors = np.stack([t.embedding for t in subject])
    windows = {
        t.track_id: (t.face.camera_id, t.face.track_start - window, t.face.track_end + window)
        for t in subject
    }
    near_subject = any_of(
        *(
            all_of(eq("camera_id", camera), compare("ts", ">=", since), compare("ts", "<=", until))
            for camera, since, until in windows.values()
        )
    )
    candidates = load_faces(storage, all_of(not_in("track_id", wanted), near_subject))
    seen_with: dict[str, set[str]] = {}
    for other in candidates:  # one query for every sighting; which sightings each face was near
        for track, (camera, since, until) in windows.items():
            if other.camera_id == camera and since <= other.ts <= until:
                seen_with.setdefault(other.track_id, set()).add(track)
    companions = [
        t
        for t in groupable(track_templates(candidates), min_quality)
        if _nearest(subject_vectors, t.embedding) > threshold
    ]  # the subject's own unkept tracks are not companions; too poor faces are not grouped
    groups = group_tracks(companions, threshold)
    ranked = sorted(
        groups,
        key=lambda members: (
            -len(set().union(*(seen_with[m.track_id] for m in members))),
            -len({m.face.camera_id for m in members}),
            -len(members),
        ),
    )
    built = build_groups(storage, ranked, threshold)
    return [
        FaceGroup(
            g.rank,
            g.thumb_uri,
            g.cameras,
            g.first_ts,
            g.last_ts,
            g.sightings,
            tuple(sorted(set().union(*(seen_with[m.track_id] for m in members)))),
        )
        for g, members in zip(built, ranked)
    ]


def _nearest(vectors: np.ndarray, vector: np.ndarray) -> float:
    return float(np.sqrt(((vectors - vector[None, :]) ** 2).sum(axis=1)).min())


def build_groups(
    storage: Storage, groups: Sequence[Sequence[TrackTemplate]], threshold: float
) -> list[FaceGroup]:
    """FaceGroups (rank = order given) with one Sighting per track."""
    cameras: dict[str, CameraRow] = {}
    if has_table(storage.db, CameraRow.TABLE):
        cameras = {c.id: c for c in arrow_to_rows(cameras_table(storage.db).to_arrow(), CameraRow)}
    uris = segment_uris(storage, {m.face.segment_id for members in groups for m in members})
    out: list[FaceGroup] = []
    for rank, members in enumerate(groups, start=1):
        best = representative(members)
        distances = [float(np.linalg.norm(m.embedding - best.embedding)) for m in members]
        sightings = tuple(
            face_sighting(i, TrackHit(m.face, d, d), threshold, cameras, uris)
            for i, (m, d) in enumerate(zip(members, distances, strict=True), start=1)
        )
        out.append(
            FaceGroup(
                rank=rank,
                thumb_uri=best.face.thumb_uri,
                cameras=tuple(sorted({m.face.camera_id for m in members})),
                first_ts=min(m.face.track_start for m in members),
                last_ts=max(m.face.track_end for m in members),
                sightings=sightings,
            )
        )
    return out


def group_json(group: FaceGroup) -> dict[str, object]:
    """The JSON form of a group (CLI --json and the service)."""
    return {
        "rank": group.rank,
        "count": group.count,
        "thumb_uri": group.thumb_uri,
        "cameras": list(group.cameras),
        "first_ts": format_utc(group.first_ts),
        "last_ts": format_utc(group.last_ts),
        "accompanies": list(group.accompanies),
        "sightings": [sighting_json(s) for s in group.sightings],
    }
