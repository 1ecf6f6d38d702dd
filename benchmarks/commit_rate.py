"""Commits into one day shard: segments written per second, one commit per segment vs batched.

    python benchmarks/commit_rate.py [--writers 4] [--segments 200] [--rows 20] [--batches 1,10]
        [--s3]

``--writers`` processes each write ``--segments`` segments of ``--rows`` face rows
(128-d) into today's ``faces`` day shard through the product's writer
(``citywatch.shards.replace_segment_rows``: one merge per table per call, which is what
the index task does per batch, ``index.segments_per_task``), ``--batches`` segments per
commit. Reports segments per second, commits per second and the retries LanceDB's
optimistic commits needed (logged by ``citywatch.tables``). Local disk by default;
``--s3``: a moto S3 server (put-if-not-exists commits, as on AWS). Issue 19 item 4: a
city writes ~250 segments/s; this shows what one table takes and what batching buys.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from citywatch.schemas import FaceRow, rows_to_arrow  # noqa: E402
from citywatch.settings import Settings  # noqa: E402
from citywatch.shards import replace_segment_rows, shard_name, utc_day  # noqa: E402
from citywatch.storage import Storage  # noqa: E402

DIM = 128
DAY = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)


def rows_of(segment: str, n: int, rng: np.random.Generator) -> list[FaceRow]:
    vectors = rng.normal(0, 0.05, (n, DIM)).astype(np.float32)
    return [
        FaceRow(
            id=f"{segment}#t{i:04d}@0000000",
            segment_id=segment,
            camera_id=segment.split("/")[0],
            ts=DAY + dt.timedelta(seconds=i),
            bbox=(0.0, 0.0, 60.0, 60.0),
            det_score=0.9,
            quality=0.5,
            embedding=vectors[i],
            track_id=f"{segment}#t{i:04d}",
            track_start=DAY,
            track_end=DAY,
            thumb_uri="",
            lat=None,
            lon=None,
            model="bench",
            template=vectors[i],
        )
        for i in range(n)
    ]


class Retries(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying write" in record.getMessage():
            self.count += 1


def writer(args: tuple[dict[str, str], int, int, int, int]) -> tuple[int, int, int, float, float]:
    """Write ``segments`` segments in commits of ``batch``; returns (segments, commits,
    retries, first commit's start, last commit's end) (wall clock: processes start apart)."""
    env, index, segments, rows, batch = args
    os.environ.update(env)
    retries = Retries()
    logging.getLogger("citywatch.tables").addHandler(retries)
    storage = Storage(Settings())
    schema = FaceRow.schema(DIM)
    rng = np.random.default_rng(index)
    commits = 0
    storage.db.open_table(shard_name("faces", utc_day(DAY)))  # connected before the clock starts
    began = time.time()
    for first in range(0, segments, batch):
        ids = [f"cam-{index:03d}/s{first + k:05d}" for k in range(min(batch, segments - first))]
        data = rows_to_arrow([row for seg in ids for row in rows_of(seg, rows, rng)], schema)
        replace_segment_rows(storage.db, "faces", schema, ids, data, sharded=True, days=[utc_day(DAY)])
        commits += 1
    return segments, commits, retries.count, began, time.time()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--segments", type=int, default=200)
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--batches", default="1,10")
    parser.add_argument("--s3", action="store_true")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"{args.writers} writer processes x {args.segments} segments x {args.rows} face rows, one day shard"
    )
    print("segments/commit  wall s  segments/s  commits/s  retries")
    for batch in (int(b) for b in args.batches.split(",")):
        scratch = Path(tempfile.mkdtemp(prefix="citywatch-commit-rate-"))
        server = None
        try:
            env = {"CITYWATCH_STORAGE__ROOT": str(scratch)}
            if args.s3:
                from tests.s3 import moto_server

                server = moto_server()
                s3 = server.__enter__()
                env = {**s3.env(), "CITYWATCH_STORAGE__ROOT": s3.bucket("commits")}
            # the shard exists before the race (creating it is a separate, one-off commit)
            os.environ.update(env)
            schema = FaceRow.schema(DIM)
            storage = Storage(Settings())
            first = rows_to_arrow(rows_of("warm/up", 1, np.random.default_rng(0)), schema)
            replace_segment_rows(
                storage.db, "faces", schema, ["warm/up"], first, sharded=True, days=[utc_day(DAY)]
            )
            jobs = [(env, i, args.segments, args.rows, batch) for i in range(args.writers)]
            with mp.get_context("spawn").Pool(args.writers) as pool:
                results = pool.map(writer, jobs)
            wall = max(r[4] for r in results) - min(r[3] for r in results)
            segments = sum(r[0] for r in results)
            commits = sum(r[1] for r in results)
            retries = sum(r[2] for r in results)
            print(
                f"{batch:>15} {wall:7.1f} {segments / wall:11.1f} {commits / wall:10.1f} {retries:8d}",
                flush=True,
            )
        finally:
            if server is not None:
                server.__exit__(None, None, None)
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
