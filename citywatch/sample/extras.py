"""Companions and a recurring unknown face, placed after everyone else and the cars.

A companion (``PersonSource.walks_with``) walks beside the person it accompanies at each
of that person's walks: same camera and segment, the same way, starting within
``COMPANION_LAG_S`` seconds of them, its face never touching anyone's body. A recurring
face (``PersonSource.recurs``) walks at ``visits`` different cameras, alone when it can.
Both use their own random stream and keep clear of the cars already planned, so no
other walk and no car moves. Like everyone else, a person placed at fewer than two
cameras is left out of the footage.
"""

from __future__ import annotations

import math

import numpy as np

from citywatch.sample.cameras import CameraSite
from citywatch.sample.faces import HeadSprite, PersonSource
from citywatch.sample.plan import (
    MAX_WALK_S,
    MIN_WALK_S,
    Placement,
    SampleConfig,
    candidate_walk,
    fits,
    pick_time,
)
from citywatch.sample.vehicles import VehiclePlacement, car_clear_of

COMPANION_LAG_S = (0.6, 3.0)  # how far apart (seconds) a companion starts from its person
_PACE = (0.85, 1.15)  # a companion's walk lasts this share of its person's
_TRIES = 150


def _segment_window(segment: int, cfg: SampleConfig) -> tuple[float, float]:
    seg_len = cfg.segment_seconds
    lead, tail = min(2.0, 0.15 * seg_len), min(1.0, 0.08 * seg_len)
    return segment * seg_len + lead, (segment + 1) * seg_len - tail


def _clear_of_cars(placement: Placement, cars: list[VehiclePlacement], fps: int) -> bool:
    slot = (placement.camera_index, placement.segment_index)
    return all(
        car_clear_of(v.track, [placement], fps) for v in cars if (v.camera_index, v.segment_index) == slot
    )


def _ok(
    placement: Placement,
    placements: list[Placement],
    cars: list[VehiclePlacement],
    sites: tuple[CameraSite, ...],
    cfg: SampleConfig,
) -> bool:
    return fits(placement.track, placement.camera_index, placements, sites, cfg) and _clear_of_cars(
        placement, cars, cfg.fps
    )


def _beside(
    person: PersonSource,
    head: HeadSprite,
    walk: Placement,
    placements: list[Placement],
    cars: list[VehiclePlacement],
    sites: tuple[CameraSite, ...],
    cfg: SampleConfig,
    rng: np.random.Generator,
) -> Placement | None:
    """A walk of ``person`` next to ``walk``: same way, starting a few seconds apart."""
    lo, hi = _segment_window(walk.segment_index, cfg)
    lead = walk.track
    leftwards = lead.end[0] < lead.start[0]
    for _ in range(_TRIES):
        lag = float(rng.uniform(*COMPANION_LAG_S)) * (1 if rng.random() < 0.5 else -1)
        pace = float(rng.uniform(*_PACE))
        start = math.ceil(max(lo, lead.t_start + lag) * cfg.fps) / cfg.fps
        end = math.floor(min(hi, start + pace * (lead.t_end - lead.t_start)) * cfg.fps) / cfg.fps
        if not MIN_WALK_S <= end - start <= MAX_WALK_S or abs(start - lead.t_start) > COMPANION_LAG_S[1]:
            continue
        track = candidate_walk(person, head, sites[walk.camera_index], (start, end), cfg, rng, leftwards)
        if track is None:
            continue
        placed = Placement(person.person_id, walk.camera_index, walk.segment_index, track)
        if _ok(placed, placements, cars, sites, cfg):
            return placed
    return None


def _alone_at(
    person: PersonSource,
    head: HeadSprite,
    camera_index: int,
    placements: list[Placement],
    cars: list[VehiclePlacement],
    sites: tuple[CameraSite, ...],
    cfg: SampleConfig,
    rng: np.random.Generator,
) -> Placement | None:
    """A walk of ``person`` at ``camera_index`` (any segment), alone in view when it can."""
    for segment in rng.permutation(cfg.segments_per_camera):
        for attempt in range(_TRIES):
            alone = attempt < _TRIES // 2
            times = pick_time(person, camera_index, int(segment), placements, sites, cfg, rng, alone)
            if times is None:
                continue
            track = candidate_walk(person, head, sites[camera_index], times, cfg, rng, rng.random() < 0.5)
            if track is None:
                continue
            placed = Placement(person.person_id, camera_index, int(segment), track)
            if _ok(placed, placements, cars, sites, cfg):
                return placed
    return None


def plan_extras(
    people: tuple[PersonSource, ...],
    heads: dict[str, HeadSprite],
    placements: list[Placement],
    cars: list[VehiclePlacement],
    sites: tuple[CameraSite, ...],
    cfg: SampleConfig,
    rng: np.random.Generator,
) -> list[Placement]:
    """The walks of the ``planned_later`` people (companions first), clear of ``placements``
    and ``cars``; a person with fewer than two walks is left out."""
    extras: list[Placement] = []
    later = sorted((p for p in people if p.in_footage and p.planned_later), key=lambda p: p.recurs)
    for person in later:
        head = heads[person.person_id]
        walks: list[Placement] = []
        if person.walks_with:
            for walk in (p for p in placements if p.person_id == person.walks_with):
                placed = _beside(person, head, walk, placements + extras + walks, cars, sites, cfg, rng)
                if placed is not None:
                    walks.append(placed)
        else:
            for camera_index in rng.permutation(len(sites)):
                if len(walks) == person.visits:
                    break
                taken = placements + extras + walks
                placed = _alone_at(person, head, int(camera_index), taken, cars, sites, cfg, rng)
                if placed is not None:
                    walks.append(placed)
        if len({w.camera_index for w in walks}) >= 2:
            extras += walks
    return extras


def companion_pairs(people: tuple[PersonSource, ...], shown: set[str]) -> tuple[tuple[str, str], ...]:
    """(person, companion) for every companion in the footage with its person."""
    return tuple(
        (p.walks_with, p.person_id) for p in people if p.walks_with and {p.person_id, p.walks_with} <= shown
    )


def recurring_people(people: tuple[PersonSource, ...], shown: set[str]) -> tuple[str, ...]:
    return tuple(p.person_id for p in people if p.recurs and p.person_id in shown)
