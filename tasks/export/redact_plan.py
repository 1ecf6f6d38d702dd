"""From tracks of detections to what each exported frame obscures.

Faces (and plates) are detected on every frame of a clip and tracked; a detector
miss inside a track is covered by interpolating between its neighbours, and each
track's box is held (and extrapolated along its motion) ``hold`` frames before its
first and after its last detection. The subject's track(s) are kept clear; every
other track is obscured. The result is one ``FrameRedaction`` per frame plus a log
of every box, which the export stores beside the clip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from citywatch.errors import BadInputError
from citywatch.geometry import Box, PixelBox, grow, iou, lerp, union
from citywatch.tasks.export.redact import FrameRedaction

DETECTED, INTERPOLATED, HELD = "d", "i", "h"


@dataclass(frozen=True, slots=True)
class ClipTrack:
    """One face or plate tracked through a clip: detections at ascending frame indexes."""

    index: int
    kind: str  # face | plate
    frames: tuple[int, ...]
    boxes: tuple[Box, ...]
    distance: float | None = None  # nearest embedding distance to the subject (faces)

    def __post_init__(self) -> None:
        if not self.frames or len(self.frames) != len(self.boxes):
            raise BadInputError(f"track {self.index}: needs as many boxes as frames, at least one")
        if any(b <= a for a, b in zip(self.frames, self.frames[1:])):
            raise BadInputError(f"track {self.index}: frames must be strictly ascending")


@dataclass(frozen=True, slots=True)
class SubjectHint:
    """How to recognise the subject in the clip."""

    threshold: float  # largest embedding distance that is the same person
    frame_index: int | None = None  # clip frame of the indexed sighting (fallback)
    bbox: Box | None = None  # the indexed face box at that frame
    min_iou: float = 0.3


@dataclass(frozen=True, slots=True)
class SubjectChoice:
    tracks: tuple[int, ...]
    matched_by: str  # embedding | position | none (not found) | no-subject (not asked)
    distance: float | None = None


@dataclass(frozen=True, slots=True)
class TrackRedaction:
    """The log of one track: every box applied, ``(frame, x1, y1, x2, y2, how)``."""

    track: int
    kind: str
    role: str  # subject (kept clear) | obscured
    boxes: tuple[tuple[int, int, int, int, int, str], ...]


def _velocity(frames: Sequence[int], boxes: Sequence[Box]) -> Box:
    """Per-frame box motion over (at most) the last 4 detections given."""
    if len(frames) < 2 or frames[-1] == frames[0]:
        return (0.0, 0.0, 0.0, 0.0)
    span = frames[-1] - frames[0]
    a, b = boxes[0], boxes[-1]
    return ((b[0] - a[0]) / span, (b[1] - a[1]) / span, (b[2] - a[2]) / span, (b[3] - a[3]) / span)


def fill_track(track: ClipTrack, n_frames: int, hold: int) -> dict[int, tuple[Box, str]]:
    """The track's box at every frame it covers: detected, interpolated or held."""
    out: dict[int, tuple[Box, str]] = {}
    for (fa, ba), (fb, bb) in zip(zip(track.frames, track.boxes), zip(track.frames[1:], track.boxes[1:])):
        out[fa] = (ba, DETECTED)
        for f in range(fa + 1, fb):
            out[f] = (lerp(ba, bb, (f - fa) / (fb - fa)), INTERPOLATED)
    out[track.frames[-1]] = (track.boxes[-1], DETECTED)
    head_v = _velocity(track.frames[:4], track.boxes[:4])
    tail_v = _velocity(track.frames[-4:], track.boxes[-4:])
    for step in range(1, hold + 1):
        before, after = track.frames[0] - step, track.frames[-1] + step
        if before >= 0 and before not in out:
            moved = tuple(v - d * step for v, d in zip(track.boxes[0], head_v))
            out[before] = (union(track.boxes[0], moved), HELD)  # type: ignore[arg-type]
        if after < n_frames and after not in out:
            moved = tuple(v + d * step for v, d in zip(track.boxes[-1], tail_v))
            out[after] = (union(track.boxes[-1], moved), HELD)  # type: ignore[arg-type]
    return out


def _span(track: ClipTrack) -> tuple[int, int]:
    return track.frames[0], track.frames[-1]


def choose_subject(tracks: Sequence[ClipTrack], hint: SubjectHint | None) -> SubjectChoice:
    """The subject's face track(s): nearest embedding under the threshold, else position.

    Further tracks under the threshold join the subject only if they never overlap
    in time with a chosen one (one person is not in two places in a frame).
    """
    if hint is None:
        return SubjectChoice((), "no-subject")
    faces = [t for t in tracks if t.kind == "face"]
    scored = [(t.distance, t) for t in faces if t.distance is not None and t.distance <= hint.threshold]
    matches = [t for _, t in sorted(scored, key=lambda pair: pair[0])]
    chosen: list[ClipTrack] = []
    for track in matches:
        a, b = _span(track)
        if all(b < c or a > d for c, d in map(_span, chosen)):
            chosen.append(track)
    if chosen:
        return SubjectChoice(tuple(sorted(t.index for t in chosen)), "embedding", chosen[0].distance)
    if hint.frame_index is not None and hint.bbox is not None:
        best, best_iou = None, hint.min_iou
        for track in faces:
            for frame, box in zip(track.frames, track.boxes):
                if abs(frame - hint.frame_index) <= 2 and iou(box, hint.bbox) >= best_iou:
                    best, best_iou = track, iou(box, hint.bbox)
        if best is not None:
            return SubjectChoice((best.index,), "position", best.distance)
    return SubjectChoice((), "none")


def plan_redactions(
    tracks: Sequence[ClipTrack],
    subject: SubjectChoice,
    *,
    n_frames: int,
    width: int,
    height: int,
    hold: int,
    margin: float,
) -> tuple[list[FrameRedaction], list[TrackRedaction]]:
    """One ``FrameRedaction`` per frame and the log of the boxes behind them.

    Obscured boxes are grown by ``margin``; the subject's boxes are kept as found
    (only the face itself is exempt from bystander blurring).
    """
    blur: list[list[PixelBox]] = [[] for _ in range(n_frames)]
    keep: list[list[PixelBox]] = [[] for _ in range(n_frames)]
    log: list[TrackRedaction] = []
    subject_ids = set(subject.tracks)
    for track in tracks:
        is_subject = track.kind == "face" and track.index in subject_ids
        entries = []
        for frame, (box, how) in sorted(fill_track(track, n_frames, hold).items()):
            if is_subject:
                ibox = grow(box, 0.0, width, height)
                keep[frame].append(ibox)
            else:
                ibox = grow(box, margin, width, height)
                blur[frame].append(ibox)
            if ibox[0] < ibox[2] and ibox[1] < ibox[3]:
                entries.append((frame, *ibox, how))
        log.append(
            TrackRedaction(track.index, track.kind, "subject" if is_subject else "obscured", tuple(entries))
        )
    frames = [
        FrameRedaction(tuple(map(_float_box, b)), tuple(map(_float_box, k))) for b, k in zip(blur, keep)
    ]
    return frames, log


def _float_box(box: PixelBox) -> Box:
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
