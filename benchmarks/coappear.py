"""Grouping face tracks and co-appearance at scale (not a timed test).

    python benchmarks/coappear.py [--tracks 100000] [--per-identity 5] [--subject-sightings 50]

1. Grouping: ``--tracks`` synthetic 128-d track templates of ``tracks / per-identity``
   identities (centres spread like dlib embeddings of different people, ~0.8 apart; each
   track a degraded view: noise of a random strength, ~0.15-0.45 from its centre),
   grouped at the 0.55 threshold. Prints wall time, peak memory (ru_maxrss) and BCubed
   precision / recall against the identities.
2. Co-appearance: the same tracks written as ``faces`` rows over 20 cameras and 7 days
   in a temporary LanceDB, one subject with ``--subject-sightings`` sightings, a
   companion at each; prints the time of ``find_companions`` and whether the companion
   is the top group.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from citywatch.schemas import FaceRow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import faces_table
from citywatch.tasks.search.coappear import find_companions
from citywatch.tasks.search.grouping import group_labels

DIM = 128
T0 = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
WEEK_S = 7 * 86400


def templates(tracks: int, per_identity: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    identities = max(1, tracks // per_identity)
    centres = rng.normal(0.0, 0.8 / np.sqrt(2 * DIM), (identities, DIM)).astype(np.float32)
    labels = np.arange(tracks) % identities
    strength = rng.uniform(0.15, 0.42, tracks).astype(np.float32) / np.sqrt(DIM)  # degraded views
    noise = rng.normal(0.0, 1.0, (tracks, DIM)).astype(np.float32) * strength[:, None]
    return centres[labels] + noise, labels


def bcubed(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """BCubed precision and recall, from the contingency counts (exact, O(n))."""
    pairs, counts = np.unique(np.stack([pred, truth]), axis=1, return_counts=True)
    pred_sizes = np.bincount(pred)
    truth_sizes = np.bincount(truth)
    precision = float((counts * counts / pred_sizes[pairs[0]]).sum()) / len(pred)
    recall = float((counts * counts / truth_sizes[pairs[1]]).sum()) / len(pred)
    return precision, recall


def bench_grouping(vectors: np.ndarray, labels: np.ndarray, threshold: float) -> None:
    start, cpu = time.perf_counter(), time.process_time()
    pred = group_labels(vectors, threshold)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    precision, recall = bcubed(pred, labels)
    print(
        f"grouping {len(vectors):,} tracks ({labels.max() + 1:,} identities): {wall:.1f} s "
        f"({cpu:.1f} s CPU, {os.getloadavg()[0]:.0f} load), "
        f"peak RSS {peak_mb:,.0f} MB, BCubed precision {precision:.4f} recall {recall:.4f}"
    )


def bench_coappear(vectors: np.ndarray, subject_sightings: int, threshold: float) -> None:
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        storage = Storage(
            Settings(storage__root=str(Path(tmp) / "data"), storage__state_dir=str(Path(tmp) / "state"))
        )
        count = len(vectors)
        cams = rng.integers(0, 20, count)
        starts = rng.uniform(0, WEEK_S, count)
        subject = rng.normal(0, 0.05, DIM).astype(np.float32)
        companion = rng.normal(0, 0.05, DIM).astype(np.float32)
        extra = []  # (vector, camera, start): the subject's sightings and the companion next to them
        for i in range(subject_sightings):
            when = float(rng.uniform(0, WEEK_S))
            extra.append((subject + rng.normal(0, 0.01, DIM).astype(np.float32), i % 20, when))
            extra.append((companion + rng.normal(0, 0.01, DIM).astype(np.float32), i % 20, when + 4))
        all_vectors = np.concatenate([vectors, np.stack([e[0] for e in extra])])
        all_cams = np.concatenate([cams, [e[1] for e in extra]])
        all_starts = np.concatenate([starts, [e[2] for e in extra]])
        table = _faces(all_vectors, all_cams, all_starts)
        faces_table(storage.db, DIM).add(table)
        subject_tracks = [f"t{count + 2 * i}" for i in range(subject_sightings)]
        start = time.perf_counter()
        groups = find_companions(storage, subject_tracks, window_s=10, threshold=threshold)
        wall = time.perf_counter() - start
        top = {s.face_id for s in groups[0].sightings} if groups else set()
        want = {f"t{count + 2 * i + 1}" for i in range(subject_sightings)}
        print(
            f"co-appearance, {subject_sightings} subject sightings in {len(all_vectors):,} tracks: "
            f"{wall:.2f} s, {len(groups)} groups, companion is the top group: {top == want}"
        )


def _faces(vectors: np.ndarray, cams: np.ndarray, starts: np.ndarray) -> object:
    import pyarrow as pa

    count = len(vectors)
    begin = [T0 + dt.timedelta(seconds=float(s)) for s in starts]
    end = [b + dt.timedelta(seconds=6) for b in begin]
    ids = [f"t{i}" for i in range(count)]
    camera = [f"cam-{int(c):02d}" for c in cams]
    columns = {
        "id": ids,
        "segment_id": [f"{c}/seg" for c in camera],
        "camera_id": camera,
        "ts": [b + dt.timedelta(seconds=2) for b in begin],
        "bbox": [[0.0, 0.0, 50.0, 60.0]] * count,
        "det_score": [0.9] * count,
        "quality": [0.5] * count,
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), DIM),
        "track_id": ids,
        "track_start": begin,
        "track_end": end,
        "thumb_uri": [""] * count,
        "lat": [None] * count,
        "lon": [None] * count,
        "model": ["bench"] * count,
        "template": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), DIM),
        "face_px": [50.0] * count,
    }
    return pa.table(columns, schema=FaceRow.schema(DIM))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--per-identity", type=int, default=5)
    parser.add_argument("--subject-sightings", type=int, default=50)
    parser.add_argument("--threshold", type=float, default=0.55)
    args = parser.parse_args()
    vectors, labels = templates(args.tracks, args.per_identity)
    bench_grouping(vectors, labels, args.threshold)
    bench_coappear(vectors, args.subject_sightings, args.threshold)


if __name__ == "__main__":
    main()
