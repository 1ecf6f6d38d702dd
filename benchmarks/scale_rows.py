"""Synthetic face rows at city scale for benchmarks/search_scale.py (seeded, in chunks).

The shape follows what indexing writes (tasks/index/segment.py): tracks of 1-3 embedded
faces, each row carrying its track's template (quality-weighted mean of the track's
faces, scaled back to their mean length, as tasks/index/faces.py:track_template).
Embeddings imitate dlib's 128-d descriptors: a shared mean direction (real descriptors
are far from centred; length ~``NORM``), people as cluster centres spread with an
anisotropic spectrum so that two people are ~0.8-1.0 apart, and a person's faces
~0.35-0.45 apart (models/dlib_embedder.py measured same person 0.19-0.45, different
people 0.65-0.98 on real photos).

:func:`exact_hits` is the ground truth: the product's match rule (citywatch/face_rule.py)
applied to every row of a window by brute force, no vector index and no candidate limit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from citywatch.schemas import FaceRow

DIM = 128
NORM = 1.44  # median length of dlib descriptors of the sample probe photos (1.36-1.57)
CENTRE_SIGMA = 0.053  # per-dimension spread of people: two centres ~16 x 0.053 = 0.85 apart
FACE_SIGMA = 0.025  # per-dimension spread of one person's faces: two faces ~0.4 apart
DISTRICTS = 20
FACES_PER_TRACK = (1, 2, 3)
TRACK_SIZE_P = (0.25, 0.35, 0.40)  # mean 2.15 faces per track
ROWS_PER_PERSON = 40  # people = rows / 40 (a person is seen ~19 times in 30 days)


def district_of(camera: int, cameras: int) -> str:
    return f"d{camera * DISTRICTS // cameras:02d}"


def camera_id(camera: int) -> str:
    return f"cam-{camera:05d}"


@dataclass
class Plan:
    """Everything but the face rows themselves: people, tracks (sorted by time)."""

    rows: int
    cameras: int
    first_day: dt.date
    days: int
    seed: int
    mean: np.ndarray  # (DIM,)
    spectrum: np.ndarray  # (DIM,) per-dimension scale of people's spread
    centre_table: np.ndarray  # (people, DIM) float32
    track_person: np.ndarray  # int32
    track_camera: np.ndarray  # int32
    track_ts: np.ndarray  # int64 us since epoch, sorted
    track_size: np.ndarray  # int8
    track_px: np.ndarray  # float32
    track_row: np.ndarray  # int64, first row of each track

    @property
    def people(self) -> int:
        return max(100, self.rows // ROWS_PER_PERSON)

    def centres(self, people: np.ndarray) -> np.ndarray:
        return self.centre_table[people]

    def day_of_track(self) -> np.ndarray:
        start = _us(dt.datetime.combine(self.first_day, dt.time(), dt.UTC))
        return ((self.track_ts - start) // 86_400_000_000).astype(np.int32)


def _us(ts: dt.datetime) -> int:
    return int(ts.timestamp()) * 1_000_000 + ts.microsecond


def make_plan(rows: int, cameras: int, last_day: dt.date, days: int, seed: int) -> Plan:
    rng = np.random.default_rng(seed)
    mean = rng.standard_normal(DIM)
    spectrum = np.exp(-np.arange(DIM) / 96.0)  # per-dimension spread varies ~4x, as in dlib
    spectrum = rng.permutation(spectrum / np.sqrt((spectrum**2).mean()))
    # the mean sets the length: |mean|^2 + spread^2 ~= NORM^2
    spread2 = DIM * (CENTRE_SIGMA**2 + FACE_SIGMA**2)
    mean *= np.sqrt(max(NORM**2 - spread2, 0.1)) / np.linalg.norm(mean)
    sizes = rng.choice(FACES_PER_TRACK, size=rows // 2 + 10, p=TRACK_SIZE_P).astype(np.int8)
    ends = np.cumsum(sizes, dtype=np.int64)
    tracks = int(np.searchsorted(ends, rows)) + 1
    sizes = sizes[:tracks]
    sizes[-1] -= ends[tracks - 1] - rows  # the last track fills exactly up to ``rows``
    people = max(100, rows // ROWS_PER_PERSON)
    # some people pass cameras every day, most a few times: lognormal activity
    activity = rng.lognormal(0.0, 1.0, people)
    person = np.searchsorted(np.cumsum(activity / activity.sum()), rng.random(tracks)).astype(np.int32)
    person = np.minimum(person, people - 1)
    # most of a person's tracks are in their home district
    per_district = max(1, cameras // DISTRICTS)
    home = person % DISTRICTS
    local = rng.random(tracks) < 0.8
    camera = np.where(
        local,
        np.minimum(home * cameras // DISTRICTS + rng.integers(0, per_district, tracks), cameras - 1),
        rng.integers(0, cameras, tracks),
    ).astype(np.int32)
    first_day = last_day - dt.timedelta(days=days - 1)
    start = _us(dt.datetime.combine(first_day, dt.time(), dt.UTC))
    ts = np.sort(start + rng.integers(0, days * 86_400_000_000 - 10_000_000, tracks))
    # a track's faces (0.4 s apart) stay on its day: its rows go to that day's shard
    day_us = 86_400_000_000
    ts = np.minimum(ts, start + ((ts - start) // day_us + 1) * day_us - 1_000_000)
    px = np.exp(rng.uniform(np.log(30), np.log(150), tracks)).astype(np.float32)
    centre_table = np.empty((people, DIM), np.float32)
    for p0 in range(0, people, 100_000):
        g = rng.standard_normal((min(100_000, people - p0), DIM))
        centre_table[p0 : p0 + len(g)] = mean + CENTRE_SIGMA * spectrum * g
    first_row = np.concatenate([[0], np.cumsum(sizes[:-1], dtype=np.int64)])
    return Plan(
        rows, cameras, first_day, days, seed, mean.astype(np.float32), spectrum.astype(np.float32),
        centre_table, person, camera, ts, sizes, px, first_row,
    )  # fmt: skip


@dataclass
class Chunk:
    """Face rows of tracks ``[t0, t1)`` as numpy columns (+ the Arrow table)."""

    embedding: np.ndarray
    template: np.ndarray
    track: np.ndarray  # global track index per row
    camera: np.ndarray
    face_px: np.ndarray
    day: np.ndarray
    table: pa.Table


def chunks(plan: Plan, max_rows: int) -> Iterator[Chunk]:
    """The rows in time order, at most ``max_rows`` a chunk, never across a UTC day."""
    day = plan.day_of_track()
    t = 0
    while t < len(plan.track_size):
        end_of_day = int(np.searchsorted(day, day[t], side="right"))
        rows_after = np.cumsum(plan.track_size[t:end_of_day], dtype=np.int64)
        t1 = t + max(1, int(np.searchsorted(rows_after, max_rows, side="right")))
        yield make_chunk(plan, t, min(t1, end_of_day))
        t = min(t1, end_of_day)


def make_chunk(plan: Plan, t0: int, t1: int) -> Chunk:
    rng = np.random.default_rng((plan.seed, 7, t0))
    sizes = plan.track_size[t0:t1].astype(np.int64)
    track = np.repeat(np.arange(t0, t1), sizes)
    n = len(track)
    persons, inverse = np.unique(plan.track_person[t0:t1], return_inverse=True)
    centre = plan.centres(persons)[np.repeat(inverse, sizes)]
    px = np.clip(plan.track_px[track] * rng.uniform(0.9, 1.1, n), 24, None).astype(np.float32)
    # smaller faces are noisier
    noise = FACE_SIGMA * (0.8 + 0.4 * np.clip(60.0 / px, 0.4, 2.0))[:, None]
    emb = (centre + noise * rng.standard_normal((n, DIM))).astype(np.float32)
    quality = rng.uniform(0.2, 1.0, n).astype(np.float32)
    template = track_templates(emb, quality, sizes)
    within = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)  # face index in its track
    ts = plan.track_ts[track] + within * 400_000
    cam = plan.track_camera[track]
    cam_ids = np.char.add("cam-", np.char.zfill(cam.astype(str), 5))
    stamp = (plan.track_ts[track] // 300_000_000) * 300  # 5-minute segments
    seg = np.char.add(np.char.add(cam_ids, "/"), stamp.astype(str))
    tid = np.char.add(np.char.add(seg, "#t"), track.astype(str))
    ids = np.char.add(np.char.add(tid, "@"), within.astype(str))
    x1 = rng.uniform(0, 1100, n).astype(np.float32)
    y1 = rng.uniform(0, 500, n).astype(np.float32)
    bbox = np.stack([x1, y1, x1 + px, y1 + px * 1.2], axis=1).reshape(-1)
    ts_arr = pa.array(ts, pa.timestamp("us", tz="UTC"))
    start_arr = pa.array(plan.track_ts[track], pa.timestamp("us", tz="UTC"))
    end_arr = pa.array(
        plan.track_ts[track] + (np.repeat(sizes, sizes) - 1) * 400_000, pa.timestamp("us", tz="UTC")
    )
    columns = {
        "id": pa.array(ids),
        "segment_id": pa.array(seg),
        "camera_id": pa.array(cam_ids),
        "ts": ts_arr,
        "bbox": pa.FixedSizeListArray.from_arrays(pa.array(bbox), 4),
        "det_score": pa.array(rng.uniform(0.6, 1.0, n).astype(np.float32)),
        "quality": pa.array(quality),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), DIM),
        "track_id": pa.array(tid),
        "track_start": start_arr,
        "track_end": end_arr,
        "thumb_uri": pa.array(np.char.add("s3://citywatch/thumbs/", ids)),
        "lat": pa.array(22.2 + 0.3 * (cam / max(plan.cameras, 1))),
        "lon": pa.array(114.0 + 0.3 * ((cam * 7919) % plan.cameras / max(plan.cameras, 1))),
        "model": pa.array(np.full(n, "dlib-resnet-v1")),
        "template": pa.FixedSizeListArray.from_arrays(pa.array(template.reshape(-1)), DIM),
        "face_px": pa.array(px),
    }
    schema = FaceRow.schema(DIM)
    table = pa.table([columns[f.name].cast(f.type) for f in schema], schema=schema)
    day = plan.day_of_track()[track]
    return Chunk(emb, template, track, cam, px, day, table)


def track_templates(emb: np.ndarray, quality: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """tasks/index/faces.py:track_template per track, vectorised (tracks are contiguous)."""
    starts = np.cumsum(sizes) - sizes
    weights = np.maximum(quality, 1e-3)
    wsum = np.add.reduceat(weights, starts)
    mean = np.add.reduceat(emb * weights[:, None], starts) / wsum[:, None]
    target = np.add.reduceat(weights * np.linalg.norm(emb, axis=1), starts) / wsum
    mean *= (target / np.linalg.norm(mean, axis=1))[:, None]
    return np.repeat(mean, sizes, axis=0).astype(np.float32)


@dataclass
class Query:
    """One probe: a held-out face of a person seen in the window (and the camera filter)."""

    name: str  # "7d/district"
    first_day: int  # window, as day numbers of the plan
    last_day: int
    district: str | None
    person: int
    vector: np.ndarray


def pick_queries(
    plan: Plan, windows: dict[str, int], per_config: int, seed: int, min_px: float
) -> list[Query]:
    """``per_config`` probes per window x {no filter, district}: each a new face of a person
    with a matchable track in the window (and district)."""
    rng = np.random.default_rng((seed, 99))
    day = plan.day_of_track()
    district = (plan.track_camera.astype(np.int64) * DISTRICTS // plan.cameras).astype(np.int32)
    out: list[Query] = []
    for label, span in windows.items():
        first, last = plan.days - span, plan.days - 1
        for filtered in (False, True):
            where = (day >= first) & (day <= last) & (plan.track_px >= max(min_px, 50))
            name_d: str | None = None
            if filtered:
                name_d = f"d{int(rng.integers(0, DISTRICTS)):02d}"
                where &= district == int(name_d[1:])
            candidates = np.flatnonzero(where)
            for t in rng.choice(candidates, size=per_config, replace=len(candidates) < per_config):
                person = int(plan.track_person[t])
                face = plan.centres(np.array([person]))[0] + FACE_SIGMA * rng.standard_normal(DIM)
                out.append(
                    Query(f"{label}/{name_d or 'all'}", first, last, name_d, person, face.astype(np.float32))
                )
    return out


def exact_hits(
    chunk: Chunk, queries: list[Query], cameras: int, threshold: float, min_px: float, found: list[dict]
) -> None:
    """Fold ``chunk`` into each query's exact answer: ``found[i][track] = (decided, best, face)``."""
    day = int(chunk.day[0])
    district = (chunk.camera.astype(np.int64) * DISTRICTS // cameras).astype(np.int32)
    live = [i for i, q in enumerate(queries) if q.first_day <= day <= q.last_day]
    if not live:
        return
    probes = np.stack([queries[i].vector for i in live])
    d2 = (chunk.embedding**2).sum(1)[None, :] - 2 * probes @ chunk.embedding.T + (probes**2).sum(1)[:, None]
    sizes_ok = chunk.face_px >= min_px
    for k, i in enumerate(live):
        q = queries[i]
        ok = (d2[k] <= threshold**2) & sizes_ok
        if q.district is not None:
            ok &= district == int(q.district[1:])
        for r in np.flatnonzero(ok).tolist():
            best = float(np.sqrt(max(d2[k, r], 0.0)))
            track = int(chunk.track[r])
            tmpl = float(np.linalg.norm(q.vector - chunk.template[r]))
            decided = max(best, tmpl)
            current = found[i].get(track)
            if current is None or best < current[1]:
                found[i][track] = (decided, best, r)


def exact_top(found: dict, threshold: float, k: int) -> list[int]:
    """Track indexes of the exact top ``k`` (matching tracks by decided distance)."""
    hits = sorted((decided, track) for track, (decided, _, _) in found.items() if decided <= threshold)
    return [track for _, track in hits[:k]]
