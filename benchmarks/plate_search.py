"""Plate search at scale, through citywatch's own search path (issue 19 item 5, plates).

    python benchmarks/plate_search.py [--rows 1000000] [--plates 200000] [--days 30]
        [--cameras 1000] [--repeat 5] [--dir DIR] [--scan-repeat 1] [--before-repeat 1]
        [--older-store] [--shards]

Builds a ``plates`` table of ``--rows`` passes of ``--plates`` distinct HK-style plates
(a few plates pass often, most rarely: Zipf-like), over ``--cameras`` cameras and
``--days`` days, written in batches like index runs do (each batch's distinct day|text
into ``plate_texts`` first, as indexing does; ``--older-store``: plates only, so the
maintenance step backfills the texts, timed), and indexes it with the product's
maintenance step (``ensure_search_indexes``: BTree on ts, text, confidence,
plate_texts.day and plate_texts.id, Bitmap on camera). Then, for a 1-day, 7-day and
30-day window ending at the newest pass, times ``search_plates`` (the product path:
rank the distinct texts of the window's days, read the passes of the matching texts
with ``text IN (...)``, most confident first for a plate with very many, whole rows
only for the top 50) for the commonest plate (``AB1234``, about a quarter of all
passes), an OCR-confusable read of the second commonest (``KT8O8O``), a pattern
(``AB12*``) and a typical plate (``HK2024``, the 1001st commonest): warm p50 / p95 of
``--repeat`` runs after one cold run. "scan" is the path before plate_texts (the
window's narrow columns scanned, ``rank_plates``), "before" the one before that (every
whole row in the window read into Python and scored), run ``--scan-repeat`` /
``--before-repeat`` times on the same table; both must return the same ids.
``--memory-tier MB`` (with ``--shards``): then the same searches with the service's plate
memory tier (tasks/search/plates_memory.py) holding every closed shard, and whether they
return the same ids. ``--shards``: the passes go to day shards (``plates_dYYYYMMDD``, storage.shard_by_day)
and search fans out over the window's days (tests/test_day_shards.py shows the same
sightings as one table; scan and before are skipped).
Targets (issue 19): plate search at 10M plate rows, warm p95 <= 200 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from lancedb.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from citywatch.filters import where_clause  # noqa: E402
from citywatch.plates import match_score, parse_plate_query  # noqa: E402
from citywatch.schemas import PlateRow, arrow_to_rows  # noqa: E402
from citywatch.settings import Settings  # noqa: E402
from citywatch.shards import shard_name, split_by_day  # noqa: E402
from citywatch.storage import Storage  # noqa: E402
from citywatch.tables import open_table, plates_table  # noqa: E402
from citywatch.tasks.plate_texts import write_plate_texts  # noqa: E402
from citywatch.tasks.search.faces import SearchFilters  # noqa: E402
from citywatch.tasks.search.indexes import ensure_search_indexes  # noqa: E402
from citywatch.tasks.search.plates import rank_plates, search_plates  # noqa: E402
from citywatch.tasks.search.plates_memory import start_plate_tier, stop_plate_tier  # noqa: E402

END = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
BATCH = 200_000
LETTERS = np.array(list("ABCDEFGHJKLMNPRSTUVWXYZ"))
QUERIES = ("AB1234", "KT8O8O", "AB12*", "HK2024")
TYPICAL = 1000  # HK2024's rank: a plate that passes a few times a day


def plate_texts(n: int, rng: np.random.Generator) -> np.ndarray:
    a = LETTERS[rng.integers(0, len(LETTERS), n)]
    b = LETTERS[rng.integers(0, len(LETTERS), n)]
    digits = rng.integers(1, 10000, n)
    texts = np.char.add(np.char.add(a, b), digits.astype(str))
    texts[:3] = ["AB1234", "KT8080", "AB1299"]  # the queries' plates exist
    texts[texts == "HK2024"] = "HK2025"
    texts[min(TYPICAL, n - 1)] = "HK2024"
    return texts


def build(
    storage: Storage,
    rows: int,
    plates: int,
    days: int,
    cameras: int,
    *,
    texts_first: bool,
    shards: bool = False,
) -> None:
    rng = np.random.default_rng(3)
    texts = plate_texts(plates, rng)
    if texts_first:
        write_plate_texts(storage.db, PlateRow.SCHEMA.empty_table())  # a new store: complete from the start
    table = plates_table(storage.db) if not shards else None
    shard_tables: dict[dt.date, Table] = {}
    start_us = int((END - dt.timedelta(days=days)).timestamp() * 1e6)
    span_us = days * 86400 * 1_000_000
    for first in range(0, rows, BATCH):
        n = min(BATCH, rows - first)
        which = np.minimum(rng.zipf(1.3, n) - 1, plates - 1)
        ts = pa.array(start_us + rng.integers(0, span_us, n), pa.timestamp("us", tz="UTC"))
        cams = np.char.add("cam-", (rng.integers(0, cameras, n)).astype(str))
        ids = np.char.add("p", np.arange(first, first + n).astype(str))
        columns = {
            "id": ids,
            "segment_id": np.char.add(cams, "/seg"),
            "camera_id": cams,
            "ts": ts,
            "first_ts": ts,
            "last_ts": ts,
            "text": texts[which],
            "confidence": rng.uniform(0.6, 1.0, n).astype(np.float32),
            "char_confidences": pa.array([[]] * n, pa.list_(pa.float32())),
            "reads": np.full(n, 3, np.int32),
            "low_confidence": np.zeros(n, bool),
            "bbox": pa.array([(0.0, 0.0, 1.0, 1.0)] * n, PlateRow.SCHEMA.field("bbox").type),
            "track_id": ids,
            "thumb_uri": np.full(n, "", object),
            "lat": pa.nulls(n, pa.float64()),
            "lon": pa.nulls(n, pa.float64()),
            "model": np.full(n, "bench", object),
            "gate_score": np.ones(n, np.float32),
        }
        data = pa.table(
            {k: pa.array(v) if isinstance(v, np.ndarray) else v for k, v in columns.items()},
            schema=PlateRow.SCHEMA,
        )
        if texts_first:  # as indexing writes a segment's plates
            write_plate_texts(storage.db, data)
        if table is not None:
            table.add(data)
            continue
        for day, part in split_by_day(data).items():  # day shards (storage.shard_by_day)
            if day not in shard_tables:
                shard_tables[day] = open_table(storage.db, shard_name(PlateRow.TABLE, day), PlateRow.SCHEMA)
            shard_tables[day].add(part)


def before(storage: Storage, text: str, since: dt.datetime) -> list[str]:
    """The former path: every whole row in the window into Python, each scored."""
    query = parse_plate_query(text)
    table = storage.db.open_table(PlateRow.TABLE)
    rows = arrow_to_rows(table.search().where(where_clause(since=since)).limit(None).to_arrow(), PlateRow)
    scored = [(s, r) for r in rows if (s := match_score(query, r.text)) is not None]
    scored.sort(key=lambda item: (item[0], -item[1].confidence, item[1].ts))
    return [r.id for _, r in scored[:50]]


def scan(storage: Storage, text: str, since: dt.datetime) -> list[str]:
    """The path before plate_texts: the window's narrow columns scanned."""
    table = storage.db.open_table(PlateRow.TABLE)
    ranked = rank_plates(table, parse_plate_query(text), where_clause(since=since), near=None, top_k=50)
    return [row.id for _, row in ranked]


def timed(fn, repeat: int) -> tuple[list[float], object]:  # noqa: ANN001
    out: list[float] = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        out.append(time.perf_counter() - started)
    return out, result


def p95(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, round(0.95 * (len(values) - 1)))]


def measure_tier(
    storage: Storage, args: argparse.Namespace, first_ids: dict[tuple[int, str], list[str]]
) -> None:
    """The same searches with the service's plate memory tier loaded (every closed shard)."""
    started = time.perf_counter()
    tier = start_plate_tier(storage, args.memory_tier)
    if tier is None:
        raise SystemExit("--memory-tier needs a budget above 0 MB")
    tier.wait_idle(3600)
    stats = tier.stats()
    rows = sum(len(h.shard) for h in tier.held().values())
    slowest = max((h.load_s for h in tier.held().values()), default=0.0)
    print(
        f"memory tier {args.memory_tier} MB: {stats.shards} shards, {rows:,} passes, "
        f"{stats.nbytes / 2**20:,.0f} MB ({stats.nbytes / max(rows, 1):.0f} B a pass), loaded in "
        f"{time.perf_counter() - started:.1f} s ({stats.load_s / max(stats.loads, 1):.2f} s a shard, "
        f"max {slowest:.2f}); load average {os.getloadavg()[0]:.2f}"
    )
    print("window  query     hits  warm p50  warm p95  same ids as LanceDB")
    for days in (1, 7, 30):
        filters = SearchFilters(since=END - dt.timedelta(days=days))
        for text in QUERIES:
            query = parse_plate_query(text)
            timed(lambda q=query, f=filters: search_plates(storage, q, f), 1)
            warm, found = timed(lambda q=query, f=filters: search_plates(storage, q, f), args.repeat)
            ids = [s.plate.id for s in found]  # type: ignore[attr-defined]
            same = "yes" if ids == first_ids[days, text] else "NO"
            print(
                f"{days:>3} d  {text:<8} {len(ids):>5} {statistics.median(warm) * 1000:9.0f} "
                f"{p95(warm) * 1000:9.0f}  {same}",
                flush=True,
            )
    print(f"served from memory: {tier.stats().served} shard searches")
    stop_plate_tier(storage)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--plates", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--cameras", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scan-repeat", type=int, default=1, help="0: skip the scan path")
    parser.add_argument("--before-repeat", type=int, default=1, help="0: skip the former path")
    parser.add_argument("--older-store", action="store_true", help="plates only; the maintenance backfills")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument(
        "--memory-tier", type=int, default=0, metavar="MB", help="then search with the plate memory tier"
    )
    parser.add_argument(
        "--shards", action="store_true", help="day shards (storage.shard_by_day); skips scan and before"
    )
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    scratch = Path(tempfile.mkdtemp(prefix="citywatch-plate-search-", dir=args.dir))
    try:
        settings = Settings(storage__root=str(scratch))
        storage = Storage(settings)
        started = time.perf_counter()
        if args.shards:
            args.scan_repeat = args.before_repeat = 0  # those read the one plates table
        build(
            storage,
            args.rows,
            args.plates,
            args.days,
            args.cameras,
            texts_first=not args.older_store,
            shards=args.shards,
        )
        built = time.perf_counter() - started
        started = time.perf_counter()
        report = ensure_search_indexes(storage, settings)
        took = time.perf_counter() - started
        texts = storage.db.open_table("plate_texts").count_rows()
        print(f"built {args.rows:,} plate rows in {built:.1f} s; maintenance in {took:.1f} s ({report})")
        print(f"plate_texts: {texts:,} day|text rows")
        print(
            "window  query     hits  cold ms  warm p50  warm p95 | scan ms (same ids) | before ms (same ids)"
        )
        first_ids: dict[tuple[int, str], list[str]] = {}
        for days in (1, 7, 30):
            since = END - dt.timedelta(days=days)
            filters = SearchFilters(since=since)
            for text in QUERIES:
                query = parse_plate_query(text)
                cold, _ = timed(lambda q=query, f=filters: search_plates(storage, q, f), 1)
                warm, found = timed(lambda q=query, f=filters: search_plates(storage, q, f), args.repeat)
                ids = [s.plate.id for s in found]  # type: ignore[attr-defined]
                first_ids[days, text] = ids
                line = (
                    f"{days:>3} d  {text:<8} {len(ids):>5} {cold[0] * 1000:8.0f} "
                    f"{statistics.median(warm) * 1000:9.0f} {p95(warm) * 1000:9.0f}"
                )
                if args.scan_repeat:
                    old, old_ids = timed(lambda t=text, s=since: scan(storage, t, s), args.scan_repeat)
                    same = "yes" if old_ids == ids else "NO"
                    line += f" | {statistics.median(old) * 1000:7.0f} ({same})"
                if args.before_repeat:
                    old, old_ids = timed(lambda t=text, s=since: before(storage, t, s), args.before_repeat)
                    same = "yes" if old_ids == ids else "NO"
                    line += f" | {statistics.median(old) * 1000:9.0f} ({same})"
                print(line, flush=True)
        if args.memory_tier:
            measure_tier(storage, args, first_ids)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
