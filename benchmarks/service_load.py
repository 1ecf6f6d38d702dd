"""Service load: concurrent signed-in clients against a real `citywatch serve` on the sample.

    python benchmarks/service_load.py --root INDEXED_ROOT [--clients 8] [--seconds 60]
        [--mix face,plate,alerts] [--in-place] [--face-rows 1000000]

INDEXED_ROOT is a storage root whose sample is indexed (``citywatch demo`` leaves one
in ./data). It is copied to a temporary folder first (the searches write audit records
and reports; ``--in-place`` uses it as it is). Then, all real: a Prefect server (the
one PREFECT_API_URL names, else a temporary one), `citywatch serve` as its own process
on a loopback port, one investigator account per client with a random password, each
client signed in with its own session cookie. Every client loops over the mix for
``--seconds``: a face search (a sample probe photo uploaded; a Prefect flow run), a
plate search (a flow run) and the alerts list, each with case and justification where
the API needs them. Prints per kind and overall: requests, requests/s, p50 / p95 / p99
latency, errors (non-2xx answers or transport errors; must be 0).

``--face-rows N`` first grows the copy's faces table to N rows: synthetic sightings
(the real FaceRow schema, 128-d embeddings clustered like faces, as in
benchmarks/scaling.py) spread over the sample's own cameras, segments and thumbnails,
then builds the search indexes with the product's own maintenance step
(``ensure_search_indexes``: IVF_RQ on the embeddings, BTree/Bitmap on time and camera),
so every face search in the run goes through the vector index at that size.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from citywatch.governance.users import add_user, find_user  # noqa: E402
from citywatch.sample.dataset import load_ground_truth  # noqa: E402
from citywatch.settings import Settings  # noqa: E402
from citywatch.stack.prefect_server import (  # noqa: E402
    QUIET_ENV,
    ensure_prefect_server,
    free_port,
    stop_prefect_server,
)
from citywatch.storage import Storage  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))

CASE = {"case_id": "BENCH-1", "justification": "service load benchmark on synthetic sample footage"}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class Client:
    """One signed-in person: their own session cookie and CSRF token."""

    def __init__(self, base: str, name: str, password: str, probe: Path, plate: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=600)
        login = self.http.post("/api/auth/login", json={"name": name, "password": password})
        login.raise_for_status()
        self.headers = {"X-CSRF-Token": login.json()["csrf_token"]}
        self.probe = (probe.name, probe.read_bytes(), "image/jpeg")
        self.plate = plate

    def face(self) -> httpx.Response:
        return self.http.post(
            "/api/search/face",
            data={**CASE, "top_k": "10"},
            files={"probe": self.probe},
            headers=self.headers,
        )

    def plate_search(self) -> httpx.Response:
        return self.http.post("/api/search/plate", json={"text": self.plate, **CASE}, headers=self.headers)

    def alerts(self) -> httpx.Response:
        return self.http.get("/api/alerts", params={"limit": 100})


def grow_faces(settings: Settings, total: int) -> None:
    """Append synthetic face rows until the faces table holds ``total``; build its indexes."""
    import numpy as np
    import pyarrow as pa
    from scaling import DIM, PER_PERSON, synthetic_faces

    from citywatch.schemas import FaceRow
    from citywatch.tasks.search.indexes import ensure_search_indexes

    storage = Storage(settings)
    table = storage.db.open_table(FaceRow.TABLE)
    real = table.to_arrow().select(["camera_id", "segment_id", "thumb_uri", "model"])
    have = table.count_rows()
    if total <= have:
        return
    rng = np.random.default_rng(11)
    n = total - have
    centers = rng.normal(0, 1, (n // PER_PERSON + 1, DIM)) * 0.25
    started = time.perf_counter()
    chunk = 200_000
    for start in range(0, n, chunk):
        rows = synthetic_faces(start, min(chunk, n - start), centers, rng)
        pick = pa.array(rng.integers(0, real.num_rows, rows.num_rows))
        ids = pa.array([f"synthetic-{i}" for i in range(start, start + rows.num_rows)])
        for name, column in (
            ("id", ids),
            *((c, real.column(c).take(pick)) for c in ("camera_id", "segment_id", "thumb_uri", "model")),
        ):
            rows = rows.set_column(rows.schema.get_field_index(name), name, column)
        table.add(rows)
    added = time.perf_counter() - started
    started = time.perf_counter()
    report = ensure_search_indexes(storage, settings)
    print(
        f"faces table: {have} sample rows + {n} synthetic = {table.count_rows()} rows "
        f"(written in {added:.0f} s); indexes in {time.perf_counter() - started:.0f} s: {report}"
    )


def _run_client(client: Client, kinds: list[str], until: float, offset: int, out: dict[str, list]) -> None:
    calls = {"face": client.face, "plate": client.plate_search, "alerts": client.alerts}
    i = offset
    while time.monotonic() < until:
        kind = kinds[i % len(kinds)]
        i += 1
        start = time.perf_counter()
        try:
            response = calls[kind]()
            ok = 200 <= response.status_code < 300
            error = "" if ok else f"{response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - start
        out[kind].append((elapsed, error))


def _wait_healthy(base: str, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"citywatch serve exited ({process.returncode})")
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("citywatch serve did not answer in time")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", required=True, help="an indexed storage root (e.g. ./data after the demo)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--mix", default="face,plate,alerts", help="request kinds each client cycles through")
    parser.add_argument("--in-place", action="store_true", help="use --root itself, not a copy")
    parser.add_argument(
        "--face-rows", type=int, default=0, help="grow the faces table to this many rows first"
    )
    args = parser.parse_args()
    kinds = [k.strip() for k in args.mix.split(",") if k.strip()]
    if not kinds or set(kinds) - {"face", "plate", "alerts"}:
        raise SystemExit("--mix: a comma list of face, plate, alerts")
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)

    source = Path(args.root).resolve()
    truth = load_ground_truth(source / "sample" / "ground_truth.json")
    probe = next(source / p.probe for p in truth.people if p.probe and p.in_footage)
    plate = next(v.plate for v in truth.vehicles if v.max_plate_px >= 80)

    work = Path(tempfile.mkdtemp(prefix="citywatch-load-"))
    root = source if args.in_place else work / "data"
    if not args.in_place:
        shutil.copytree(source, root, symlinks=True)
    state = work / "state"
    own_prefect = "PREFECT_API_URL" not in os.environ
    settings = Settings(storage__root=str(root), storage__state_dir=str(state))
    storage = Storage(settings)
    if args.face_rows:
        grow_faces(settings, args.face_rows)
    passwords = {}
    for i in range(args.clients):
        name = f"load-investigator-{i}"
        passwords[name] = secrets.token_urlsafe(12)
        if find_user(storage, name) is None:
            add_user(storage, name, ["investigator"], passwords[name], "benchmark")
        else:
            from citywatch.governance.users import set_password

            set_password(storage, name, passwords[name])
    try:
        with serving(root, state, work) as base:
            run_clients(base, passwords, probe, plate, kinds, args)
    finally:
        if own_prefect:
            stop_prefect_server(str(state))
        if not args.in_place:
            shutil.rmtree(work, ignore_errors=True)


@contextmanager
def serving(root: Path, state: Path, work: Path) -> Iterator[str]:
    """`citywatch serve` on ``root`` as its own process on a free loopback port (the Prefect
    server PREFECT_API_URL names, else one in ``state``); yields its base URL, stops it after."""
    api = ensure_prefect_server(str(state))
    env = {
        **os.environ,
        "PREFECT_API_URL": api,
        "CITYWATCH_STORAGE__STATE_DIR": str(state),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("CITYWATCH_API_URL", None)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "citywatch.cli.main", "--root", str(root), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(work / "serve.log").open("wb"),
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, process)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def run_clients(
    base: str, passwords: dict[str, str], probe: Path, plate: str, kinds: list[str], args: argparse.Namespace
) -> None:
    """Every client signed in, one warm-up search each kind, then the timed loop; prints the report."""
    clients = [Client(base, n, pw, probe, plate) for n, pw in passwords.items()]
    clients[0].face()  # warm-up: models loaded, first flow run registered
    clients[0].plate_search()
    results: dict[str, list] = defaultdict(list)
    per_client = [defaultdict(list) for _ in clients]
    started = time.monotonic()
    until = started + args.seconds
    threads = [
        threading.Thread(target=_run_client, args=(c, kinds, until, i, per_client[i]))
        for i, c in enumerate(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    for part in per_client:
        for kind, rows in part.items():
            results[kind].extend(rows)
    _report(results, wall, args.clients, kinds)


def _report(results: dict[str, list], wall: float, clients: int, kinds: list[str]) -> None:
    print(f"{clients} clients, {wall:.1f} s (load average {os.getloadavg()[0]:.1f})")
    print(f"{'kind':<8} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6}")
    everything: list[tuple[float, str]] = []
    for kind in [*kinds, "all"]:
        rows = everything if kind == "all" else results.get(kind, [])
        if kind != "all":
            everything.extend(rows)
        times = [t * 1000 for t, _ in rows]
        errors = [e for _, e in rows if e]
        print(
            f"{kind:<8} {len(rows):>8} {len(rows) / wall:>7.2f} {_percentile(times, 50):>8.0f} "
            f"{_percentile(times, 95):>8.0f} {_percentile(times, 99):>8.0f} {len(errors):>6}"
        )
        if errors and kind != "all":
            print(f"         first error: {errors[0]}")
    summary = {
        k: {"n": len(v), "p50_ms": statistics.median([t * 1000 for t, _ in v]) if v else None}
        for k, v in results.items()
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
