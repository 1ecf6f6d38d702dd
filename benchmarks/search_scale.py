"""Face search at city scale through citywatch's own path (issue #19 item 5).

    .venv/bin/python benchmarks/search_scale.py [--rows 10000000] [--cameras 2000] [--days 30]
        [--dir DIR] [--layout shards|flat|both] [--queries 40] [--cold 8]
        [--knobs 20x5,40x10] [--windows 1d,7d,30d] [--skip-load] [--skip-index] [--s3-stock]

1. Generates ``--rows`` face rows (benchmarks/scale_rows.py: dlib-like clustered
   embeddings, tracks of 1-3 faces with their template, faces 30-150 px, ``--cameras``
   cameras in 20 districts, ``--days`` UTC days ending yesterday) in seeded chunks and
   appends them to the day shards (``storage.shard_by_day``: ``shard_name("faces", day)``
   opened with ``open_table``) on a localbucket S3 server; registers the cameras.
   ``--layout flat``/``both``: one unsharded ``faces`` table (another storage root).
2. Builds the search indexes with ``ensure_search_indexes`` (scalar indexes on every
   shard, IVF_RQ on each closed day).
3. Times ``search_faces`` (top 10, the dlib threshold) over 1-, 7- and 30-day windows,
   without and with a district filter: cold = the first query of a fresh ``Storage``
   (new connection), warm = later queries of one ``Storage``; recall@10 = the share of
   the exact top-10 tracks (the match rule applied to every row of the window by brute
   force while loading) that search returned. Probes are new faces of people seen in the
   window (and district). "requests": S3 requests per warm search (localbucket's log).
   ``--skip-load`` / ``--skip-index`` reuse ``--dir``.
4. ``--memory-tier MB``: the same searches with the service's memory tier of closed day
   shards (tasks/search/faces_memory.py) of that budget, started empty for each window:
   cold = the first searches, answered by LanceDB while the tier loads the shards they
   asked for in the background; then every shard the window's queries touch is loaded
   (waited for), and warm = searches answered from memory. Reports the tier's memory
   and load seconds per shard.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.scale_rows import (  # noqa: E402
    DIM,
    DISTRICTS,
    camera_id,
    chunks,
    district_of,
    exact_hits,
    exact_top,
    make_plan,
    pick_queries,
)
from citywatch.models.base import FaceDetection  # noqa: E402
from citywatch.models.dlib_embedder import DEFAULT_THRESHOLD  # noqa: E402
from citywatch.schemas import CameraRow, FaceRow  # noqa: E402
from citywatch.settings import Settings  # noqa: E402
from citywatch.shards import index_tables, shard_name  # noqa: E402
from citywatch.stack.procs import executable, http_ok, pick_port, start_detached, stop_session, wait_until  # noqa: E402
from citywatch.storage import Storage  # noqa: E402
from citywatch.tables import cameras_table, open_table  # noqa: E402
from citywatch.tasks.search.faces import Probe, SearchFilters, search_faces  # noqa: E402
from citywatch.tasks.search.faces_memory import start_face_tier, stop_face_tier  # noqa: E402
from citywatch.tasks.search.indexes import ensure_search_indexes  # noqa: E402

WINDOWS = {"1d": 1, "7d": 7, "30d": 30}
BUCKET = "citywatch"
WARMUP = 3


def settings_for(endpoint: str, layout: str, nprobes: int = 20, refine: int = 5, **extra: object) -> Settings:
    return Settings(
        storage__root=f"s3://{BUCKET}/{layout}",
        storage__shard_by_day=layout == "shards",
        s3__endpoint_url=endpoint,
        s3__access_key_id="citywatch-local",
        s3__secret_access_key="citywatch-local",
        s3__allow_http=True,
        s3__bulk_delete=False,  # localbucket has no DeleteObjects: aws_disable_bulk_delete=true
        faces__ann_nprobes=nprobes,
        faces__ann_refine=refine,
        **extra,
    )


# localbucket (http.server) writes a response's headers and body in separate small writes:
# with Nagle on, each request waits ~40 ms for the client's delayed ACK, far slower than
# S3 answers. --s3-nodelay starts it with TCP_NODELAY on its sockets (benchmark only).
NODELAY = (
    "import socket, sys, localbucket as lb; setup = lb.S3Handler.setup\n"
    "def nodelay(self):\n"
    "    setup(self); self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\n"
    "lb.S3Handler.setup = nodelay; sys.argv[0] = 'localbucket'; lb.main()"
)


def start_s3(folder: Path, nodelay: bool = False) -> tuple[subprocess.Popen[bytes], str]:
    (folder / "s3" / BUCKET).mkdir(parents=True, exist_ok=True)
    port = pick_port(0)
    endpoint = f"http://127.0.0.1:{port}"
    log = folder / "s3.log"
    server = [sys.executable, "-c", NODELAY] if nodelay else [executable("localbucket")]
    argv = [*server, "--host", "127.0.0.1", "--port", str(port), str(folder / "s3")]
    proc = start_detached(argv, log, os.environ, folder)
    wait_until(lambda: http_ok(endpoint), "localbucket", proc, log, 30)
    return proc, endpoint


def register_cameras(storage: Storage, cameras: int) -> None:
    table = cameras_table(storage.db)
    ids = [camera_id(c) for c in range(cameras)]
    data = {
        "id": ids,
        "name": [f"Camera {c}" for c in range(cameras)],
        "district": [district_of(c, cameras) for c in range(cameras)],
        "lat": [22.2 + 0.3 * c / cameras for c in range(cameras)],
        "lon": [114.0 + 0.3 * ((c * 7919) % cameras) / cameras for c in range(cameras)],
        "kind": ["fixed"] * cameras,
        "height_m": [4.0] * cameras,
        "frame_w": [1280] * cameras,
        "frame_h": [720] * cameras,
        "privacy_masks": [[]] * cameras,
        "overlay_regions": [[]] * cameras,
        "registered": [True] * cameras,
    }
    table.add(pa.table(data, schema=CameraRow.SCHEMA))


def load(args: argparse.Namespace, endpoint: str, layouts: list[str]) -> dict:
    last_day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    t0 = time.perf_counter()
    plan = make_plan(args.rows, args.cameras, last_day, args.days, args.seed)
    windows = {k: v for k, v in WINDOWS.items() if v <= args.days}
    queries = pick_queries(plan, windows, WARMUP + args.queries + args.cold, args.seed, 40.0)
    found: list[dict] = [{} for _ in queries]
    storages = {layout: Storage(settings_for(endpoint, layout)) for layout in layouts}
    for storage in storages.values():
        register_cameras(storage, args.cameras)
    schema, tables, write_s, rows = FaceRow.schema(DIM), {}, 0.0, 0
    for chunk in chunks(plan, args.chunk):
        day = plan.first_day + dt.timedelta(days=int(chunk.day[0]))
        for layout, storage in storages.items():
            name = shard_name("faces", day) if layout == "shards" else FaceRow.TABLE
            if (layout, name) not in tables:
                tables[layout, name] = open_table(storage.db, name, schema)
            w0 = time.perf_counter()
            tables[layout, name].add(chunk.table)
            write_s += time.perf_counter() - w0
        exact_hits(chunk, queries, args.cameras, DEFAULT_THRESHOLD, 40.0, found)
        rows += chunk.table.num_rows
        print(f"  {rows:>11,} rows  {day}  {time.perf_counter() - t0:7.1f} s", flush=True)
    state = {
        "rows": rows,
        "cameras": args.cameras,
        "days": args.days,
        "first_day": plan.first_day.isoformat(),
        "people": plan.people,
        "load_s": round(time.perf_counter() - t0, 1),
        "write_s": round(write_s, 1),
        "queries": [
            {
                "name": q.name,
                "first": q.first_day,
                "last": q.last_day,
                "district": q.district,
                "person": q.person,
                "vector": q.vector.tolist(),
                "exact": exact_top(found[i], DEFAULT_THRESHOLD, 10),
                "matching": len([t for t, v in found[i].items() if v[0] <= DEFAULT_THRESHOLD]),
            }
            for i, q in enumerate(queries)
        ],
    }
    (args.dir / "state.json").write_text(json.dumps(state))
    return state


def track_of(face_id: str) -> int:
    return int(face_id.rsplit("#t", 1)[1].split("@", 1)[0])


def probe_of(vector: list[float]) -> Probe:
    face = FaceDetection(bbox=(0.0, 0.0, 100.0, 100.0), score=1.0, landmarks=())
    return Probe("synthetic", "", face, np.asarray(vector, np.float32), 1)


def filters_of(q: dict, first_day: dt.date) -> SearchFilters:
    start = dt.datetime.combine(first_day, dt.time(), dt.UTC)
    return SearchFilters(
        district=q["district"],
        since=start + dt.timedelta(days=q["first"]),
        until=start + dt.timedelta(days=q["last"] + 1) - dt.timedelta(microseconds=1),
    )


def timed_search(
    storage: Storage, settings: Settings, q: dict, first_day: dt.date
) -> tuple[float, float | None]:
    t0 = time.perf_counter()
    found = search_faces(
        storage,
        settings,
        probe_of(q["vector"]),
        filters_of(q, first_day),
        top_k=10,
        threshold=DEFAULT_THRESHOLD,
    )
    ms = (time.perf_counter() - t0) * 1000
    exact = set(q["exact"])
    got = {track_of(s.face_id) for s in found}
    return ms, (len(exact & got) / len(exact) if exact else None)


def measure(
    args: argparse.Namespace, endpoint: str, layout: str, state: dict, nprobes: int, refine: int
) -> None:
    settings = settings_for(endpoint, layout, nprobes, refine)
    first_day = dt.date.fromisoformat(state["first_day"])
    by_config: dict[str, list[dict]] = {}
    for q in state["queries"]:
        if q["name"].split("/")[0] in args.windows.split(","):
            by_config.setdefault(q["name"], []).append(q)
    requests = S3Requests(args.dir / "s3.log")
    for name, qs in by_config.items():
        cold_qs, warm_qs = qs[: args.cold], qs[args.cold : args.cold + WARMUP + args.queries]
        cold, recalls = [], []
        tier_line = ""
        if args.memory_tier:
            stop_face_tier(Storage(settings))
            tier = start_face_tier(Storage(settings), args.memory_tier, preload=False)
            if tier is None:
                raise SystemExit("--memory-tier needs a budget above 0 MB")
        for q in cold_qs:
            ms, rec = timed_search(Storage(settings), settings, q, first_day)
            cold.append(ms)
        if args.memory_tier and tier is not None:
            t0 = time.perf_counter()
            db = Storage(settings).db
            for q in warm_qs:  # every shard the warm searches touch, loaded before they run
                f = filters_of(q, first_day)
                tier.request(index_tables(db, FaceRow.TABLE, f.since, f.until))
            tier.wait_idle(7200)
            stats = tier.stats()
            faces = sum(len(h.shard) for h in tier.held().values())
            slowest = max((h.load_s for h in tier.held().values()), default=0.0)
            tier_line = (
                f"    tier: {stats.shards} shards, {stats.nbytes / 2**20:,.0f} MB "
                f"({stats.nbytes / max(faces, 1):.0f} B a face), "
                f"{stats.loads} loads, {stats.load_s / max(stats.loads, 1):.1f} s a shard "
                f"(max {slowest:.1f}), waited "
                f"{time.perf_counter() - t0:.0f} s after the cold searches; skipped {len(stats.skipped)}"
            )
        storage = Storage(settings)
        warm, sent = [], 0
        for i, q in enumerate(warm_qs):
            requests.count()
            ms, rec = timed_search(storage, settings, q, first_day)
            if i >= WARMUP:
                warm.append(ms)
                sent += requests.count()
                if rec is not None:
                    recalls.append(rec)
        matching = np.mean([q["matching"] for q in warm_qs[WARMUP:]])
        c, w = np.array(cold or [np.nan]), np.array(warm)
        print(
            f"{state['rows']:>11,} {layout:>6} {name:>10} {nprobes:>7} {refine:>6} "
            f"{np.percentile(c, 50):>8.0f} {np.percentile(c, 95):>8.0f} "
            f"{np.percentile(w, 50):>8.0f} {np.percentile(w, 95):>8.0f} "
            f"{np.mean(recalls) if recalls else np.nan:>9.3f} {min(recalls, default=np.nan):>6.2f} "
            f"{len(recalls):>4} {matching:>8.1f} {sent / max(len(warm), 1):>8.0f}",
            flush=True,
        )
        if tier_line:
            print(tier_line, f"served {tier.stats().served}", flush=True)


class S3Requests:
    """Requests localbucket logged since the last call (one log line per request)."""

    def __init__(self, log: Path) -> None:
        self.log, self.offset = log, log.stat().st_size

    def count(self) -> int:
        time.sleep(0.02)  # the server logs after it answered
        with self.log.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        return data.count(b' HTTP/1.1" ')


def du(path: Path) -> str:
    out = subprocess.run(["du", "-sh", str(path)], capture_output=True, text=True, check=False).stdout
    return out.split("\t", 1)[0] or "?"


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--cameras", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--chunk", type=int, default=400_000, help="rows per table.add (never across a day)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/citywatch-search-scale"))
    parser.add_argument("--layout", choices=("shards", "flat", "both"), default="shards")
    parser.add_argument("--queries", type=int, default=40, help="warm queries per window x filter")
    parser.add_argument("--cold", type=int, default=8, help="cold queries per window x filter")
    parser.add_argument(
        "--knobs", default="20x5", help="faces.ann_nprobes x faces.ann_refine to try, comma separated"
    )
    parser.add_argument(
        "--s3-stock", action="store_true", help="localbucket as installed (Nagle on: ~50 ms a request)"
    )
    parser.add_argument(
        "--ann-min-rows", type=int, help="faces.ann_min_rows for the index build (default: the product's)"
    )
    parser.add_argument("--windows", default="1d,7d,30d", help="windows to search (of 1d, 7d, 30d)")
    parser.add_argument(
        "--memory-tier", type=int, default=0, metavar="MB", help="search with the memory tier of this budget"
    )
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--skip-index", action="store_true")
    args = parser.parse_args()
    if args.rows // DISTRICTS < 1 or args.cameras < DISTRICTS:
        parser.error(f"need at least {DISTRICTS} cameras")
    layouts = ["shards", "flat"] if args.layout == "both" else [args.layout]
    print("$ .venv/bin/python benchmarks/" + " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]))
    print(
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; "
        f"{dt.datetime.now(dt.UTC):%F %T} UTC"
    )
    args.dir.mkdir(parents=True, exist_ok=True)
    proc, endpoint = start_s3(args.dir, nodelay=not args.s3_stock)
    try:
        if args.skip_load:
            state = json.loads((args.dir / "state.json").read_text())
        else:
            state = load(args, endpoint, layouts)
        print(
            f"loaded {state['rows']:,} rows ({state['people']:,} people, {state['cameras']} cameras, "
            f"{state['days']} days from {state['first_day']}) in {state['load_s']} s "
            f"(table.add {state['write_s']} s); on disk {du(args.dir / 's3')}"
        )
        if not args.skip_index:
            for layout in layouts:
                t0 = time.perf_counter()
                extra = {"faces__ann_min_rows": args.ann_min_rows} if args.ann_min_rows else {}
                settings = settings_for(endpoint, layout, **extra)
                report = ensure_search_indexes(Storage(settings), settings)
                vector = sum("IVF_RQ" in c for c in report.created)
                print(
                    f"indexes ({layout}): {len(report.created)} created ({vector} IVF_RQ) in "
                    f"{time.perf_counter() - t0:.1f} s; on disk {du(args.dir / 's3')}",
                    flush=True,
                )
        tiered = f", memory tier {args.memory_tier} MB" if args.memory_tier else ""
        print(
            f"\nsearch_faces top 10, threshold {DEFAULT_THRESHOLD}{tiered}; "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        print(
            f"{'rows':>11} {'layout':>6} {'window':>10} {'nprobes':>7} {'refine':>6} {'cold p50':>8} "
            f"{'cold p95':>8} {'warm p50':>8} {'warm p95':>8} {'recall@10':>9} {'min':>6} {'n':>4} "
            f"{'matching':>8} {'requests':>8}"
        )
        for knob in args.knobs.split(","):
            nprobes, refine = (int(v) for v in knob.split("x"))
            for layout in layouts:
                measure(args, endpoint, layout, state, nprobes, refine)
    finally:
        s3_rss = peak_rss_mb(proc.pid)
        stop_session(proc.pid)
    print(
        f"peak RSS: benchmark {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB, "
        f"localbucket {s3_rss:.0f} MB; load average {os.getloadavg()[0]:.2f} at end"
    )


if __name__ == "__main__":
    main()
