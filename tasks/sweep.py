"""The watchlist sweep: rows written since the watermark -> matches -> alerts.

Watermark. "Newer" means *written* later, not captured later: a segment indexed late
has old capture times. LanceDB appends every write (insert, merge-insert update,
re-index) as new fragments whose ids only grow, and ``_rowaddr`` is
``fragment_id << 32 | offset``. So the rows written after a snapshot are exactly
those with ``_rowaddr >= (F + 1) << 32``, F being the largest fragment id the sweep
has read; the filter prunes whole fragments, so a sweep costs O(new rows). The
watermark (F per source table) lives in the ``sweep_state`` table and only moves
forward, after the alerts it covers are written. A compaction (``optimize``) rewrites
old rows into new fragments: the next sweep re-reads them once, which re-raises
nothing (alert ids are deterministic) but costs one full pass.

Exactly once. One alert per pass of an entry in front of a camera: matches are best
per track, tracks of one entry and camera less than ``alert_pass_gap_s`` apart are one
pass, and a pass that already has an alert raises no other. Alert id = hash(entry,
camera, the pass's first track); writes are insert-if-absent on a
table keyed by ``id`` (see citywatch.tables.open_table), so a re-run after a
crash, or two sweeps at once, cannot duplicate an alert. Deliveries are written
before their alerts, so an alert never exists without its deliveries.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from citywatch.filters import sql_string, sql_timestamp
from citywatch.governance.alerts import (
    AlertRow,
    AlertState,
    DeliveryRow,
    alert_id,
    alerts_table,
    deliveries_table,
    new_delivery,
)
from citywatch.governance.watchlist import EntryKind, WatchlistRow, active_entries
from citywatch.plates import CONFUSABLE_PAIRS, PlateQuery, match_score, normalise_plate, parse_plate_query
from citywatch.schemas import TS, FaceRow, PlateRow, arrow_to_rows, rows_to_arrow, utcnow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import has_table, insert_missing
from citywatch.tables import open_table as keyed_table
from citywatch.tasks.notify import configured_sinks

log = logging.getLogger(__name__)

FACE_COLUMNS = [
    "id",
    "segment_id",
    "camera_id",
    "ts",
    "track_id",
    "track_start",
    "track_end",
    "thumb_uri",
    "lat",
    "lon",
    "model",
    "embedding",
]
PLATE_COLUMNS = [
    "id",
    "segment_id",
    "camera_id",
    "ts",
    "first_ts",
    "last_ts",
    "text",
    "track_id",
    "thumb_uri",
    "lat",
    "lon",
    "model",
]
SOURCES = {FaceRow.TABLE: FACE_COLUMNS, PlateRow.TABLE: PLATE_COLUMNS}
_CHUNK = 4096  # rows per distance block (4096 x 3000 enrolment vectors x 4 B = 49 MB)


# --- watermark ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SweepStateRow:
    """How far the sweep has read one source table (faces, plates)."""

    id: str  # source table name
    after_fragment: int  # rows in fragments with a larger id are new; -1: nothing read
    table_version: int  # the source version last read (for operators)
    rows_seen: int  # rows read so far (cumulative)
    updated_at: dt.datetime

    TABLE: ClassVar[str] = "sweep_state"
    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("after_fragment", pa.int64()),
            pa.field("table_version", pa.int64()),
            pa.field("rows_seen", pa.int64()),
            pa.field("updated_at", TS),
        ]
    )


def load_watermarks(storage: Storage) -> dict[str, SweepStateRow]:
    if not has_table(storage.db, SweepStateRow.TABLE):
        return {}
    table = keyed_table(storage.db, SweepStateRow.TABLE, SweepStateRow.SCHEMA)
    return {row.id: row for row in arrow_to_rows(table.to_arrow(), SweepStateRow)}


def advance_watermarks(storage: Storage, marks: Sequence[SweepStateRow]) -> None:
    """Save watermarks; a mark never moves backwards (a slower concurrent sweep loses)."""
    if not marks:
        return
    table = keyed_table(storage.db, SweepStateRow.TABLE, SweepStateRow.SCHEMA)
    (
        table.merge_insert("id")
        .when_matched_update_all(where="target.after_fragment <= source.after_fragment")
        .when_not_matched_insert_all()
        .execute(rows_to_arrow(list(marks), SweepStateRow.SCHEMA))
    )


def read_new_rows(
    storage: Storage, source: str, mark: SweepStateRow | None, now: dt.datetime
) -> tuple[pa.Table, SweepStateRow]:
    """Rows of ``source`` written after ``mark`` (one snapshot) and the mark covering them."""
    after = mark.after_fragment if mark else -1
    seen = mark.rows_seen if mark else 0
    if not has_table(storage.db, source):
        empty = pa.table({name: pa.array([], pa.null()) for name in SOURCES[source]})
        return empty, SweepStateRow(source, after, mark.table_version if mark else 0, seen, now)
    table = storage.db.open_table(source)  # pinned to the version current now
    query = table.search().select([*SOURCES[source], "_rowaddr"])
    if after >= 0:
        query = query.where(f"_rowaddr >= {(after + 1) << 32}")
    rows = query.limit(None).to_arrow()
    if rows.num_rows:
        addresses = rows.column("_rowaddr").to_numpy().astype(np.uint64)
        after = max(after, int((addresses >> np.uint64(32)).max()))
    return (
        rows.drop_columns(["_rowaddr"]),
        SweepStateRow(source, after, int(table.version), seen + rows.num_rows, now),
    )


# --- matching ---------------------------------------------------------------------------


def _alert(
    entry: WatchlistRow, row: dict, score: float, *, start: str, end: str, plate_text: str, now: dt.datetime
) -> AlertRow:
    return AlertRow(
        id=alert_id(entry.id, row["camera_id"], row["track_id"]),
        watchlist_id=entry.id,
        kind=entry.kind,
        label=entry.label,
        reason=entry.reason,
        case_id=entry.case_id,
        sighting_id=row["id"],
        segment_id=row["segment_id"],
        camera_id=row["camera_id"],
        track_id=row["track_id"],
        ts=row["ts"],
        track_start=row[start],
        track_end=row[end],
        score=round(float(score), 6),
        threshold=entry.threshold,
        thumb_uri=row["thumb_uri"],
        lat=row["lat"],
        lon=row["lon"],
        plate_text=plate_text,
        model=row["model"],
        state=AlertState.NEW.value,
        reviewed_by="",
        reviewed_at=None,
        note="",
        created_at=now,
    )


def _vectors(column: pa.ChunkedArray) -> np.ndarray:
    """A fixed-size-list embedding column as an (n, dim) float32 array, without Python lists."""
    array = column.combine_chunks()
    dim = array.type.list_size
    return array.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)


def match_faces(rows: pa.Table, entries: Sequence[WatchlistRow], now: dt.datetime) -> list[AlertRow]:
    """Face rows within an entry's threshold (min distance over its photos); one per track.

    Blocks of rows against every enrolment vector at once (one matrix product); only
    the few (row, vector) pairs under their entry's threshold leave numpy.
    """
    faces = [e for e in entries if e.kind == EntryKind.FACE and e.embeddings]
    if not rows.num_rows or not faces:
        return []
    models = np.asarray(rows.column("model").to_pylist(), dtype=object)
    found: list[AlertRow] = []
    for model in sorted({e.model for e in faces}):
        group = [e for e in faces if e.model == model]
        picked = np.nonzero(models == model)[0]
        if not len(picked):
            continue
        subset = rows.take(pa.array(picked))
        vectors = _vectors(subset.column("embedding"))
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
                records = subset.drop_columns(["embedding"]).to_pylist()
            best: dict[tuple[int, int], float] = {}
            for r, c in zip(hit_rows.tolist(), hit_cols.tolist(), strict=True):
                key = (r, int(owner[c]))
                best[key] = min(best.get(key, np.inf), float(d2[r, c]))
            for (r, e), value in best.items():
                found.append(
                    _alert(
                        group[e],
                        records[lo + r],
                        float(np.sqrt(max(0.0, value))),
                        start="track_start",
                        end="track_end",
                        plate_text="",
                        now=now,
                    )
                )
    return best_per_track(found)


def _confusable_classes() -> dict[str, str]:
    """Character -> representative of its class under the confusable pairs (union-find)."""
    parent: dict[str, str] = {}

    def find(ch: str) -> str:
        while parent.setdefault(ch, ch) != ch:
            ch = parent[ch]
        return ch

    for a, b in CONFUSABLE_PAIRS:
        parent[find(a)] = find(b)
    return {ch: find(ch) for ch in parent}


_CANON = _confusable_classes()  # O/0/D, I/1, B/8, S/5, Z/2, G/6


def canonical_plate(text: str) -> str:
    """Each character replaced by its confusable class (equal under swaps only)."""
    return "".join(_CANON.get(ch, ch) for ch in text)


def _near_pattern(query: PlateQuery) -> str:
    """Regex over canonical text that every read within distance < 1.0 of ``query`` fits."""
    parts = []
    for ch in query.text:
        parts.append(".*" if ch == "*" else "." if ch == "?" else re.escape(_CANON.get(ch, ch)))
    return "".join(parts)


@dataclass
class PlateMatcher:
    """Plate entries indexed once per sweep, so 10,000 reads x 1,000 entries stays cheap.

    Under a distance of 1.0 only confusable substitutions fit (any other edit costs
    1.0), so a read can only match an entry whose confusable-class form it shares:
    exact plates are a dict lookup, patterns one combined regex that rejects most
    reads at once. Entries with a looser threshold are scanned (with a length bound).
    """

    by_class: dict[str, list[tuple[WatchlistRow, PlateQuery]]] = field(default_factory=dict)
    patterns: list[tuple[WatchlistRow, PlateQuery, re.Pattern[str]]] = field(default_factory=list)
    any_pattern: re.Pattern[str] | None = None
    scanned: list[tuple[WatchlistRow, PlateQuery]] = field(default_factory=list)

    @classmethod
    def build(cls, entries: Sequence[WatchlistRow]) -> PlateMatcher:
        matcher = cls()
        for entry in entries:
            if entry.kind != EntryKind.PLATE:
                continue
            query = parse_plate_query(entry.plate_query, max_edits=entry.threshold)
            if entry.threshold >= 1.0:
                matcher.scanned.append((entry, query))
            elif query.is_pattern:
                matcher.patterns.append((entry, query, re.compile(_near_pattern(query))))
            else:
                matcher.by_class.setdefault(canonical_plate(query.text), []).append((entry, query))
        if matcher.patterns:
            matcher.any_pattern = re.compile("|".join(f"(?:{p.pattern})" for _, _, p in matcher.patterns))
        return matcher

    def __bool__(self) -> bool:
        return bool(self.by_class or self.patterns or self.scanned)

    def matches(self, text: str) -> list[tuple[WatchlistRow, float]]:
        plate = normalise_plate(text)
        canon = canonical_plate(plate)
        candidates = list(self.by_class.get(canon, ()))
        if self.any_pattern is not None and self.any_pattern.fullmatch(canon):
            candidates += [(e, q) for e, q, p in self.patterns if p.fullmatch(canon)]
        candidates += [
            (e, q) for e, q in self.scanned if q.is_pattern or abs(len(q.text) - len(plate)) <= e.threshold
        ]
        out = []
        for entry, query in candidates:
            score = match_score(query, plate)
            if score is not None:
                out.append((entry, score))
        return out


def match_plates(rows: pa.Table, entries: Sequence[WatchlistRow], now: dt.datetime) -> list[AlertRow]:
    matcher = PlateMatcher.build(entries)
    if not rows.num_rows or not matcher:
        return []
    found = [
        _alert(entry, row, score, start="first_ts", end="last_ts", plate_text=row["text"], now=now)
        for row in rows.to_pylist()
        for entry, score in matcher.matches(row["text"] or "")
    ]
    return best_per_track(found)


def best_per_track(alerts: Sequence[AlertRow]) -> list[AlertRow]:
    """One alert per (entry, camera, track): the lowest score, then the earliest sighting."""
    best: dict[str, AlertRow] = {}
    for alert in alerts:
        current = best.get(alert.id)
        if current is None or (alert.score, alert.ts) < (current.score, current.ts):
            best[alert.id] = alert
    return sorted(best.values(), key=lambda a: (a.ts, a.id))


def group_passes(alerts: Sequence[AlertRow], gap: dt.timedelta) -> list[AlertRow]:
    """Fold tracks of one entry on one camera that are less than ``gap`` apart into one pass.

    A tracker may split one walk past a camera (an occlusion, a segment boundary): that
    is still one pass and one alert. The pass keeps the id of its earliest track (so a
    re-run groups the same way), the best sighting of all its tracks, and their span.
    """
    ordered = sorted(alerts, key=lambda a: (a.watchlist_id, a.camera_id, a.track_start, a.track_id))
    out: list[AlertRow] = []
    for alert in ordered:
        last = out[-1] if out else None
        if (
            last is not None
            and (last.watchlist_id, last.camera_id) == (alert.watchlist_id, alert.camera_id)
            and alert.track_start <= last.track_end + gap
        ):
            best = alert if alert.score < last.score else last
            out[-1] = replace(
                best,
                id=last.id,
                track_id=last.track_id,
                track_start=last.track_start,
                track_end=max(last.track_end, alert.track_end),
            )
        else:
            out.append(alert)
    return sorted(out, key=lambda a: (a.ts, a.id))


def drop_known_passes(storage: Storage, alerts: Sequence[AlertRow], gap: dt.timedelta) -> list[AlertRow]:
    """Drop alerts whose pass already has an alert (another track of it, swept earlier).

    An alert with the *same* id is kept: writing it again is a no-op, and it keeps the
    re-run after a crash re-creating the deliveries it may lack.
    """
    if not alerts or not has_table(storage.db, AlertRow.TABLE):
        return list(alerts)
    entries = ", ".join(sql_string(e) for e in sorted({a.watchlist_id for a in alerts}))
    cameras = ", ".join(sql_string(c) for c in sorted({a.camera_id for a in alerts}))
    start = min(a.track_start for a in alerts) - gap
    end = max(a.track_end for a in alerts) + gap
    query = (
        alerts_table(storage.db)
        .search()
        .where(
            f"watchlist_id IN ({entries}) AND camera_id IN ({cameras}) "
            f"AND track_end >= {sql_timestamp(start)} AND track_start <= {sql_timestamp(end)}"
        )
    )
    known = query.select(["id", "watchlist_id", "camera_id", "track_start", "track_end"])
    existing = known.limit(None).to_arrow().to_pylist()
    return [
        a
        for a in alerts
        if not any(
            k["id"] != a.id
            and (k["watchlist_id"], k["camera_id"]) == (a.watchlist_id, a.camera_id)
            and k["track_start"] - gap <= a.track_end
            and a.track_start <= k["track_end"] + gap
            for k in existing
        )
    ]


# --- one sweep --------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepPlan:
    """What one sweep found (nothing written yet)."""

    alerts: list[AlertRow]
    deliveries: list[DeliveryRow]
    watermarks: list[SweepStateRow]
    faces_read: int
    plates_read: int
    entries_active: int


@dataclass(frozen=True)
class SweepResult:
    faces_read: int
    plates_read: int
    entries_active: int
    matched: int  # alerts the new rows support (new or already there)
    alerts_new: int
    alert_ids: list[str]
    wall_s: float


def plan_sweep(storage: Storage, settings: Settings, now: dt.datetime) -> SweepPlan:
    """Read rows past the watermarks and match them against the active watchlist."""
    marks = load_watermarks(storage)
    entries = active_entries(storage, now)
    faces, face_mark = read_new_rows(storage, FaceRow.TABLE, marks.get(FaceRow.TABLE), now)
    plates, plate_mark = read_new_rows(storage, PlateRow.TABLE, marks.get(PlateRow.TABLE), now)
    gap = dt.timedelta(seconds=settings.alert_pass_gap_s)
    found = group_passes(match_faces(faces, entries, now) + match_plates(plates, entries, now), gap)
    alerts = drop_known_passes(storage, found, gap)
    sinks = configured_sinks(storage)
    deliveries = [new_delivery(a.id, sink, now) for a in alerts for sink in sinks]
    return SweepPlan(
        alerts, deliveries, [face_mark, plate_mark], faces.num_rows, plates.num_rows, len(entries)
    )


def commit_alerts(storage: Storage, plan: SweepPlan) -> int:
    """Write deliveries, then alerts, each only where absent; returns the new alert count."""
    if not plan.alerts:
        return 0
    insert_missing(deliveries_table(storage.db), rows_to_arrow(plan.deliveries, DeliveryRow.SCHEMA))
    return insert_missing(alerts_table(storage.db), rows_to_arrow(plan.alerts, AlertRow.SCHEMA))


def sweep_once(storage: Storage, settings: Settings, now: dt.datetime | None = None) -> SweepResult:
    """Plan -> write alerts -> advance the watermark (only after the alerts are written)."""
    started = time.perf_counter()
    plan = plan_sweep(storage, settings, now or utcnow())
    created = commit_alerts(storage, plan)
    advance_watermarks(storage, plan.watermarks)
    return SweepResult(
        plan.faces_read,
        plan.plates_read,
        plan.entries_active,
        len(plan.alerts),
        created,
        [a.id for a in plan.alerts],
        time.perf_counter() - started,
    )


@task(name="match-and-alert", retries=2, retry_delay_seconds=[1, 3], cache_policy=NO_CACHE)
def sweep_task(settings: Settings) -> SweepResult:
    """Task shim: one sweep of the storage root ``settings`` names."""
    return sweep_once(Storage(settings), settings)
