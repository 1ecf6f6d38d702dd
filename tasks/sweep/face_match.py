"""Sweep stage 2 for faces: new face rows vs the active face entries (L2 distance)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from citywatch.face_rule import FaceRule
from citywatch.schemas import AlertRow, EntryKind, WatchlistRow
from citywatch.tasks.sweep.passes import alert_for, best_per_track

log = logging.getLogger(__name__)

_CHUNK = 4096  # rows per distance block (4096 x 3000 enrolment vectors x 4 B = 49 MB)


def _vectors(column: pa.ChunkedArray) -> np.ndarray:
    """A fixed-size-list embedding column as an (n, dim) float32 array, without Python lists."""
    array = column.combine_chunks()
    dim = array.type.list_size
    return array.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)


def match_faces(
    rows: pa.Table, entries: Sequence[WatchlistRow], now: dt.datetime, rule: FaceRule
) -> list[AlertRow]:
    """Face rows within an entry's threshold (min distance over its photos); one per track.

    The face rule of search applies (citywatch/face_rule.py): faces under
    ``rule.min_px`` never alert, and with the template rule the row's track template
    must be within the threshold too (the alert's score is the larger distance).
    Blocks of rows against every enrolment vector at once (one matrix product); only
    the few (row, vector) pairs under their entry's threshold leave numpy.
    """
    faces = [e for e in entries if e.kind == EntryKind.FACE and e.embeddings]
    if not rows.num_rows or not faces:
        return []
    models = np.asarray(rows.column("model").to_pylist(), dtype=object)
    big_enough = np.asarray(rows.column("face_px").to_numpy(zero_copy_only=False), np.float64) >= rule.min_px
    found: list[AlertRow] = []
    for model in sorted({e.model for e in faces}):
        group = [e for e in faces if e.model == model]
        picked = np.nonzero((models == model) & big_enough)[0]
        if not len(picked):
            continue
        subset = rows.take(pa.array(picked))
        vectors = _vectors(subset.column("embedding"))
        template_column = subset.column("template")  # read as vectors only for rows that match
        bank = np.asarray([v for e in group for v in e.embeddings], dtype=np.float32)
        if bank.shape[1] != vectors.shape[1]:
            log.warning(
                "watchlist entries of model %s have dim %d, faces have %d: skipped",
                model,
                bank.shape[1],
                vectors.shape[1],
            )
            continue
        owner = np.repeat(np.arange(len(group)), [len(e.embeddings) for e in group])
        limit = (np.asarray([e.threshold for e in group], dtype=np.float32) ** 2)[owner]
        bank_sq = (bank**2).sum(axis=1)
        records = None
        for lo in range(0, len(vectors), _CHUNK):
            block = vectors[lo : lo + _CHUNK]
            d2 = (block**2).sum(axis=1)[:, None] + bank_sq[None, :] - 2.0 * (block @ bank.T)
            hit_rows, hit_cols = np.nonzero(d2 < limit[None, :])
            if not len(hit_rows):
                continue
            if records is None:
                records = subset.drop_columns(["embedding", "template"]).to_pylist()
            best: dict[tuple[int, int], float] = {}
            for r, c in zip(hit_rows.tolist(), hit_cols.tolist(), strict=True):
                key = (r, int(owner[c]))
                best[key] = min(best.get(key, np.inf), float(d2[r, c]))
            matched = sorted({r for r, _ in best})
            picked_templates = _vectors(template_column.take(pa.array([lo + r for r in matched])))
            hit_templates = dict(zip(matched, picked_templates, strict=True))
            for (r, e), value in best.items():
                photos = bank[owner == e]
                template = float(np.sqrt(((photos - hit_templates[r][None, :]) ** 2).sum(axis=1)).min())
                score = rule.distance(float(np.sqrt(max(0.0, value))), template)
                if score > group[e].threshold:
                    continue  # the track's template is not within the threshold
                found.append(
                    alert_for(
                        group[e],
                        records[lo + r],
                        score,
                        start="track_start",
                        end="track_end",
                        plate_text="",
                        now=now,
                    )
                )
    return best_per_track(found)
