"""Face search: embed a probe photo and find ranked sightings in ``faces``."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass

import numpy as np

from citywatch.errors import BadInputError
from citywatch.filters import sql_string, where_clause
from citywatch.images import MAX_IMAGE_PIXELS, decode_image
from citywatch.models.base import FaceDetection, FaceModel
from citywatch.schemas import CameraRow, arrow_to_rows
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import cameras_table, has_table, segments_table


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


@dataclass(frozen=True, slots=True)
class Sighting:
    """One track in which the probe's person was (probably) seen."""

    rank: int
    face_id: str
    camera_id: str
    camera_name: str
    ts: dt.datetime
    track_start: dt.datetime
    track_end: dt.datetime
    distance: float
    similarity: float
    bbox: tuple[float, float, float, float]
    segment_uri: str
    thumb_uri: str
    lat: float | None
    lon: float | None


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
    if not has_table(storage.db, "faces"):
        return []
    cameras = {c.id: c for c in arrow_to_rows(cameras_table(storage.db).to_arrow(), CameraRow)}
    camera_ids = camera_filter_ids(cameras, filters)
    where = where_clause(camera_ids=camera_ids, since=filters.since, until=filters.until)
    table = storage.db.open_table("faces")
    query = table.search(probe.embedding.astype(np.float32), vector_column_name="embedding")
    query = query.distance_type("l2").limit(top_k * settings.embeds_per_track * 4)
    # used once tasks/search_indexes.py built the vector index; exact search ignores them
    query = query.nprobes(settings.face_ann_nprobes).refine_factor(settings.face_ann_refine)
    if where:
        query = query.where(where, prefilter=True)
    hits = query.to_arrow().to_pylist()
    best: dict[str, dict[str, object]] = {}
    for hit in hits:
        hit["distance"] = math.sqrt(max(0.0, float(hit["_distance"])))
        if hit["distance"] > threshold:
            continue
        current = best.get(hit["track_id"])
        if current is None or hit["distance"] < current["distance"]:
            best[hit["track_id"]] = hit
    ranked = sorted(best.values(), key=lambda h: h["distance"])[:top_k]
    uris = segment_uris(storage, {str(h["segment_id"]) for h in ranked})
    return [
        Sighting(
            rank=i + 1,
            face_id=str(h["id"]),
            camera_id=str(h["camera_id"]),
            camera_name=cameras[str(h["camera_id"])].name if str(h["camera_id"]) in cameras else "",
            ts=h["ts"],
            track_start=h["track_start"],
            track_end=h["track_end"],
            distance=float(h["distance"]),
            similarity=similarity(float(h["distance"]), threshold),
            bbox=tuple(h["bbox"]),
            segment_uri=uris.get(str(h["segment_id"]), ""),
            thumb_uri=str(h["thumb_uri"]),
            lat=h["lat"],
            lon=h["lon"],
        )
        for i, h in enumerate(ranked)
    ]


def segment_uris(storage: Storage, segment_ids: set[str]) -> dict[str, str]:
    if not segment_ids:
        return {}
    quoted = ", ".join(sql_string(sid) for sid in sorted(segment_ids))
    rows = segments_table(storage.db).search().where(f"id IN ({quoted})").select(["id", "uri"])
    return {r["id"]: r["uri"] for r in rows.limit(len(segment_ids)).to_arrow().to_pylist()}
