"""Face search: embed a probe photo and find ranked sightings in ``faces``."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from lancedb.query import LanceVectorQueryBuilder
from lancedb.table import Table

from citywatch.errors import BadInputError
from citywatch.face_rule import FaceRule, l2
from citywatch.filters import is_in, where_clause
from citywatch.images import MAX_IMAGE_PIXELS, decode_image
from citywatch.models.base import FaceDetection, FaceModel
from citywatch.schemas import CameraRow, FaceRow, arrow_to_rows
from citywatch.settings import Settings
from citywatch.shards import concat, fan_out, index_tables
from citywatch.sightings import Sighting
from citywatch.storage import Storage
from citywatch.tables import cameras_table, segments_table


@dataclass(frozen=True, slots=True)
class Probe:
    source: str
    sha256: str
    face: FaceDetection
    embedding: np.ndarray
    faces_in_photo: int


@dataclass(frozen=True, slots=True)
class SearchFilters:
    camera_ids: tuple[str, ...] = ()
    district: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def embed_probe(
    data: bytes, source: str, model: FaceModel, face_index: int | None, *, max_pixels: int = MAX_IMAGE_PIXELS
) -> Probe:
    """Find the probe's face (exactly one, or the one picked) and embed it."""
    image = decode_image(data, source, max_pixels=max_pixels)
    faces = sorted(model.detector.detect(image), key=lambda f: f.bbox[0])
    if not faces:
        raise BadInputError(f"probe {source}: no face found")
    if face_index is None and len(faces) > 1:
        listing = "; ".join(
            f"face {i}: box {tuple(int(v) for v in f.bbox)} score {f.score:.2f}" for i, f in enumerate(faces)
        )
        raise BadInputError(
            f"probe {source}: {len(faces)} faces found (left to right: {listing}); pick one with --face N"
        )
    index = face_index or 0
    if not 0 <= index < len(faces):
        raise BadInputError(f"probe {source}: --face {index} out of range (0..{len(faces) - 1})")
    vector = model.embedder.embed(image, [faces[index]])[0]
    return Probe(
        source, hashlib.sha256(data).hexdigest(), faces[index], vector.astype(np.float32), len(faces)
    )


def similarity(distance: float, threshold: float) -> float:
    """1 at distance 0, 0.5 at the match threshold, 0 at twice the threshold."""
    return max(0.0, 1.0 - distance / (2.0 * threshold))


def camera_filter_ids(cameras: dict[str, CameraRow], filters: SearchFilters) -> list[str]:
    """Camera ids the filters allow ([] = all); unknown cameras/districts are errors."""
    ids = list(filters.camera_ids)
    for cid in ids:
        if cid not in cameras:
            raise BadInputError(f"--camera {cid!r}: no such camera")
    if filters.district is not None:
        in_district = [c.id for c in cameras.values() if c.district == filters.district]
        if not in_district:
            raise BadInputError(f"--district {filters.district!r}: no camera in that district")
        ids = [cid for cid in ids if cid in in_district] if ids else in_district
        if not ids:
            raise BadInputError("the --camera and --district filters exclude every camera")
    return ids


def search_faces(
    storage: Storage,
    settings: Settings,
    probe: Probe,
    filters: SearchFilters,
    *,
    top_k: int,
    threshold: float,
) -> list[Sighting]:
    """Sightings (best face per track) within ``threshold``, nearest first."""
    names = index_tables(storage.db, FaceRow.TABLE, filters.since, filters.until)
    if not names:
        return []
    cameras = {c.id: c for c in arrow_to_rows(cameras_table(storage.db).to_arrow(), CameraRow)}
    camera_ids = camera_filter_ids(cameras, filters)
    where = where_clause(camera_ids=camera_ids, since=filters.since, until=filters.until)
    limit = top_k * settings.faces.embeds_per_track * 4
    vector = probe.embedding.astype(np.float32)

    def nearest(name: str) -> pa.Table:
        query = _vector_query(storage.db.open_table(name), vector).distance_type("l2").limit(limit)
        # used once tasks/search/indexes.py built the vector index; exact search ignores them
        query = query.nprobes(settings.faces.ann_nprobes).refine_factor(settings.faces.ann_refine)
        if where:
            query = query.where(where, prefilter=True)
        return query.to_arrow()

    hits = nearest_of(fan_out(nearest, names), limit)
    distances = [math.sqrt(max(0.0, float(d))) for d in hits.column("_distance").to_pylist()]
    ranked = best_per_track(
        arrow_to_rows(hits, FaceRow), distances, probe.embedding, threshold, settings.faces.rule()
    )
    uris = segment_uris(storage, {hit.face.segment_id for hit in ranked[:top_k]})
    return [face_sighting(i + 1, hit, threshold, cameras, uris) for i, hit in enumerate(ranked[:top_k])]


@dataclass(frozen=True, slots=True)
class TrackHit:
    face: FaceRow  # the track's nearest face of matchable size
    best: float  # its distance to the probe
    decided: float  # the distance the rule decides on (citywatch/face_rule.py)


def best_per_track(
    faces: list[FaceRow], distances: list[float], probe: np.ndarray, threshold: float, rule: FaceRule
) -> list[TrackHit]:
    """Tracks that match under ``rule``, nearest first (by the decided distance).

    Per track: its nearest face of at least ``rule.min_px``; with the template rule the
    track's template must be within ``threshold`` as well, and the larger distance is
    the one reported and ranked.
    """
    nearest: dict[str, tuple[float, FaceRow]] = {}
    for face, distance in zip(faces, distances, strict=True):
        if distance > threshold or not rule.accepts_size(face.face_px):
            continue
        current = nearest.get(face.track_id)
        if current is None or distance < current[0]:
            nearest[face.track_id] = (distance, face)
    out: list[TrackHit] = []
    for distance, face in nearest.values():
        decided = rule.distance(distance, l2(probe, face.template))
        if decided <= threshold:
            out.append(TrackHit(face, distance, decided))
    return sorted(out, key=lambda hit: (hit.decided, hit.face.id))


def nearest_of(parts: list[pa.Table], limit: int) -> pa.Table:
    """The ``limit`` nearest of the hits of several tables (day shards), nearest first."""
    hits = concat(parts)
    if hits is None:
        return pa.table({"_distance": pa.array([], pa.float32())})
    if len(parts) == 1:
        return hits
    order = pc.sort_indices(hits, sort_keys=[("_distance", "ascending"), ("id", "ascending")])
    return hits.take(order[:limit])


def _vector_query(table: Table, vector: np.ndarray) -> LanceVectorQueryBuilder:
    """A nearest-neighbour query on ``embedding`` (typed, so its vector options type-check)."""
    query = table.search(vector, vector_column_name="embedding", query_type="vector")
    if not isinstance(query, LanceVectorQueryBuilder):
        raise TypeError(f"lancedb returned {type(query).__name__} for a vector search")
    return query


def segment_uris(storage: Storage, segment_ids: set[str]) -> dict[str, str]:
    if not segment_ids:
        return {}
    rows = segments_table(storage.db).search().where(is_in("id", sorted(segment_ids))).select(["id", "uri"])
    return {r["id"]: r["uri"] for r in rows.limit(len(segment_ids)).to_arrow().to_pylist()}


def face_sighting(
    rank: int,
    hit: TrackHit,
    threshold: float,
    cameras: dict[str, CameraRow],
    uris: dict[str, str],
) -> Sighting:
    """One ranked track as a sighting (camera name, segment URI, similarity)."""
    face, distance = hit.face, hit.decided
    return Sighting(
        rank=rank,
        face_id=face.id,
        camera_id=face.camera_id,
        camera_name=cameras[face.camera_id].name if face.camera_id in cameras else "",
        ts=face.ts,
        track_start=face.track_start,
        track_end=face.track_end,
        distance=distance,
        similarity=similarity(distance, threshold),
        bbox=face.bbox,
        segment_uri=uris.get(face.segment_id, ""),
        thumb_uri=face.thumb_uri,
        lat=face.lat,
        lon=face.lon,
        face_px=face.face_px,
        best_distance=hit.best,
    )
