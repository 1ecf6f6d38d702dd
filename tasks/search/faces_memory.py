"""Face search over closed day shards held in memory (tasks/search/memory_tier.py).

A loaded shard keeps what ranking and filtering need in numpy: embeddings (float32, with
their squared norms), camera, time, face size, track and the track's template; and the
rest of each row (ids, box, URIs, times of the track) in Arrow, so that a search's hits
are answered without another read of the store (a ``take`` by row id cost ~15-20 S3
requests per shard: one per column). Search is exact (brute force, one matrix-vector
product per shard), so it returns what an exact LanceDB search would.

Only the service process turns it on (``search.memory_tier_mb``): it is long-running
and answers many searches; a one-shot CLI search would spend more loading shards than
searching them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from citywatch.face_rule import FaceRule
from citywatch.schemas import FaceRow
from citywatch.storage import Storage
from citywatch.tables import table_names
from citywatch.tasks.search.memory_tier import ShardTier

if TYPE_CHECKING:
    from lancedb.table import Table

IN_NUMPY = ("embedding", "template", "camera_id", "ts", "track_id", "face_px")
# the rest of a row, as a sighting needs it (kept in Arrow, taken by position)
IN_ARROW = [f.name for f in dataclasses.fields(FaceRow) if f.name not in IN_NUMPY]


@dataclass(frozen=True, slots=True)
class FaceShard:
    """One day shard's search columns, row-aligned (row i of each array is one face)."""

    embeddings: np.ndarray  # (n, dim) float32
    norms: np.ndarray  # (n,) float32, squared L2 norm of each embedding
    camera_codes: np.ndarray  # (n,) int32 into ``cameras``
    cameras: tuple[str, ...]
    ts_us: np.ndarray  # (n,) int64, microseconds since the epoch (UTC)
    face_px: np.ndarray  # (n,) float32
    track_codes: np.ndarray  # (n,) int32 into ``track_ids``
    track_ids: np.ndarray  # (tracks,) object (str)
    template_codes: np.ndarray  # (n,) int32 into ``templates``
    templates: np.ndarray  # (tracks or n, dim) float32
    rest: pa.Table  # the IN_ARROW columns, row-aligned
    first_us: int  # the earliest and latest ts (a window covering both needs no time mask)
    last_us: int

    @property
    def nbytes(self) -> int:
        arrays = (self.embeddings, self.norms, self.camera_codes, self.ts_us, self.face_px)
        strings = sum(len(t) + 49 for t in self.track_ids)  # a small str object
        extra = 0 if self.template_codes is self.track_codes else self.template_codes.nbytes
        return (
            sum(a.nbytes for a in arrays)
            + self.track_codes.nbytes
            + self.track_ids.nbytes
            + strings
            + extra
            + self.templates.nbytes
            + self.rest.nbytes
        )

    def __len__(self) -> int:
        return len(self.ts_us)

    def face(self, pos: int) -> FaceRow:
        """Row ``pos`` as the ``FaceRow`` LanceDB holds."""
        record = self.rest.slice(pos, 1).to_pylist()[0]
        return FaceRow(
            **{**record, "bbox": tuple(record["bbox"])},
            camera_id=self.cameras[self.camera_codes[pos]],
            ts=dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(self.ts_us[pos])),
            track_id=str(self.track_ids[self.track_codes[pos]]),
            face_px=float(self.face_px[pos]),
            embedding=self.embeddings[pos],
            template=self.templates[self.template_codes[pos]],
        )


def _matrix(column: pa.ChunkedArray | pa.Array, rows: int) -> np.ndarray:
    flat = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    values = flat.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return values.reshape(rows, -1) if rows else values.reshape(0, 0)


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    encoded = pc.dictionary_encode(column.combine_chunks())
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    return codes, [str(v) for v in encoded.dictionary.to_pylist()]


def load_face_shard(table: Table) -> FaceShard:
    """A face day shard's search columns (``table`` pinned at the version to hold)."""
    data = table.search().select([*IN_NUMPY, *IN_ARROW]).limit(None).to_arrow()
    rows = data.num_rows
    embeddings = np.ascontiguousarray(_matrix(data["embedding"], rows))
    camera_codes, cameras = _codes(data["camera_id"])
    track_codes, track_list = _codes(data["track_id"])
    ts = pc.cast(pc.cast(data["ts"], pa.timestamp("us", tz="UTC")), pa.int64())
    face_px = data["face_px"].to_numpy().astype(np.float32)
    missing = ~np.isfinite(face_px)
    if missing.any():  # rows written before face_px was a column: from the box, as FaceRow does
        boxes = _matrix(data["bbox"], rows)
        face_px[missing] = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])[missing]
    ts_us = ts.to_numpy().astype(np.int64)
    templates = _matrix(data["template"], rows)
    first = np.zeros(len(track_list), dtype=np.int64)
    first[track_codes[::-1]] = np.arange(rows - 1, -1, -1)  # each track's first row
    per_track = np.ascontiguousarray(templates[first]) if rows else templates
    if rows and np.array_equal(per_track[track_codes], templates):
        template_codes, kept = track_codes, per_track  # one template per track (the rule of the index)
    else:
        template_codes, kept = np.arange(rows, dtype=np.int32), np.ascontiguousarray(templates)
    return FaceShard(
        embeddings=embeddings,
        norms=np.einsum("ij,ij->i", embeddings, embeddings).astype(np.float32),
        camera_codes=camera_codes,
        cameras=tuple(cameras),
        ts_us=ts_us,
        face_px=face_px,
        track_codes=track_codes,
        track_ids=np.array(track_list, dtype=object),
        template_codes=template_codes,
        templates=kept,
        rest=_compact(data.select(IN_ARROW)),
        first_us=int(ts_us.min()) if rows else 0,
        last_us=int(ts_us.max()) if rows else 0,
    )


def _compact(rest: pa.Table) -> pa.Table:
    """``rest`` in one chunk, its repetitive text (model) dictionary-encoded."""
    rest = rest.combine_chunks()
    if "model" in rest.column_names:
        i = rest.column_names.index("model")
        rest = rest.set_column(i, "model", pc.dictionary_encode(rest["model"]))
    return rest


@dataclass(frozen=True, slots=True)
class Allowed:
    """What a search's filters allow, in a shard's terms."""

    camera_ids: frozenset[str]  # empty = all
    since_us: int | None
    until_us: int | None


def allowed_rows(shard: FaceShard, allowed: Allowed) -> np.ndarray | None:
    """A mask of the rows the filters allow (None = every row)."""
    mask: np.ndarray | None = None
    if allowed.camera_ids:
        wanted = np.fromiter((cid in allowed.camera_ids for cid in shard.cameras), bool, len(shard.cameras))
        mask = wanted[shard.camera_codes]  # a lookup per row (np.isin sorts: ~10x slower)
    if allowed.since_us is not None and allowed.since_us > shard.first_us:
        after = shard.ts_us >= allowed.since_us
        mask = after if mask is None else mask & after
    if allowed.until_us is not None and allowed.until_us < shard.last_us:
        before = shard.ts_us <= allowed.until_us
        mask = before if mask is None else mask & before
    return mask


def _dot(matrix: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``matrix @ q`` through OpenBLAS and its threads: 6 ms for a 333k-row shard on an idle
    2-core machine, where ``np.einsum`` (one thread, no BLAS) takes 12 ms; on a machine
    whose cores are busy with other work the BLAS threads can be 2-15x slower
    (docs/performance.md): give the search service its own cores."""
    return matrix @ q


def nearest_rows(
    shard: FaceShard, probe: np.ndarray, allowed: Allowed, limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """(positions, squared L2 distances) of the ``limit`` nearest allowed rows, nearest first."""
    mask = allowed_rows(shard, allowed)
    q = probe.astype(np.float32)
    count = len(shard) if mask is None else int(np.count_nonzero(mask))
    if not count:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    if mask is not None and count * 4 < len(shard):  # few rows: copy them out
        positions = np.flatnonzero(mask)
        approx = shard.norms[positions] - 2.0 * _dot(shard.embeddings[positions], q)
    else:  # most rows: one product over the whole matrix, the others set aside
        positions = np.arange(len(shard), dtype=np.int64)
        approx = shard.norms - 2.0 * _dot(shard.embeddings, q)
        if mask is not None:
            approx[~mask] = np.inf
    take = min(count, limit + 16)  # a margin for the rounding of the fast form
    if take < len(approx):
        part = np.argpartition(approx, take - 1)[:take]
        positions = positions[part]
    diff = shard.embeddings[positions] - q
    exact = np.einsum("ij,ij->i", diff, diff).astype(np.float32)
    order = np.lexsort((positions, exact))[:limit]
    return positions[order], exact[order]


@dataclass(frozen=True, slots=True)
class MemoryTrack:
    """A track's nearest matchable face in a memory shard and its rule distance."""

    track_id: str
    position: int  # in the shard's arrays
    best: float
    decided: float


def best_tracks(
    shard: FaceShard,
    positions: np.ndarray,
    distances: np.ndarray,
    probe: np.ndarray,
    threshold: float,
    rule: FaceRule,
) -> list[MemoryTrack]:
    """As ``best_per_track`` (tasks/search/faces.py) over the given rows, nearest first."""
    best = np.sqrt(np.maximum(distances, 0.0))
    keep = (best <= threshold) & (shard.face_px[positions] >= rule.min_px)
    positions, best = positions[keep], best[keep]
    order = np.argsort(best, kind="stable")
    positions, best = positions[order], best[order]
    _, first = np.unique(shard.track_codes[positions], return_index=True)
    positions, best = positions[first], best[first]
    templates = shard.templates[shard.template_codes[positions]]
    to_template = np.linalg.norm(templates - probe.astype(np.float32), axis=1)
    out = []
    for pos, b, t in zip(positions.tolist(), best.tolist(), to_template.tolist(), strict=True):
        decided = rule.distance(b, t)
        if decided <= threshold:
            track = str(shard.track_ids[shard.track_codes[pos]])
            out.append(MemoryTrack(track, pos, b, decided))
    return sorted(out, key=lambda m: (m.decided, m.track_id))


# --- the process's tier ---------------------------------------------------------------

_TIERS: dict[str, ShardTier[FaceShard]] = {}
_TIERS_LOCK = threading.Lock()


def start_face_tier(storage: Storage, budget_mb: int, *, preload: bool = True) -> ShardTier[FaceShard] | None:
    """Turn the tier on for ``storage`` in this process (the service does, at startup)."""
    if budget_mb <= 0:
        return None
    with _TIERS_LOCK:
        tier = _TIERS.get(storage.root)
        if tier is None:
            tier = ShardTier(lambda: storage.db, load_face_shard, budget_mb * 1024 * 1024)
            _TIERS[storage.root] = tier
    if preload:
        tier.preload([n for n in table_names(storage.db) if n.startswith(f"{FaceRow.TABLE}_d")])
    return tier


def face_tier(storage: Storage) -> ShardTier[FaceShard] | None:
    """The tier this process holds for ``storage``'s database, if it turned one on."""
    return _TIERS.get(storage.root)


def stop_face_tier(storage: Storage) -> None:
    with _TIERS_LOCK:
        tier = _TIERS.pop(storage.root, None)
    if tier is not None:
        tier.stop()
