"""How citywatch scales: index throughput per worker count, face search latency at size.

    .venv/bin/python benchmarks/scaling.py [--root SAMPLE] [--segments 4] [--workers 1 2]
        [--rows 100000 1000000] [--queries 100] [--skip-index] [--skip-search]

1. Index throughput: the real index flow (Prefect server + Dask LocalCluster) on the
   sample footage with 1, 2 (and 4 where the machine has 4 cores) worker processes;
   seconds of footage and sampled frames per wall-clock second.
2. Face search: a faces table (the real FaceRow schema, 128-d embeddings clustered
   like faces: 20 sightings per person) of 100k and 1M rows with an IVF_RQ index;
   p50/p95 latency of a top-10 query on local disk and on a local S3 server
   (localbucket over HTTP, the same files), and recall@10 against exact search.
   The S3 copy is made by copying the dataset files into localbucket's data
   directory (it stores objects as plain files), so both stores hold the same bytes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from citywatch.schemas import FaceRow  # noqa: E402
from citywatch.settings import Settings  # noqa: E402
from citywatch.stack.prefect_server import ensure_prefect_server, stop_prefect_server  # noqa: E402
from citywatch.stack.procs import executable, http_ok, pick_port, start_detached, stop_session, wait_until  # noqa: E402
from citywatch.storage import Storage  # noqa: E402

DIM = 128
PER_PERSON = 20
TS0 = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


# --- 1. index throughput --------------------------------------------------------------
def index_throughput(sample: Path, tmp: Path, workers: list[int], segments: int) -> None:
    from citywatch.governance.auth import write_demo_users

    # the server first: Prefect reads PREFECT_API_URL when the flows are imported
    ensure_prefect_server(str(tmp / "state"))
    from citywatch.flows.index_footage import run_index

    keys = sorted(p.relative_to(sample).as_posix() for p in (sample / "footage").rglob("*.mp4"))
    keys = keys[:segments] if segments else keys
    print(
        f"\n== index throughput: {len(keys)} segments, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    print(
        f"{'workers':>7} {'footage s':>9} {'wall s':>7} {'footage s/s':>11} "
        f"{'frames/s':>8} {'frames/s/worker':>15}"
    )
    for n in workers:
        root = tmp / f"index-{n}"
        for key in ["cameras.yaml", *keys]:
            (root / key).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(sample / key, root / key)
        settings = Settings(
            storage__root=str(root), storage__state_dir=str(tmp / "state"), dask__workers=n, user="demo-admin"
        )
        write_demo_users(Storage(settings))
        started = time.perf_counter()
        summary = run_index(settings)
        wall = time.perf_counter() - started
        frames = summary.footage_s * settings.decode.sample_fps
        print(
            f"{n:>7} {summary.footage_s:>9.0f} {wall:>7.1f} {summary.footage_s / wall:>11.2f} "
            f"{frames / wall:>8.2f} {frames / wall / n:>15.2f}"
            + (f"  ({len(summary.failed)} failed)" if summary.failed else "")
        )


# --- 2. search latency ------------------------------------------------------------------
def synthetic_faces(start: int, n: int, centers: np.ndarray, rng: np.random.Generator) -> pa.Table:
    """``n`` face rows; person ``i // PER_PERSON`` seen ``PER_PERSON`` times with noise."""
    idx = np.arange(start, start + n)
    person = idx // PER_PERSON
    emb = (centers[person] + rng.normal(0, 0.08, (n, DIM))).astype(np.float32)
    cams = np.char.add("cam-", np.char.zfill((idx % 15000).astype(str), 5))
    ts = pa.array(
        (np.datetime64(TS0.replace(tzinfo=None), "us") + (idx * 50_000).astype("timedelta64[us]")),
        pa.timestamp("us", tz="UTC"),
    )
    ids = np.char.add("f-", idx.astype(str))
    corners = rng.uniform(0, 700, n * 4).astype(np.float32)
    bbox = pa.FixedSizeListArray.from_arrays(pa.array(corners), 4)
    columns = {
        "id": pa.array(ids),
        "segment_id": pa.array(np.char.add(cams, "/20261120T080000Z")),
        "camera_id": pa.array(cams),
        "ts": ts,
        "bbox": bbox,
        "det_score": pa.array(rng.uniform(0.6, 1, n).astype(np.float32)),
        "quality": pa.array(rng.uniform(0, 1, n).astype(np.float32)),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), DIM),
        "track_id": pa.array(np.char.add("t-", (idx // 3).astype(str))),
        "track_start": ts,
        "track_end": ts,
        "thumb_uri": pa.array(np.char.add("s3://bench/thumbs/", ids)),
        "lat": pa.array(rng.uniform(22.2, 22.5, n)),
        "lon": pa.array(rng.uniform(114.0, 114.3, n)),
        "model": pa.array(np.full(n, "dlib-resnet-v1")),
        "template": pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), DIM),  # one-face tracks
        "face_px": pa.array(np.full(n, 80.0, np.float32)),
    }
    schema = FaceRow.schema(DIM)
    return pa.table([columns[f.name].cast(f.type) for f in schema], schema=schema)


def exact_top10(matrix: np.ndarray, queries: np.ndarray) -> list[set[int]]:
    out = []
    norms = (matrix * matrix).sum(axis=1)
    for q in queries:
        d = norms - 2 * matrix @ q
        out.append(set(np.argpartition(d, 10)[:10].tolist()))
    return out


def timed(table, queries: np.ndarray, nprobes: int, refine: int | None):  # noqa: ANN001, ANN201
    times, found = [], []
    for q in queries:
        query = table.search(q, vector_column_name="embedding").metric("l2").limit(10)
        query = query.nprobes(nprobes).select(["id", "_distance"])
        if refine:
            query = query.refine_factor(refine)
        t0 = time.perf_counter()
        ids = query.to_arrow()["id"].to_pylist()
        times.append(time.perf_counter() - t0)
        found.append({int(i[2:]) for i in ids})
    return np.array(times) * 1000, found


def search_latency(tmp: Path, sizes: list[int], n_queries: int) -> None:
    import lancedb
    from lancedb.index import IvfRq

    rng = np.random.default_rng(7)
    port = pick_port(0)
    endpoint = f"http://127.0.0.1:{port}"
    s3_data = tmp / "s3"
    (s3_data / "bench").mkdir(parents=True)
    proc = start_detached(
        [executable("localbucket"), "--port", str(port), str(s3_data)], tmp / "s3.log", os.environ, tmp
    )
    try:
        wait_until(lambda: http_ok(endpoint), "localbucket", proc, tmp / "s3.log", 30)
        s3 = Storage(
            Settings(
                storage__root="s3://bench/city",
                s3__endpoint_url=endpoint,
                s3__access_key_id="k",
                s3__secret_access_key="k",
                s3__allow_http=True,
                s3__bulk_delete=False,
            )
        )
        print(
            f"\n== face search, top-10, {DIM}-d, IVF_RQ index, {n_queries} queries after 5 "
            f"warm-up; load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"{'rows':>9} {'store':>6} {'index build s':>13} {'nprobes':>7} {'refine':>6} "
            f"{'pass':>6} {'p50 ms':>7} {'p95 ms':>7} {'recall@10':>9} {'cold ms':>8}"
        )
        for rows in sizes:
            centers = rng.normal(0, 1, (rows // PER_PERSON + 1, DIM)) * 0.25
            local_db = lancedb.connect(str(tmp / f"db-{rows}"))
            table = local_db.create_table("faces", schema=FaceRow.schema(DIM))
            chunk = 200_000
            for start in range(0, rows, chunk):
                table.add(synthetic_faces(start, min(chunk, rows - start), centers, rng))
            t0 = time.perf_counter()
            table.create_index(
                "embedding", config=IvfRq(distance_type="l2", num_partitions=max(16, int(rows**0.5)))
            )
            build = time.perf_counter() - t0
            matrix = np.stack(table.to_arrow().column("embedding").to_numpy(zero_copy_only=False))
            people = rng.integers(0, rows // PER_PERSON, n_queries + 5)
            queries = (centers[people] + rng.normal(0, 0.08, (len(people), DIM))).astype(np.float32)
            truth = exact_top10(matrix, queries[5:])
            del matrix
            shutil.copytree(tmp / f"db-{rows}", s3_data / "bench" / "city" / f"db-{rows}")
            for store, db in (
                ("local", local_db),
                ("s3", lancedb.connect(f"s3://bench/city/db-{rows}", storage_options=s3.lance_options())),
            ):
                t0 = time.perf_counter()
                opened = db.open_table("faces")
                timed(opened, queries[:1], 20, None)
                cold = (time.perf_counter() - t0) * 1000
                timed(opened, queries[1:5], 20, None)  # warm-up
                # the first pass reads index partitions from the store; the second finds
                # them in LanceDB's cache, as a long-running search service would
                for run, (nprobes, refine) in (("first", (20, 5)), ("warm", (20, 5)), ("warm", (20, None))):
                    ms, found = timed(opened, queries[5:], nprobes, refine)
                    recall = np.mean([len(f & t) / 10 for f, t in zip(found, truth)])
                    print(
                        f"{rows:>9} {store:>6} {build:>13.1f} {nprobes:>7} {refine or '-':>6} "
                        f"{run:>6} {np.percentile(ms, 50):>7.1f} {np.percentile(ms, 95):>7.1f} "
                        f"{recall:>9.3f} {cold:>8.0f}"
                    )
    finally:
        stop_session(proc.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="an existing sample root (default: generate one)")
    parser.add_argument("--segments", type=int, default=4, help="segments to index (0: all)")
    cores = os.cpu_count() or 1
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2] + ([4] if cores >= 4 else []))
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--skip-index", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cw-scaling-"))
    try:
        if not args.skip_index:
            sample = Path(args.root) if args.root else tmp / "sample"
            if not args.root:
                from citywatch.sample.dataset import generate_sample

                generate_sample(sample, seed=7, segments_per_camera=2, segment_seconds=20.0)
            index_throughput(sample, tmp, args.workers, args.segments)
        if not args.skip_search:
            search_latency(tmp, args.rows, args.queries)
    finally:
        stop_prefect_server(str(tmp / "state"))
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
