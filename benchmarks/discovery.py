"""Discovery: what one index tick costs to find new segments among many old ones.

    python benchmarks/discovery.py [--cameras 100] [--per-camera 1000] [--repeat 5]
        [--dir DIR] [--s3 [--events]]

Builds ``cameras x per-camera`` old segments (empty files: listing and planning never
open them) and as many ``segments`` rows marked done (one batch), under a temporary
storage root (``--dir``: where to make it; default the system temp folder; ``--s3``:
a bucket on moto's S3 server in this process instead, files written with PutObject).

Then measures ``plan_index`` (what ``ingest-new`` does each tick before it decides
whether there is anything to index), median of ``--repeat`` runs:

- full: the full listing (every file stat'ed) and the whole ``segments`` table read,
  as every tick did before incremental discovery (mode ``reconcile``);
- incremental, nothing new: each camera folder listed from its mark, the listed
  segments looked up by id (mode ``incremental``);
- incremental, one new segment dropped into a camera folder (found: asserted);
- the index run's status snapshot: ``pipeline_status`` (a full-listing run's artifact,
  ``citywatch status``, ``/metrics``) lists everything and reads the whole table;
  ``run_status`` (an incremental run's artifact) reads the marks and narrow columns;
- with ``--events`` (S3 only): the bucket then sends object-created notifications to
  an SQS queue on the same moto server, and a tick reads the queue instead of listing
  (``index.notification_queue_url``): nothing new, and one new segment (found: asserted).

Target: a tick with 100,000 old segments under 1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from citywatch.footage import format_stamp  # noqa: E402
from citywatch.schemas import SegmentRow  # noqa: E402
from citywatch.settings import Settings  # noqa: E402
from citywatch.storage import Storage  # noqa: E402
from citywatch.tables import segments_table  # noqa: E402
from citywatch.tasks.index.catalog import plan_index  # noqa: E402
from citywatch.tasks.index.discovery import known_segments, list_new, load_marks  # noqa: E402
from citywatch.tasks.status import pipeline_status, run_status  # noqa: E402

if TYPE_CHECKING:
    from tests.s3 import S3Server

BASE = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
T = TypeVar("T")


def timed(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    """Median seconds of ``repeat`` calls, and the last result."""
    times: list[float] = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def build(storage: Storage, cameras: int, per_camera: int, put: Callable[[str], None]) -> None:
    starts = [BASE + dt.timedelta(minutes=5 * m) for m in range(per_camera)]
    names = [format_stamp(s) for s in starts]
    keys = [f"cam-{c:05d}/{name}" for c in range(cameras) for name in names]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put, keys, chunksize=256))
    folder = storage.url("footage")
    n = len(keys)
    rows = pa.table(
        {
            "id": keys,
            "camera_id": [k.split("/")[0] for k in keys],
            "uri": [f"{folder}/{k}.mp4" for k in keys],
            "start": starts * cameras,
            "end": starts * cameras,
            "size_bytes": [0] * n,
            "sha256": [""] * n,
            "state": ["done"] * n,
            "error": [""] * n,
            "model": ["benchmark"] * n,
            "frames_decoded": [0] * n,
            "frames_analysed": [0] * n,
            "faces": [0] * n,
            "plates_rejected_text": [0] * n,
            "updated_at": [dt.datetime.now(dt.UTC)] * n,
        },
        schema=SegmentRow.SCHEMA,
    )
    segments_table(storage.db).add(rows)
    took = time.perf_counter() - started
    print(f"built {n:,} segments ({cameras} cameras x {per_camera}) in {took:.1f} s")


def run(storage: Storage, cameras: int, per_camera: int, repeat: int, put: Callable[[str], None]) -> None:
    footage = storage.url("footage")
    full_s, full = timed(lambda: plan_index(storage, footage, mode="reconcile"), repeat)
    print(f"full listing + whole table: {full_s * 1000:8.1f} ms  ({len(full.discovery.segments):,} listed)")
    idle_s, idle = timed(lambda: plan_index(storage, footage, mode="incremental"), repeat)
    print(f"incremental, nothing new:   {idle_s * 1000:8.1f} ms  ({len(idle.discovery.segments):,} listed)")
    marks = load_marks(storage, footage)
    marks_s, _ = timed(lambda: load_marks(storage, footage), repeat)
    list_s, listing = timed(lambda: list_new(storage, footage, marks), repeat)
    ids = [o.key.rsplit(".", 1)[0] for o in listing.files]
    look_s, _ = timed(lambda: known_segments(storage, ids), repeat)
    print(
        f"  of which: marks {marks_s * 1000:.1f} ms, listing {list_s * 1000:.1f} ms, "
        f"lookup of {len(ids)} ids {look_s * 1000:.1f} ms"
    )
    new_times: list[float] = []
    for i in range(repeat):
        key = f"cam-{(i * 7) % cameras:05d}/{format_stamp(BASE + dt.timedelta(minutes=5 * per_camera + i))}"
        put(key)
        started = time.perf_counter()
        tick = plan_index(storage, footage, mode="incremental")
        new_times.append(time.perf_counter() - started)
        assert key in [r.id for r in tick.pending], f"{key} not found"
    print(f"incremental, one new segment: {statistics.median(new_times) * 1000:8.1f} ms  (found each time)")
    status_s, _ = timed(lambda: pipeline_status(storage, footage, with_storage=False), 1)
    print(f"index run status snapshot: {status_s * 1000:8.1f} ms  (a full-listing run's artifact)")
    newest = {r.camera_id: r.start for r in tick.discovery.segments}
    pending = [r.id for r in tick.pending]
    run_s, _ = timed(lambda: run_status(storage, footage, newest, pending), repeat)
    print(f"incremental run's artifact snapshot: {run_s * 1000:8.1f} ms  (marks + narrow reads)")
    met = "met" if max(idle_s, *new_times) < 1 else "NOT met"
    print(f"speed-up of a tick: {full_s / idle_s:.0f}x; target < 1 s: {met}")


def run_events(server: S3Server, root_url: str, cameras: int, per_camera: int, repeat: int) -> None:
    """Ticks that read object-created notifications from SQS instead of listing."""
    import boto3

    from tests.s3 import KEY, REGION

    creds = {"aws_access_key_id": KEY, "aws_secret_access_key": KEY, "region_name": REGION}
    sqs = boto3.client("sqs", endpoint_url=server.endpoint, **creds)
    # a long visibility timeout: a pending segment's message stays taken during the run
    queue = sqs.create_queue(QueueName="footage", Attributes={"VisibilityTimeout": "600"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bucket, _, prefix = root_url.removeprefix("s3://").partition("/")
    boto3.client("s3", endpoint_url=server.endpoint, **creds).put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": f"{prefix}/footage/"}]}},
                }
            ]
        },
    )
    storage = Storage(server.settings(root_url, index__notification_queue_url=queue))
    fs, root = storage.fs(storage.root)
    footage = storage.url("footage")
    idle_s, idle = timed(lambda: plan_index(storage, footage, mode="incremental"), repeat)
    print(f"events, nothing new:        {idle_s * 1000:8.1f} ms  ({len(idle.discovery.segments):,} notified)")
    new_times: list[float] = []
    for i in range(repeat):
        stamp = format_stamp(BASE + dt.timedelta(minutes=5 * per_camera + 100 + i))
        key = f"cam-{(i * 11) % cameras:05d}/{stamp}"
        fs.pipe_file(f"{root}/footage/{key}.mp4", b"")
        started = time.perf_counter()
        tick = plan_index(storage, footage, mode="incremental")
        new_times.append(time.perf_counter() - started)
        assert [r.id for r in tick.pending] == [key], f"{key} not found: {tick.pending}"
    print(f"events, one new segment:    {statistics.median(new_times) * 1000:8.1f} ms  (found each time)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=100)
    parser.add_argument("--per-camera", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where to make the temporary root")
    parser.add_argument("--s3", action="store_true", help="a bucket on moto's S3 server instead")
    parser.add_argument(
        "--events", action="store_true", help="with --s3: also ticks that read S3 notifications from SQS"
    )
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.s3:
        from tests.s3 import moto_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise

        with moto_server() as server:
            root_url = f"{server.bucket()}/city"
            storage = Storage(server.settings(root_url))
            fs, root = storage.fs(storage.root)

            def put_s3(key: str) -> None:
                fs.pipe_file(f"{root}/footage/{key}.mp4", b"")

            build(storage, args.cameras, args.per_camera, put_s3)
            run(storage, args.cameras, args.per_camera, args.repeat, put_s3)
            if args.events:
                run_events(server, root_url, args.cameras, args.per_camera, args.repeat)
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="citywatch-discovery-", dir=args.dir))
    try:
        storage = Storage(Settings(storage__root=str(scratch / "data")))
        footage = scratch / "data" / "footage"
        for c in range(args.cameras):
            (footage / f"cam-{c:05d}").mkdir(parents=True)

        def put_local(key: str) -> None:
            os.close(os.open(f"{footage}/{key}.mp4", os.O_CREAT | os.O_WRONLY, 0o644))

        print(f"root {scratch}")
        build(storage, args.cameras, args.per_camera, put_local)
        run(storage, args.cameras, args.per_camera, args.repeat, put_local)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
