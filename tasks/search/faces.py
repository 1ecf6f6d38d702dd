"""Face search: embed a probe photo and find ranked sightings in ``faces``."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Sequence
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
from citywatch.schemas import CameraRow, FaceRow, SegmentRow, arrow_to_rows
from citywatch.settings import Settings
from citywatch.shards import concat, fan_out, index_tables
from citywatch.sightings import Sighting
from citywatch.storage import Storage
from citywatch.tables import segments_table, table_names
from citywatch.tasks.search.faces_memory import (
    Allowed,
    FaceShard,
    MemoryTrack,
    best_tracks,
    face_tier,
    nearest_rows,
)


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
    listed = table_names(storage.db)  # once: each listing is a round trip to the store
    names = index_tables(storage.db, FaceRow.TABLE, filters.since, filters.until, names=listed)
    if not names:
        return []
    cameras = known_cameras(storage, listed)
    camera_ids = camera_filter_ids(cameras, filters)
    where = where_clause(camera_ids=camera_ids, since=filters.since, until=filters.until)
    limit = top_k * settings.faces.embeds_per_track * 4
    vector = probe.embedding.astype(np.float32)
    tier = face_tier(storage)
    allowed = Allowed(frozenset(camera_ids), _micros(filters.since), _micros(filters.until))

    def in_lancedb(name: str, table: Table | None = None) -> Part:
        table = table if table is not None else storage.db.open_table(name)
        query = _vector_query(table, vector).distance_type("l2").limit(limit)
        # used once tasks/search/indexes.py built the vector index; exact search ignores them
        query = query.nprobes(settings.faces.ann_nprobes).refine_factor(settings.faces.ann_refine)
        if where:
            query = query.where(where, prefilter=True)
        return Part(name, table, query.to_arrow())

    if tier is None:
        parts = fan_out(in_lancedb, names)
    else:
        opened: dict[str, Table] = {}
        held: dict[str, FaceShard] = {}
        for name in names:  # one by one: in parallel these were slower (docs/performance.md)
            if tier.closed(name):
                opened[name] = storage.db.open_table(name)
                shard = tier.get(name, opened[name].version)  # only at the version it was read at
                if shard is not None:
                    held[name] = shard
        others = [n for n in names if n not in held]
        from_lancedb = dict(zip(others, fan_out(lambda n: in_lancedb(n, opened.get(n)), others), strict=True))
        parts = [
            from_lancedb[n]
            if n not in held
            else Part(n, opened[n], None, held[n], *nearest_rows(held[n], vector, allowed, limit))
            for n in names
        ]
    rule = settings.faces.rule()
    if all(part.shard is None for part in parts):
        hits = nearest_of([p.hits for p in parts if p.hits is not None], limit)
        distances = [math.sqrt(max(0.0, float(d))) for d in hits.column("_distance").to_pylist()]
        ranked = best_per_track(arrow_to_rows(hits, FaceRow), distances, probe.embedding, threshold, rule)
    else:
        ranked = _ranked_with_memory(parts, limit, probe.embedding, threshold, rule, top_k)
    uris = segment_uris(storage, {hit.face.segment_id for hit in ranked[:top_k]}, listed)
    return [face_sighting(i + 1, hit, threshold, cameras, uris) for i, hit in enumerate(ranked[:top_k])]


_CAMERAS: dict[tuple[str, int], dict[str, CameraRow]] = {}  # (root, table version) -> cameras


def known_cameras(storage: Storage, listed: Sequence[str]) -> dict[str, CameraRow]:
    """The registered cameras by id (none when the store has no ``cameras`` table yet);
    read again whenever the table's version changed (parsing 2,000 cameras took ~25 ms)."""
    if CameraRow.TABLE not in listed:
        return {}
    table = storage.db.open_table(CameraRow.TABLE)
    key = (storage.root, table.version)
    if key not in _CAMERAS:
        if len(_CAMERAS) >= 8:
            _CAMERAS.clear()
        _CAMERAS[key] = {c.id: c for c in arrow_to_rows(table.to_arrow(), CameraRow)}
    return _CAMERAS[key]


@dataclass(frozen=True, slots=True)
class Part:
    """One table's nearest rows: LanceDB hits, or positions in its memory copy."""

    name: str
    table: Table
    hits: pa.Table | None
    shard: FaceShard | None = None
    positions: np.ndarray | None = None
    distances: np.ndarray | None = None  # squared L2, as LanceDB's ``_distance``


def _micros(ts: dt.datetime | None) -> int | None:
    if ts is None:
        return None
    return int((ts - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1))


def _ranked_with_memory(
    parts: list[Part], limit: int, probe: np.ndarray, threshold: float, rule: FaceRule, top_k: int
) -> list[TrackHit]:
    """``best_per_track`` over the ``limit`` nearest rows of all parts, LanceDB's and the
    memory shards' alike; only the final memory hits are read from LanceDB."""
    nearest: list[tuple[float, str, int, int]] = []  # (squared distance, id, part, row)
    for p, part in enumerate(parts):
        if part.hits is not None:
            ids = part.hits.column("id").to_pylist()
            dists = part.hits.column("_distance").to_pylist()
            nearest += [(float(d), fid, p, i) for i, (d, fid) in enumerate(zip(dists, ids, strict=True))]
        elif part.distances is not None:
            nearest += [(float(d), "", p, i) for i, d in enumerate(part.distances.tolist())]
    nearest.sort()
    chosen: dict[int, list[int]] = {}
    for _, _, p, i in nearest[:limit]:
        chosen.setdefault(p, []).append(i)
    # LanceDB parts: their rows, as before; memory parts: each track's best, then the rule
    in_lance = [parts[p].hits.take(rows) for p, rows in chosen.items() if parts[p].hits is not None]  # type: ignore[union-attr]
    hits = concat(in_lance)
    lance_hits: list[TrackHit] = []
    if hits is not None:
        dists = [math.sqrt(max(0.0, float(d))) for d in hits.column("_distance").to_pylist()]
        lance_hits = best_per_track(arrow_to_rows(hits, FaceRow), dists, probe, threshold, rule)
    by_track: dict[str, tuple[int, MemoryTrack]] = {}  # track -> (part, its best face there)
    for p, rows in chosen.items():
        part = parts[p]
        if part.shard is None or part.positions is None or part.distances is None:
            continue
        index = np.asarray(rows, dtype=np.int64)
        near = (part.positions[index], part.distances[index])
        for track in best_tracks(part.shard, *near, probe, threshold, rule):
            current = by_track.get(track.track_id)
            if current is None or track.best < current[1].best:
                by_track[track.track_id] = (p, track)
    for hit in lance_hits:  # a track on both sides (across midnight into the open day)
        current = by_track.get(hit.face.track_id)
        if current is None or current[1].best > hit.best:
            by_track.pop(hit.face.track_id, None)
    lance_hits = [h for h in lance_hits if h.face.track_id not in by_track]
    # rows only for the memory hits that make the top_k (ties at the cut included)
    decided = sorted([h.decided for h in lance_hits] + [t.decided for _, t in by_track.values()])
    cut = decided[top_k - 1] if len(decided) >= top_k else math.inf
    wanted = [(p, t) for p, t in by_track.values() if t.decided <= cut]
    memory_hits = [TrackHit(_shard(parts[p]).face(t.position), t.best, t.decided) for p, t in wanted]
    return sorted(lance_hits + memory_hits, key=lambda hit: (hit.decided, hit.face.id))


def _shard(part: Part) -> FaceShard:
    if part.shard is None:
        raise TypeError(f"{part.name} is not in memory")
    return part.shard


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


def segment_uris(
    storage: Storage, segment_ids: set[str], listed: Sequence[str] | None = None
) -> dict[str, str]:
    """Segment id -> URI; ``listed``: the store's tables, when the caller listed them."""
    if not segment_ids:
        return {}
    if listed is not None and SegmentRow.TABLE not in listed:
        return {}
    table = storage.db.open_table(SegmentRow.TABLE) if listed is not None else segments_table(storage.db)
    rows = table.search().where(is_in("id", sorted(segment_ids))).select(["id", "uri"])
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
