"""Who walks where and when: placing people on cameras without faces overlapping.

Every in-footage person gets walks at different cameras at different (absolute) times;
a walk is a straight crossing of one segment, 4-12 s long, never in the first moments
of a segment (so every segment has stretches with nobody synthetic), never through a
privacy mask or the OSD, and never with its face touching another person.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from citywatch.errors import BadInputError
from citywatch.geometry import PixelBox
from citywatch.sample.cameras import CameraSite
from citywatch.sample.faces import HeadSprite, PersonSource
from citywatch.sample.scene import PersonTrack, osd_box
from citywatch.sample.truth import AppearanceTruth, FaceBox

MIN_WALK_S, MAX_WALK_S = 4.0, 12.0
_TRIES_PER_SLOT = 20
_PAIR_ROUNDS = 4
_PLAN_ROUNDS = 4
_SAME_PERSON_GAP_S = 1.0
_SHARE_VIEW_P = 0.35
_CLOTHES = (
    (60, 40, 30),
    (35, 35, 38),
    (120, 120, 125),
    (215, 215, 210),
    (150, 175, 190),
    (40, 80, 40),
    (40, 30, 110),
    (140, 95, 60),
    (90, 60, 110),
    (70, 110, 160),
)


@dataclass(frozen=True)
class SampleConfig:
    seed: int
    segments_per_camera: int
    segment_seconds: float
    fps: int
    width: int
    height: int

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)

    @property
    def frames_per_segment(self) -> int:
        return round(self.segment_seconds * self.fps)

    def validate(self) -> None:
        if self.segments_per_camera < 1:
            raise BadInputError(f"segments_per_camera must be >= 1, got {self.segments_per_camera}")
        if self.segment_seconds < 8 or self.segment_seconds != int(self.segment_seconds):
            raise BadInputError(f"segment_seconds must be a whole number >= 8, got {self.segment_seconds}")
        if not 5 <= self.fps <= 60:
            raise BadInputError(f"fps must be within 5..60, got {self.fps}")
        if self.width < 320 or self.height < 180 or self.width % 2 or self.height % 2:
            raise BadInputError(
                f"frame size must be even and at least 320x180, got {self.width}x{self.height}"
            )


@dataclass(frozen=True)
class Placement:
    person_id: str
    camera_index: int
    segment_index: int
    track: PersonTrack


def _overlaps(a: PixelBox, b: PixelBox, margin: int = 0) -> bool:
    return a[0] - margin < b[2] and b[0] - margin < a[2] and a[1] - margin < b[3] and b[1] - margin < a[3]


def _frame_times(track: PersonTrack, fps: int) -> list[float]:
    first, last = round(track.t_start * fps), round(track.t_end * fps)
    return [n / fps for n in range(first, last + 1)]


def _free_spans(window: tuple[float, float], taken: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Parts of ``window`` outside every ``taken`` interval, long enough for a walk."""
    free = [window]
    for a, b in taken:
        free = [piece for x, y in free for piece in ((x, min(y, a)), (max(x, b), y)) if piece[1] > piece[0]]
    return [(x, y) for x, y in free if y - x >= MIN_WALK_S]


def pick_time(
    person: PersonSource,
    camera_index: int,
    segment: int,
    placements: list[Placement],
    sites: tuple[CameraSite, ...],
    cfg: SampleConfig,
    rng: np.random.Generator,
    alone: bool,
) -> tuple[float, float] | None:
    """A walk's (start, end) in camera time: clear of the person's other walks and,
    when ``alone``, of the other walkers at this camera."""
    seg_len = cfg.segment_seconds
    lead, tail = min(2.0, 0.15 * seg_len), min(1.0, 0.08 * seg_len)
    window = (segment * seg_len + lead, (segment + 1) * seg_len - tail)
    offset = sites[camera_index].offset_s
    taken = [
        (
            p.track.t_start + sites[p.camera_index].offset_s - offset - _SAME_PERSON_GAP_S,
            p.track.t_end + sites[p.camera_index].offset_s - offset + _SAME_PERSON_GAP_S,
        )
        for p in placements
        if p.person_id == person.person_id
    ]
    if alone:
        taken += [
            (p.track.t_start - 0.3, p.track.t_end + 0.3)
            for p in placements
            if p.camera_index == camera_index and p.segment_index == segment
        ]
    spans = _free_spans(window, taken)
    if not spans:
        return None
    lengths = np.array([y - x for x, y in spans])
    x, y = spans[int(rng.choice(len(spans), p=lengths / lengths.sum()))]
    duration = MIN_WALK_S + (min(MAX_WALK_S, y - x) - MIN_WALK_S) * rng.random() ** 1.5
    start = rng.uniform(x, y - duration)
    if rng.random() < 0.4:  # packing walks against each other leaves room for more
        start = x if rng.random() < 0.5 else y - duration
    t0 = math.ceil(start * cfg.fps) / cfg.fps
    return t0, math.floor((t0 + duration) * cfg.fps) / cfg.fps


def candidate_walk(
    person: PersonSource,
    head: HeadSprite,
    site: CameraSite,
    times: tuple[float, float],
    cfg: SampleConfig,
    rng: np.random.Generator,
    leftwards: bool,
) -> PersonTrack | None:
    """A straight walk across the frame between ``times``, nearing or receding."""
    k = cfg.height / 720
    lo = k * max(person.face_px_range[0], site.face_px[0])
    hi = k * min(person.face_px_range[1], site.face_px[1])
    if lo > hi:
        return None
    mid = (lo + hi) / 2
    sizes = [rng.uniform(lo, mid), rng.uniform(mid, hi)]
    if rng.random() < 0.5:
        sizes.reverse()
    lane = rng.uniform(-0.04, 0.04) * cfg.height
    aspect = (head.face_box[2] - head.face_box[0]) / head.face_height
    xs = [-(0.5 * aspect * sizes[0] + 2), cfg.width + 0.5 * aspect * sizes[1] + 2]
    if leftwards:
        xs = [cfg.width - xs[0], cfg.width - xs[1]]
    ys = [k * site.horizon_px + site.rise * s + lane for s in sizes]
    torso, legs = rng.choice(len(_CLOTHES), size=2, replace=False)
    return PersonTrack(
        person_id=person.person_id,
        head=head,
        t_start=times[0],
        t_end=times[1],
        start=(xs[0], ys[0], sizes[0]),
        end=(xs[1], ys[1], sizes[1]),
        torso_bgr=_CLOTHES[int(torso)],
        legs_bgr=_CLOTHES[int(legs)],
        gait_phase=float(rng.uniform(0, 2 * math.pi)),
    )


def fits(
    track: PersonTrack,
    camera_index: int,
    placements: list[Placement],
    sites: tuple[CameraSite, ...],
    cfg: SampleConfig,
) -> bool:
    site = sites[camera_index]
    offset = site.offset_s
    for other in placements:
        if other.person_id == track.person_id:
            o_off = sites[other.camera_index].offset_s
            if (
                track.t_start + offset < other.track.t_end + o_off + _SAME_PERSON_GAP_S
                and other.track.t_start + o_off < track.t_end + offset + _SAME_PERSON_GAP_S
            ):
                return False
    forbidden = site.mask_boxes(cfg.size)
    osd = osd_box(cfg.size)
    rivals = [
        p.track
        for p in placements
        if p.camera_index == camera_index
        and p.track.t_start <= track.t_end
        and track.t_start <= p.track.t_end
    ]
    for t in _frame_times(track, cfg.fps):
        face, body = track.face_box(t), track.extent(t)
        if face[1] < 2 or face[3] > cfg.height - 2 or _overlaps(face, osd, 8):
            return False
        if any(_overlaps(body, box, 4) for box in forbidden):
            return False
        for rival in rivals:
            if rival.t_start <= t <= rival.t_end and (
                _overlaps(face, rival.extent(t), 8) or _overlaps(rival.face_box(t), body, 8)
            ):
                return False
    return True


def _place_one(
    person: PersonSource,
    head: HeadSprite,
    placements: list[Placement],
    sites: tuple[CameraSite, ...],
    cfg: SampleConfig,
    rng: np.random.Generator,
) -> Placement | None:
    """One more walk of ``person`` at a camera it has not been seen at (least busy first)."""
    used = {p.camera_index for p in placements if p.person_id == person.person_id}
    slots = [(c, s) for c in range(len(sites)) if c not in used for s in range(cfg.segments_per_camera)]
    busy = {slot: 0.0 for slot in slots}
    for p in placements:
        if (p.camera_index, p.segment_index) in busy:
            busy[(p.camera_index, p.segment_index)] += p.track.t_end - p.track.t_start
    ties = rng.random(len(slots))
    sociable = rng.random() < _SHARE_VIEW_P  # try sharing the view with others first
    for i in sorted(range(len(slots)), key=lambda i: (busy[slots[i]], ties[i])):
        camera_index, segment = slots[i]
        for attempt in range(_TRIES_PER_SLOT):
            alone = (attempt < _TRIES_PER_SLOT // 2) != sociable
            times = pick_time(person, camera_index, segment, placements, sites, cfg, rng, alone)
            if times is None:
                continue
            # sharing the view: walk the way the others walk, so paths need not cross
            others = [
                p.track
                for p in placements
                if p.camera_index == camera_index
                and p.track.t_start <= times[1]
                and times[0] <= p.track.t_end
            ]
            leftwards = (others[0].end[0] < others[0].start[0]) if others else rng.random() < 0.5
            track = candidate_walk(person, head, sites[camera_index], times, cfg, rng, leftwards)
            if track is not None and fits(track, camera_index, placements, sites, cfg):
                return Placement(person.person_id, camera_index, segment, track)
    return None


def _place_pair(
    person: PersonSource,
    head: HeadSprite,
    placements: list[Placement],
    sites: tuple[CameraSite, ...],
    cfg: SampleConfig,
    rng: np.random.Generator,
) -> list[Placement]:
    """Two walks of ``person`` at two cameras, or none."""
    for _ in range(_PAIR_ROUNDS):
        pair: list[Placement] = []
        for _ in range(2):
            placed = _place_one(person, head, placements + pair, sites, cfg, rng)
            if placed is not None:
                pair.append(placed)
        if len(pair) == 2:
            return pair
    return []


def _plan_once(
    walkers: list[PersonSource],
    heads: dict[str, HeadSprite],
    sites: tuple[CameraSite, ...],
    cfg: SampleConfig,
    rng: np.random.Generator,
) -> list[Placement] | None:
    placements: list[Placement] = []
    for person in walkers:
        pair = _place_pair(person, heads[person.person_id], placements, sites, cfg, rng)
        if not pair and person.must_appear:
            return None
        placements += pair
    placed_ids = {p.person_id for p in placements}
    for person in walkers:
        for _ in range(person.visits - 2 if person.person_id in placed_ids else 0):
            more = _place_one(person, heads[person.person_id], placements, sites, cfg, rng)
            if more is not None:
                placements.append(more)
    return placements


def plan_people(
    people: tuple[PersonSource, ...],
    heads: dict[str, HeadSprite],
    sites: tuple[CameraSite, ...],
    cfg: SampleConfig,
    rng: np.random.Generator,
) -> list[Placement]:
    """Place every in-footage person at >= 2 cameras; people that do not fit are left out.

    Companions and recurring faces (``planned_later``) are not placed here but by
    citywatch/sample/extras.py, after the cars, so they change nobody else's walks.

    ``must_appear`` people are placed first, then the others, two walks at a time,
    then any further walks. Raises BadInputError when the ``must_appear`` people
    cannot be placed twice (after a few fresh tries).
    """
    walkers = sorted(
        (p for p in people if p.in_footage and not p.planned_later), key=lambda p: not p.must_appear
    )
    for _ in range(_PLAN_ROUNDS):
        placements = _plan_once(walkers, heads, sites, cfg, rng)
        if placements is not None:
            return placements
    must = [p.person_id for p in walkers if p.must_appear]
    raise BadInputError(
        f"cannot place {must} at two cameras each with segment_seconds={cfg.segment_seconds}, "
        f"segments_per_camera={cfg.segments_per_camera}: use longer or more segments"
    )


def appearance_truth(
    placement: Placement, site: CameraSite, key: str, segment_start: datetime, cfg: SampleConfig
) -> AppearanceTruth:
    """The ground-truth row of one walk: visible interval, face sizes, boxes every 0.5 s."""
    track, fps = placement.track, cfg.fps
    seg_frame0 = placement.segment_index * cfg.frames_per_segment
    sample_frames = {math.floor(j * fps / 2 + 0.5) for j in range(2 * int(cfg.segment_seconds) + 1)}
    visible: list[int] = []
    boxes: list[FaceBox] = []
    full_heights: list[int] = []
    for t in _frame_times(track, fps):
        x1, y1, x2, y2 = track.face_box(t)
        cx1, cy1 = max(0, x1), max(0, y1)
        cx2, cy2 = min(cfg.width, x2), min(cfg.height, y2)
        if cx1 >= cx2 or cy1 >= cy2:
            continue
        frame = round(t * fps) - seg_frame0
        visible.append(frame)
        if (cx1, cy1, cx2, cy2) == (x1, y1, x2, y2):
            full_heights.append(y2 - y1)
        if frame in sample_frames:
            boxes.append(FaceBox(round(frame / fps, 4), cx1, cy1, cx2, cy2))
    if not visible or not full_heights:
        raise BadInputError(f"walk of {placement.person_id} on {site.camera_id} never shows a face")
    return AppearanceTruth(
        person_id=placement.person_id,
        camera_id=site.camera_id,
        key=key,
        start=segment_start + timedelta(milliseconds=round(visible[0] * 1000 / fps)),
        end=segment_start + timedelta(milliseconds=round(visible[-1] * 1000 / fps)),
        min_face_px=min(full_heights),
        max_face_px=max(full_heights),
        boxes=tuple(boxes),
    )
