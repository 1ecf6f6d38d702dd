"""Group per-frame face detections of one segment into tracks (IoU + motion)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from citywatch.geometry import Box, iou

Item = TypeVar("Item")


@dataclass
class Track(Generic[Item]):
    """A run of detections believed to be one face (or plate)."""

    index: int
    items: list[Item] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    @property
    def last_box(self) -> Box:
        return self.boxes[-1]

    def predict(self, t: float) -> Box:
        """Where the box should be at ``t``, assuming constant velocity."""
        if len(self.boxes) < 2 or self.times[-1] <= self.times[-2]:
            return self.boxes[-1]
        (a, b), dt = self.boxes[-2:], self.times[-1] - self.times[-2]
        step = (t - self.times[-1]) / dt
        x1, y1, x2, y2 = (bv + (bv - av) * step for av, bv in zip(a, b))
        return (x1, y1, x2, y2)

    @property
    def last_time(self) -> float:
        return self.times[-1]

    def follow(self, t: float, box: Box) -> None:
        """Carry the track to ``t`` at ``box`` without a detection (a settled plate not
        re-read while its vehicle still moves there): ``boxes`` and ``times`` then hold
        more entries than ``items``."""
        self.boxes.append(box)
        self.times.append(t)


def affinity(a: Box, b: Box) -> float:
    """How likely two boxes (adjacent samples) are the same object, 0..1.

    IoU alone fails for small fast faces at a low sample rate (a walker's face moves
    ~2 face widths in half a second), so a box of similar size whose centre moved
    less than ~3 face widths also counts, less the further it moved.
    """
    overlap = iou(a, b)
    wa, wb = a[2] - a[0], b[2] - b[0]
    size = max(wa, wb, 1e-6)
    ratio = min(wa, wb) / size
    if ratio < 0.6:
        return overlap
    dx = (a[0] + a[2] - b[0] - b[2]) / 2
    dy = (a[1] + a[3] - b[1] - b[3]) / 2
    dist = (dx * dx + dy * dy) ** 0.5 / size
    return max(overlap, max(0.0, 1.0 - dist / 3.5) * ratio)


class Tracker(Generic[Item]):
    """Greedy frame-to-frame association. Feed frames in time order."""

    def __init__(self, min_affinity: float, max_gap_s: float) -> None:
        self.min_affinity = min_affinity
        self.max_gap_s = max_gap_s
        self.tracks: list[Track[Item]] = []

    def update(self, t: float, detections: list[tuple[Box, Item]]) -> list[int]:
        """Assign detections at time ``t``; returns the track index of each."""
        live = [tr for tr in self.tracks if t - tr.last_time <= self.max_gap_s]
        pairs = sorted(
            (
                (affinity(tr.predict(t), box), ti, di)
                for ti, tr in enumerate(live)
                for di, (box, _) in enumerate(detections)
            ),
            reverse=True,
        )
        assigned: dict[int, int] = {}
        used_tracks: set[int] = set()
        for score, ti, di in pairs:
            if score < self.min_affinity:
                break
            if ti in used_tracks or di in assigned:
                continue
            used_tracks.add(ti)
            assigned[di] = live[ti].index
        out: list[int] = []
        for di, (box, item) in enumerate(detections):
            if di not in assigned:
                track: Track[Item] = Track(index=len(self.tracks))
                self.tracks.append(track)
                assigned[di] = track.index
            track = self.tracks[assigned[di]]
            track.items.append(item)
            track.boxes.append(box)
            track.times.append(t)
            out.append(track.index)
        return out
