"""Alert latency: a segment file appears -> its alert row -> its webhook delivery.

    python benchmarks/alert_latency.py [--segments 8] [--gap 10] [--clip-seconds 6]
        [--ingest-interval 5] [--sweep-interval 10] [--sample DIR] [--cost-only]

The local stack, all real: a temporary Prefect server, the fast-ingest and sweep
watchers as separate processes (``citywatch ingest-new --watch`` and ``citywatch
sweep --watch``: one Prefect flow run per tick, in-process indexing, no Dask cluster
start per run), LanceDB on local disk and an HTTP receiver as the webhook.

Footage: short segments cut from the sample (``citywatch sample``) around a pass of
a watchlisted person, each with a moving rendered HK plate pasted in. People are
enrolled from their probe photos, plates as exact marks. Each segment is dropped into
``footage/`` atomically (hidden name, then rename), ``--gap`` seconds apart; the
alerts table is polled every 0.2 s. Prints per alert and p50 / p95 / max of
file -> alert row and file -> webhook delivery; goal p95 < 15 s.

Then the sweep's cost: 10,000 new face rows against 1,000 face entries and 10,000
plate rows against 1,000 plate entries (matching + alert write + watermark).

Deployments instead of watchers: each scheduled run starts a new process (imports
and model load, a few seconds) and runs start only when the worker or runner polls:
set PREFECT_WORKER_QUERY_SECONDS / PREFECT_RUNNER_POLL_FREQUENCY to ~2 s (default 10).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.sweep_cost import sweep_cost  # noqa: E402
from citywatch.footage import format_stamp  # noqa: E402
from citywatch.governance.auth import write_demo_users  # noqa: E402
from citywatch.governance.webhooks import add_target  # noqa: E402
from citywatch.sample.plate_render import paste_plate, render_plate  # noqa: E402
from citywatch.settings import Settings  # noqa: E402
from citywatch.stack.prefect_server import QUIET_ENV, free_port, start_prefect_server  # noqa: E402
from citywatch.storage import Storage  # noqa: E402

PLATES = ("AB1234", "KT8080", "HX517", "PM2468", "CY903", "LV1357", "DE4321", "RS66")


# --- footage ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    path: Path  # prepared, outside footage/
    camera_id: str
    segment_id: str  # <camera>/<stamp> once dropped
    person: str
    plate: str


def cut_clip(src: Path, dst: Path, start_s: float, duration_s: float, plate: str) -> None:
    """``duration_s`` of ``src`` from ``start_s``, with ``plate`` driving across the bottom."""
    sign = render_plate(plate, style="rear", width_px=200)
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        rate = vin.average_rate or Fraction(25)
        vout = out.add_stream("libx264", rate=rate)
        w, h = vin.codec_context.width, vin.codec_context.height
        vout.width, vout.height, vout.pix_fmt = w, h, "yuv420p"
        vout.options = {"preset": "ultrafast", "crf": "20"}
        total = max(1, int(duration_s * float(rate)))
        n = 0
        for frame in inp.decode(vin):
            t = float(frame.pts * vin.time_base)
            if not start_s <= t < start_s + duration_s:
                continue
            x = int(w * 0.15 + (w * 0.5) * n / total)
            image = paste_plate(frame.to_ndarray(format="bgr24"), sign, x, int(h * 0.78))
            new = av.VideoFrame.from_ndarray(image, format="bgr24")
            new.pts, new.time_base = n, 1 / Fraction(rate)
            out.mux(vout.encode(new))
            n += 1
        out.mux(vout.encode())


def prepare(sample: Path, root: Path, clips_dir: Path, count: int, clip_s: float) -> list[Clip]:
    from citywatch.sample.dataset import load_ground_truth

    truth = load_ground_truth(sample / "sample" / "ground_truth.json")
    wanted = {p.person_id for p in truth.people if p.probe and p.in_footage}
    passes = [a for a in truth.appearances if a.person_id in wanted]
    base = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.UTC)
    clips = []
    for i in range(count):
        a = passes[i % len(passes)]
        src = sample / a.key
        seg_start = dt.datetime.strptime(src.stem, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        stamp = format_stamp(base + dt.timedelta(minutes=i))
        path = clips_dir / f"{a.camera_id}_{stamp}.mp4"
        cut_clip(
            src, path, max(0.0, (a.start - seg_start).total_seconds() - 0.5), clip_s, PLATES[i % len(PLATES)]
        )
        clips.append(Clip(path, a.camera_id, f"{a.camera_id}/{stamp}", a.person_id, PLATES[i % len(PLATES)]))
    return clips


def drop(clip: Clip, footage: Path) -> float:
    """Put the clip under footage/ atomically; returns the wall time it appeared."""
    folder = footage / clip.camera_id
    folder.mkdir(parents=True, exist_ok=True)
    hidden = folder / f".{clip.segment_id.split('/')[1]}.mp4"
    shutil.copyfile(clip.path, hidden)
    hidden.rename(folder / f"{clip.segment_id.split('/')[1]}.mp4")
    return time.time()


# --- receiver and watchers ---------------------------------------------------------------


BENCH_SECRET = "whsec_" + base64.b64encode(b"alert-latency-benchmark-secret-32").decode()


class Receiver:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        arrived = self.arrived

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                arrived.setdefault(self.headers["Idempotency-Key"], time.time())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"


def enrol(settings: Settings, sample: Path, clips: list[Clip]) -> None:
    from citywatch.governance.watchlist import EntryRequest, add_plate, approve
    from citywatch.governance.watchlist_faces import enrol_face
    from citywatch.models.loaders import face_model_for

    storage = Storage(settings)
    model = face_model_for(settings)
    now = dt.datetime.now(dt.UTC)
    base = dict(
        case_id="BENCH-1",
        justification="alert latency benchmark, synthetic footage",
        requested_by="demo-investigator",
        expires_at=now + dt.timedelta(days=1),
    )
    for person in sorted({c.person for c in clips}):
        photo = sample / "sample" / "probes" / f"{person}.jpg"
        row = enrol_face(
            storage,
            model,
            [(photo.read_bytes(), str(photo))],
            EntryRequest(label=person, reason="missing", **base),
            default_threshold=model.embedder.default_threshold,
            max_days=30,
        )
        approve(storage, row.id, "demo-supervisor")
    for plate in sorted({c.plate for c in clips}):
        row = add_plate(
            storage,
            plate,
            EntryRequest(label=plate, reason="stolen_vehicle", **base),
            default_max_distance=settings.sweep.plate_max_distance,
            max_days=30,
        )
        approve(storage, row.id, "demo-supervisor")


def start_watchers(settings: Settings, api: str, log_dir: Path) -> list[subprocess.Popen]:
    env = {
        **os.environ,
        **QUIET_ENV,
        "PREFECT_API_URL": api,
        "CITYWATCH_ALERTS__WEBHOOK_ALLOWED_HOSTS": json.dumps(settings.alerts.webhook_allowed_hosts),
        "CITYWATCH_WEBHOOK_SECRETS": json.dumps({"bench": BENCH_SECRET}),
        "CITYWATCH_STORAGE__STATE_DIR": settings.storage.state_dir,
        "CITYWATCH_DASK__WORKERS": "1",
        "CITYWATCH_INDEX__INGEST_INTERVAL_S": str(settings.index.ingest_interval_s),
        "CITYWATCH_SWEEP__INTERVAL_S": str(settings.sweep.interval_s),
    }
    procs = []
    for command in ("ingest-new", "sweep"):
        log = open(log_dir / f"{command}.log", "wb")  # noqa: SIM115 - lives as long as the child
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "citywatch.cli.main",
                    "--root",
                    settings.storage.root,
                    "--user",
                    "demo-admin",
                    command,
                    "--watch",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return procs


def wait_warm(api: str, timeout_s: float = 180.0) -> None:
    """Until both watchers have finished a flow run (imports done, model loaded)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deadline = time.monotonic() + timeout_s
    with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            names = set()
            for name in ("ingest-new", "watchlist-sweep"):
                runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[name])))
                if any(r.state and r.state.is_completed() for r in runs):
                    names.add(name)
            if len(names) == 2:
                return
            time.sleep(1.0)
    raise RuntimeError("watchers did not complete a first run in time; see their logs")


# --- measuring ---------------------------------------------------------------------------


def poll_alerts(settings: Settings, seen: dict[str, tuple[float, str, str]]) -> None:
    storage = Storage(settings)
    if "alerts" not in storage.db.list_tables().tables:
        return
    rows = storage.db.open_table("alerts").search().select(["id", "segment_id", "kind"])
    now = time.time()
    for row in rows.limit(None).to_arrow().to_pylist():
        seen.setdefault(row["id"], (now, row["segment_id"], row["kind"]))


def stats(values: list[float]) -> str:
    if not values:
        return "n/a"
    p95 = float(np.percentile(values, 95))
    return f"p50 {statistics.median(values):5.1f} s  p95 {p95:5.1f} s  max {max(values):5.1f} s"


def latency(args: argparse.Namespace, work: Path) -> None:
    sample = Path(args.sample) if args.sample else work / "sample"
    if not args.sample:
        from citywatch.sample.dataset import generate_sample

        print("generating the sample footage ...", flush=True)
        generate_sample(sample, seed=7, segments_per_camera=2, segment_seconds=20.0)
    root = work / "root"
    (root / "footage").mkdir(parents=True)
    shutil.copy(sample / "cameras.yaml", root / "cameras.yaml")
    receiver = Receiver()
    settings = Settings(
        storage__root=str(root),
        storage__state_dir=str(work / "state"),
        user="demo-admin",
        alerts__webhook_allowed_hosts=["127.0.0.1"],
        dask__workers=1,
        index__ingest_interval_s=args.ingest_interval,
        sweep__interval_s=args.sweep_interval,
    )
    write_demo_users(Storage(settings))
    add_target(Storage(settings), "bench", receiver.url, "demo-admin")
    clips_dir = work / "clips"
    clips_dir.mkdir()
    print(f"cutting {args.segments} segments of {args.clip_seconds:g} s ...", flush=True)
    clips = prepare(sample, root, clips_dir, args.segments, args.clip_seconds)
    enrol(settings, sample, clips)
    api, server_pid = start_prefect_server(work / "prefect")
    procs = start_watchers(settings, api, work)
    try:
        print(f"watchers starting (logs in {work}) ...", flush=True)
        wait_warm(api)
        dropped: dict[str, float] = {}
        seen: dict[str, tuple[float, str, str]] = {}
        for clip in clips:
            dropped[clip.segment_id] = drop(clip, root / "footage")
            end = time.monotonic() + args.gap
            while time.monotonic() < end:
                poll_alerts(settings, seen)
                time.sleep(0.2)
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            poll_alerts(settings, seen)
            faces = {seg for _, seg, kind in seen.values() if kind == "face"}
            if faces >= set(dropped) and set(seen) <= set(receiver.arrived):
                break
            time.sleep(0.2)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        os.killpg(server_pid, signal.SIGTERM)
    report(clips, dropped, seen, receiver.arrived, args)


def report(
    clips: list[Clip],
    dropped: dict[str, float],
    seen: dict[str, tuple[float, str, str]],
    arrived: dict[str, float],
    args: argparse.Namespace,
) -> None:
    print(f"\n{'segment':36} {'kind':5} {'to alert row':>12} {'to webhook':>10}")
    row_s: dict[str, list[float]] = {"face": [], "plate": []}
    hook_s: dict[str, list[float]] = {"face": [], "plate": []}
    for alert, (at, segment, kind) in sorted(seen.items(), key=lambda kv: kv[1][0]):
        if segment not in dropped:
            continue
        row_s[kind].append(at - dropped[segment])
        hook = arrived.get(alert)
        if hook is not None:
            hook_s[kind].append(hook - dropped[segment])
        print(
            f"{segment:36} {kind:5} {at - dropped[segment]:10.1f} s "
            f"{(hook - dropped[segment]) if hook else float('nan'):8.1f} s"
        )
    faces_missing = [
        c.segment_id for c in clips if c.segment_id not in {s for _, s, k in seen.values() if k == "face"}
    ]
    plates_found = len({s for _, s, k in seen.values() if k == "plate"})
    print(
        f"\n{len(clips)} segments of {args.clip_seconds:g} s, one every {args.gap:g} s; "
        f"ingest every {args.ingest_interval:g} s, sweep every {args.sweep_interval:g} s; "
        f"{os.cpu_count()} CPUs"
    )
    for kind in ("face", "plate"):
        print(f"{kind:5} file -> alert row : {stats(row_s[kind])}   ({len(row_s[kind])} alerts)")
        print(f"{kind:5} file -> webhook   : {stats(hook_s[kind])}")
    print(
        f"segments without a face alert: {faces_missing or 'none'}; segments with a plate "
        f"alert: {plates_found}/{len(clips)} (plates depend on the plate reader reading them)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument(
        "--gap",
        type=float,
        default=10.0,
        help="seconds between dropped segments (keep it above the index time of one)",
    )
    parser.add_argument("--clip-seconds", type=float, default=6.0)
    parser.add_argument("--ingest-interval", type=float, default=5.0)
    parser.add_argument("--sweep-interval", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=90.0, help="wait after the last drop")
    parser.add_argument("--sample", help="an existing `citywatch sample` root to cut from")
    parser.add_argument("--cost-only", action="store_true", help="only the sweep cost")
    args = parser.parse_args()
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    work = Path(tempfile.mkdtemp(prefix="citywatch-alert-latency-"))
    if not args.cost_only:
        latency(args, work)
    print("\nsweep cost:")
    sweep_cost(work)
    print(f"\n(work dir {work})")


if __name__ == "__main__":
    main()
