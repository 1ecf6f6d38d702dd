"""A small, realistic, deterministic CCTV dataset for demos, tests and CI.

``generate_sample(out_dir)`` writes::

    out_dir/cameras.yaml                          the camera registry
    out_dir/footage/<camera_id>/<YYYYMMDDTHHMMSSZ>.mp4   H.264 segments
    out_dir/sample/ground_truth.json              segments, people, face appearances
    out_dir/sample/probes/<person_id>.jpg         photos an investigator would search with

Real faces (``citywatch.media``) walk on drawn bodies across street photos and real
pedestrian video. Layout of the modules: ``sample_faces`` (identities, head sprites,
probes), ``sample_scene`` (backgrounds, sprites, camera look), ``sample_cameras``
(sites, cameras.yaml), ``sample_plan`` (who walks where), ``sample_video`` (render and
encode), ``sample_truth`` (ground-truth rows and JSON).

Extending: vehicles with plates are another ``Sprite`` (``sample_scene``) placed by a
planner like ``sample_plan`` and added to each ``SegmentJob.sprites``, with their own
truth rows; a mobile patrol-car camera is a ``CameraSite`` with ``kind="mobile"``, a
``Background`` that moves, and a ``<ts>.gps.csv`` written beside its segment.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from citywatch.media import fetch_media
from citywatch.sample_cameras import SITES, CameraSite, write_cameras_yaml
from citywatch.sample_faces import PEOPLE, PersonSource, make_head_sprite, read_source, write_probe
from citywatch.sample_plan import Placement, SampleConfig, appearance_truth, plan_people
from citywatch.sample_truth import (
    GroundTruth,
    PersonTruth,
    SegmentTruth,
    load_ground_truth,
)
from citywatch.sample_video import SegmentJob, render_segment

__all__ = ["BASE_TIME", "SampleManifest", "generate_sample", "load_ground_truth", "GroundTruth"]

log = logging.getLogger(__name__)

BASE_TIME = datetime(2026, 11, 20, 8, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class SampleManifest:
    """What ``generate_sample`` wrote; paths are absolute."""

    root: Path
    camera_ids: list[str]
    segment_keys: list[str]  # relative to root: footage/<camera_id>/<ts>.mp4
    cameras_path: Path
    ground_truth_path: Path
    probes: dict[str, Path]  # person_id -> probe photo (people with a probe only)
    people_in_footage: list[str]
    people_absent: list[str]


def segment_start(site: CameraSite, segment_index: int, segment_seconds: float) -> datetime:
    return BASE_TIME + timedelta(seconds=site.offset_s + segment_index * segment_seconds)


def segment_key(camera_id: str, start: datetime) -> str:
    return f"footage/{camera_id}/{start:%Y%m%dT%H%M%SZ}.mp4"


def _jobs(root: Path, cfg: SampleConfig, placements: list[Placement]) -> list[SegmentJob]:
    jobs = []
    for c, site in enumerate(SITES):
        for k in range(cfg.segments_per_camera):
            start = segment_start(site, k, cfg.segment_seconds)
            sprites = tuple(p.track for p in placements
                            if p.camera_index == c and p.segment_index == k)
            jobs.append(SegmentJob(root / segment_key(site.camera_id, start), site, c, k, start,
                                   sprites, cfg))
    return jobs


def _warn_stale_footage(jobs: list[SegmentJob]) -> None:
    """Footage left from an earlier, different sample would be indexed without truth."""
    written = {job.path for job in jobs}
    for folder in {job.path.parent for job in jobs}:
        stale = sorted(p.name for p in folder.glob("*.mp4") if p not in written)
        if stale:
            log.warning("%s holds footage this sample did not write: %s", folder, stale)


def _render_all(jobs: list[SegmentJob], workers: int) -> None:
    if workers <= 1:
        for job in jobs:
            render_segment(job)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sample-render") as pool:
        for _ in pool.map(render_segment, jobs):
            pass


def _people_truth(people: tuple[PersonSource, ...], shown: set[str],
                  probes: dict[str, Path], root: Path) -> tuple[PersonTruth, ...]:
    rel = {pid: path.relative_to(root).as_posix() for pid, path in probes.items()}
    return tuple(
        PersonTruth(
            person_id=p.person_id, source=p.source, source_box=p.face_box,
            probe=rel.get(p.person_id),
            probe_kind=p.probe_kind.value, in_footage=p.person_id in shown,
            probe_is_main=p.must_appear and p.person_id in probes,
        )
        for p in people
    )


def _ground_truth(root: Path, cfg: SampleConfig, jobs: list[SegmentJob],
                  placements: list[Placement], probes: dict[str, Path]) -> GroundTruth:
    by_slot = {(j.camera_index, j.segment_index): j for j in jobs}
    segments = tuple(
        SegmentTruth(j.site.camera_id, j.path.relative_to(root).as_posix(), j.start,
                     float(cfg.segment_seconds))
        for j in jobs
    )
    appearances = []
    for p in sorted(placements, key=lambda p: (p.camera_index, p.track.t_start)):
        job = by_slot[(p.camera_index, p.segment_index)]
        key = job.path.relative_to(root).as_posix()
        appearances.append(appearance_truth(p, job.site, key, job.start, cfg))
    shown = {p.person_id for p in placements}
    return GroundTruth(cfg.seed, cfg.fps, cfg.size, segments,
                       _people_truth(PEOPLE, shown, probes, root), tuple(appearances))


def generate_sample(
    out_dir: Path,
    *,
    seed: int = 7,
    segments_per_camera: int = 2,
    segment_seconds: float = 30.0,
    fps: int = 15,
    width: int = 1280,
    height: int = 720,
    media_dir: Path | None = None,
    workers: int | None = None,
) -> SampleManifest:
    """Write the sample dataset into ``out_dir`` (deterministic from ``seed``).

    ``workers`` threads render segments in parallel (default: CPU count, at most 4; 1
    renders on the calling thread); the output does not depend on it. Files of the same
    names are replaced; other files are left alone, so ``out_dir`` is best empty.
    Raises BadInputError for settings it cannot honour (e.g. segments too short to
    show the main people at two cameras).
    """
    began = time.monotonic()
    cfg = SampleConfig(seed, segments_per_camera, segment_seconds, fps, width, height)
    cfg.validate()
    root = Path(out_dir).resolve()
    media = fetch_media(media_dir)
    heads = {p.person_id: make_head_sprite(read_source(p.source, media), p.face_box)
             for p in PEOPLE if p.in_footage}
    placements = plan_people(PEOPLE, heads, SITES, cfg, np.random.default_rng(seed))
    jobs = _jobs(root, cfg, placements)
    _render_all(jobs, workers if workers is not None else min(4, os.cpu_count() or 1))
    _warn_stale_footage(jobs)
    probes = {}
    for person in PEOPLE:
        dest = root / "sample" / "probes" / f"{person.person_id}.jpg"
        if write_probe(person, media, dest):
            probes[person.person_id] = dest
    write_cameras_yaml(root / "cameras.yaml", SITES, cfg.size)
    truth = _ground_truth(root, cfg, jobs, placements, probes)
    truth_path = root / "sample" / "ground_truth.json"
    truth_path.write_text(truth.to_json(), encoding="utf-8")
    shown = {p.person_id for p in placements}
    log.info("sample of %d segments, %d walks written to %s in %.1f s", len(jobs),
             len(placements), root, time.monotonic() - began)
    return SampleManifest(
        root=root,
        camera_ids=[site.camera_id for site in SITES],
        segment_keys=[s.key for s in truth.segments],
        cameras_path=root / "cameras.yaml",
        ground_truth_path=truth_path,
        probes=probes,
        people_in_footage=[p.person_id for p in PEOPLE if p.person_id in shown],
        people_absent=[p.person_id for p in PEOPLE if p.person_id not in shown],
    )
