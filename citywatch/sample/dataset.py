"""A small, realistic, deterministic CCTV dataset for demos, tests and CI.

``generate_sample(out_dir)`` writes::

    out_dir/cameras.yaml                          the camera registry
    out_dir/footage/<camera_id>/<YYYYMMDDTHHMMSSZ>.mp4   H.264 segments
    out_dir/footage/<car_id>/<YYYYMMDDTHHMMSSZ>.gps.csv  the patrol car's GPS track
    out_dir/sample/ground_truth.json              segments, people, face appearances, vehicles
    out_dir/sample/probes/<person_id>.jpg         photos an investigator would search with

Real faces (``citywatch.sample.media``) walk on drawn bodies across street photos and real
pedestrian video; drawn cars with rendered HK plates drive past the fixed cameras, and
a patrol car's camera (one segment, ``kind: mobile``) passes parked cars. Layout of the
modules: ``sample_faces`` (identities, head sprites, probes), ``sample_scene``
(backgrounds, sprites, camera look), ``sample_cameras`` (sites, cameras.yaml),
``sample_plan`` (who walks where), ``sample_vehicles`` (cars, plates, where they
drive), ``sample_patrol`` (the patrol car, its route and GPS), ``sample_video`` (render
and encode), ``sample_truth`` (ground-truth rows and JSON).

People are planned first, from ``seed`` alone, so adding cars changed none of them;
cars use their own random stream and avoid faces, privacy masks and the OSD. A
companion (walking beside ``t1-schwimmer``) and a recurring unknown face are planned last, on
a third stream, clear of everyone and every car (``sample_extras``), so they moved no
one else either.
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

from citywatch.footage import format_stamp
from citywatch.gps import parse_gps_csv
from citywatch.sample.cameras import SITES, CameraSite, write_cameras_yaml
from citywatch.sample.extras import companion_pairs, plan_extras, recurring_people
from citywatch.sample.faces import PEOPLE, PersonSource, make_head_sprite, read_source, write_probe
from citywatch.sample.media import fetch_media
from citywatch.sample.patrol import PATROL, gps_csv, plan_patrol
from citywatch.sample.plan import Placement, SampleConfig, appearance_truth, plan_people
from citywatch.sample.scene import Sprite
from citywatch.sample.signs import sign_sprites
from citywatch.sample.truth import (
    GroundTruth,
    PersonTruth,
    SegmentTruth,
    VehicleTruth,
    load_ground_truth,
)
from citywatch.sample.vehicles import VehiclePlacement, VehicleTrack, plan_vehicles, vehicle_truth
from citywatch.sample.video import SegmentJob, render_segment

__all__ = ["BASE_TIME", "SampleManifest", "generate_sample", "load_ground_truth", "GroundTruth"]

log = logging.getLogger(__name__)

BASE_TIME = datetime(2026, 11, 20, 8, 0, 0, tzinfo=UTC)
_VEHICLE_STREAM = 0xCA5  # the cars' random stream: default_rng([seed, _VEHICLE_STREAM])
_EXTRAS_STREAM = 0xC0DE  # companions and recurring faces: default_rng([seed, _EXTRAS_STREAM])


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
    plates: list[str]  # every plate in the footage
    gps_keys: list[str]  # relative to root: the mobile cameras' GPS sidecars


def segment_start(site: CameraSite, segment_index: int, segment_seconds: float) -> datetime:
    return BASE_TIME + timedelta(seconds=site.offset_s + segment_index * segment_seconds)


def segment_key(camera_id: str, start: datetime) -> str:
    return f"footage/{camera_id}/{format_stamp(start)}.mp4"


def _jobs(
    root: Path,
    cfg: SampleConfig,
    placements: list[Placement],
    vehicles: list[VehiclePlacement],
    patrol: list[VehicleTrack],
) -> list[SegmentJob]:
    """One job per fixed camera and segment, then the patrol car's one segment."""
    jobs = []
    for c, site in enumerate(SITES):
        for k in range(cfg.segments_per_camera):
            start = segment_start(site, k, cfg.segment_seconds)
            sprites: tuple[Sprite, ...] = tuple(
                p.track for p in placements if p.camera_index == c and p.segment_index == k
            )
            sprites += tuple(v.track for v in vehicles if v.camera_index == c and v.segment_index == k)
            sprites += sign_sprites(site.camera_id, cfg.size)  # shop signs: text that is not a plate
            jobs.append(
                SegmentJob(root / segment_key(site.camera_id, start), site, c, k, start, sprites, cfg)
            )
    start = segment_start(PATROL, 0, cfg.segment_seconds)
    jobs.append(
        SegmentJob(
            root / segment_key(PATROL.camera_id, start), PATROL, len(SITES), 0, start, tuple(patrol), cfg
        )
    )
    return jobs


def gps_key(segment: str) -> str:
    """``footage/<camera>/<stamp>.mp4`` -> ``footage/<camera>/<stamp>.gps.csv``."""
    return segment.rsplit(".", 1)[0] + ".gps.csv"


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


def _people_truth(
    people: tuple[PersonSource, ...], shown: set[str], probes: dict[str, Path], root: Path
) -> tuple[PersonTruth, ...]:
    rel = {pid: path.relative_to(root).as_posix() for pid, path in probes.items()}
    return tuple(
        PersonTruth(
            person_id=p.person_id,
            source=p.source,
            source_box=p.face_box,
            probe=rel.get(p.person_id),
            probe_kind=p.probe_kind.value,
            in_footage=p.person_id in shown,
            probe_is_main=p.must_appear and p.person_id in probes,
        )
        for p in people
    )


def _vehicles_truth(root: Path, cfg: SampleConfig, jobs: list[SegmentJob]) -> list[VehicleTruth]:
    """Truth rows of every car, located by its camera (fixed) or GPS sidecar (mobile)."""
    rows = []
    for job in jobs:
        key = job.path.relative_to(root).as_posix()
        first_frame = job.segment_index * cfg.frames_per_segment
        cars = sorted((s for s in job.sprites if isinstance(s, VehicleTrack)), key=lambda s: s.t_start)
        if job.site.kind == "mobile":
            text = (root / gps_key(key)).read_text(encoding="utf-8")
            track = parse_gps_csv(text, gps_key(key), job.start)
            rows += [
                vehicle_truth(car, job.site.camera_id, key, job.start, first_frame, cfg, locate=track.at)
                for car in cars
            ]
        else:
            lat, lon = job.site.lat, job.site.lon
            where = None if lat is None or lon is None else (lat, lon)
            rows += [
                vehicle_truth(car, job.site.camera_id, key, job.start, first_frame, cfg, where=where)
                for car in cars
            ]
    return rows


def _ground_truth(
    root: Path,
    cfg: SampleConfig,
    jobs: list[SegmentJob],
    placements: list[Placement],
    probes: dict[str, Path],
) -> GroundTruth:
    by_slot = {(j.camera_index, j.segment_index): j for j in jobs}
    segments = tuple(
        SegmentTruth(
            j.site.camera_id,
            j.path.relative_to(root).as_posix(),
            j.start,
            float(cfg.segment_seconds),
            gps_key(j.path.relative_to(root).as_posix()) if j.site.kind == "mobile" else None,
        )
        for j in jobs
    )
    appearances = []
    for p in sorted(placements, key=lambda p: (p.camera_index, p.track.t_start)):
        job = by_slot[(p.camera_index, p.segment_index)]
        key = job.path.relative_to(root).as_posix()
        appearances.append(appearance_truth(p, job.site, key, job.start, cfg))
    shown = {p.person_id for p in placements}
    return GroundTruth(
        cfg.seed,
        cfg.fps,
        cfg.size,
        segments,
        _people_truth(PEOPLE, shown, probes, root),
        tuple(appearances),
        tuple(_vehicles_truth(root, cfg, jobs)),
        companion_pairs(PEOPLE, shown),
        recurring_people(PEOPLE, shown),
    )


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
    heads = {
        p.person_id: make_head_sprite(read_source(p.source, media), p.face_box)
        for p in PEOPLE
        if p.in_footage
    }
    placements = plan_people(PEOPLE, heads, SITES, cfg, np.random.default_rng(seed))
    car_rng = np.random.default_rng([seed, _VEHICLE_STREAM])
    vehicles = plan_vehicles(SITES, placements, cfg, car_rng, set())
    patrol = plan_patrol(PATROL, cfg, car_rng, {v.track.plate for v in vehicles})
    # companions and a recurring face last, on their own stream: nobody else moves
    extras_rng = np.random.default_rng([seed, _EXTRAS_STREAM])
    placements += plan_extras(PEOPLE, heads, placements, vehicles, SITES, cfg, extras_rng)
    jobs = _jobs(root, cfg, placements, vehicles, patrol)
    # the longest job (the patrol car's pan) first, so it does not finish last alone
    _render_all(
        sorted(jobs, key=lambda j: j.site.kind != "mobile"),
        workers if workers is not None else min(4, os.cpu_count() or 1),
    )
    _warn_stale_footage(jobs)
    patrol_key = jobs[-1].path.relative_to(root).as_posix()
    (root / gps_key(patrol_key)).write_text(gps_csv(jobs[-1].start, cfg.segment_seconds), encoding="utf-8")
    probes = {}
    for person in PEOPLE:
        dest = root / "sample" / "probes" / f"{person.person_id}.jpg"
        if write_probe(person, media, dest):
            probes[person.person_id] = dest
    write_cameras_yaml(root / "cameras.yaml", (*SITES, PATROL), cfg.size)
    truth = _ground_truth(root, cfg, jobs, placements, probes)
    truth_path = root / "sample" / "ground_truth.json"
    truth_path.write_text(truth.to_json(), encoding="utf-8")
    shown = {p.person_id for p in placements}
    log.info(
        "sample of %d segments, %d walks, %d cars written to %s in %.1f s",
        len(jobs),
        len(placements),
        len(truth.vehicles),
        root,
        time.monotonic() - began,
    )
    return SampleManifest(
        root=root,
        camera_ids=[site.camera_id for site in (*SITES, PATROL)],
        segment_keys=[s.key for s in truth.segments],
        cameras_path=root / "cameras.yaml",
        ground_truth_path=truth_path,
        probes=probes,
        people_in_footage=[p.person_id for p in PEOPLE if p.person_id in shown],
        people_absent=[p.person_id for p in PEOPLE if p.person_id not in shown],
        plates=[v.plate for v in truth.vehicles],
        gps_keys=[s.gps for s in truth.segments if s.gps],
    )
