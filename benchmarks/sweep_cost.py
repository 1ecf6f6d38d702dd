"""The watchlist sweep's cost: 10,000 new face rows and 10,000 plate rows against
1,000 face and 1,000 plate entries (matching, alert writes, watermarks), on local disk.

    python benchmarks/sweep_cost.py

Also run at the end of ``benchmarks/alert_latency.py`` (``--cost-only``: only this).
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from citywatch.settings import Settings  # noqa: E402
from citywatch.storage import Storage  # noqa: E402


def sweep_cost(work: Path, rows: int = 10_000, entries: int = 1_000, repeats: int = 3) -> None:
    from citywatch.governance.watchlist import watchlist_table
    from citywatch.schemas import FaceRow, PlateRow, WatchlistRow, rows_to_arrow
    from citywatch.tables import faces_table, plates_table, upsert
    from citywatch.tasks.sweep import sweep_once

    rng = np.random.default_rng(1)
    dim = 128
    now = dt.datetime.now(dt.UTC)
    settings = Settings(storage__root=str(work / "cost"), storage__state_dir=str(work / "state"))
    storage = Storage(settings)

    def entry(i: int, kind: str, **extra: object) -> WatchlistRow:
        return WatchlistRow(
            id=f"wl-{kind}-{i:05d}",
            kind=kind,
            label=f"{kind} {i}",
            reason="suspect",
            case_id="BENCH",
            justification="benchmark",
            requested_by="a",
            created_at=now,
            expires_at=now + dt.timedelta(days=1),
            status="active",
            approved_by="b",
            approved_at=now,
            threshold=extra.pop("threshold", 0.55),
            model=extra.pop("model", ""),
            embeddings=extra.pop("embeddings", []),
            photo_sha256=[],
            plate_query=extra.pop("plate", ""),
            removed_by="",
            removed_at=None,
            removal_note="",
            updated_at=now,
        )

    def unit(n: int) -> np.ndarray:
        v = rng.normal(size=(n, dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True) * 0.6

    face_entries = [entry(i, "face", model="bench", embeddings=unit(2).tolist()) for i in range(entries)]
    plate_entries = [
        entry(
            i,
            "plate",
            threshold=0.6,
            plate=f"{'AB'[i % 2]}{chr(67 + i % 20)}{1000 + i}" if i % 10 else f"Z{i % 9 + 1}*",
        )
        for i in range(entries)
    ]
    upsert(watchlist_table(storage.db), rows_to_arrow(face_entries + plate_entries, WatchlistRow.SCHEMA))
    sweep_once(storage, settings)  # watermarks and tables in place
    times = []
    for r in range(repeats):
        vectors = unit(rows)
        face_rows = [
            FaceRow(
                id=f"r{r}/s{i // 100}#t{i % 100}@0",
                segment_id=f"cam-x/r{r}s{i // 100}",
                camera_id="cam-x",
                ts=now,
                bbox=(0.0, 0.0, 64.0, 64.0),
                det_score=0.9,
                quality=0.5,
                embedding=vectors[i],
                track_id=f"r{r}/s{i // 100}#t{i % 100}",
                track_start=now,
                track_end=now,
                thumb_uri="",
                lat=None,
                lon=None,
                model="bench",
            )
            for i in range(rows)
        ]
        plate_rows = [
            PlateRow(
                id=f"r{r}p{i}",
                segment_id=f"cam-x/r{r}s{i // 100}",
                camera_id="cam-x",
                ts=now,
                first_ts=now,
                last_ts=now,
                text=f"{chr(65 + i % 26)}{chr(65 + (i // 26) % 26)}{i % 9000 + 1000}",
                confidence=0.9,
                char_confidences=[],
                reads=3,
                low_confidence=False,
                bbox=(0.0, 0.0, 64.0, 64.0),
                track_id=f"r{r}p{i}",
                thumb_uri="",
                lat=None,
                lon=None,
                model="bench",
            )
            for i in range(rows)
        ]
        table = faces_table(storage.db, dim)
        for i in range(0, rows, 100):  # as 100 segments land: 100 writes
            upsert(table, rows_to_arrow(face_rows[i : i + 100], FaceRow.schema(dim)))
            upsert(plates_table(storage.db), rows_to_arrow(plate_rows[i : i + 100], PlateRow.SCHEMA))
        started = time.perf_counter()
        result = sweep_once(storage, settings)
        times.append(time.perf_counter() - started)
        print(
            f"  sweep {r + 1}: {result.faces_read} face + {result.plates_read} plate rows vs "
            f"{result.entries_active} entries: {times[-1]:.2f} s, {result.alerts_new} alerts"
        )
    print(
        f"sweep cost per {rows:,} new face rows + {rows:,} plate rows against {entries:,} face "
        f"+ {entries:,} plate entries: median {statistics.median(times):.2f} s"
    )


if __name__ == "__main__":
    sweep_cost(Path(tempfile.mkdtemp(prefix="citywatch-sweep-cost-")))
