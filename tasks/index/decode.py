"""Decode a segment at a sample rate and gate frames on motion."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import av
import cv2
import numpy as np

from citywatch.errors import BadInputError, TransientError
from citywatch.geometry import clip, expand
from citywatch.storage import STORAGE_IO_ERRORS, Storage, is_remote

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SampledFrame:
    """One decoded frame chosen by the sampler."""

    index: int  # index among sampled frames
    offset_s: float  # seconds from the segment start (frame timestamp)
    image: np.ndarray  # BGR uint8
    moving: bool  # passed the motion gate (always True for the first frame)


@dataclass
class DecodeStats:
    frames_decoded: int = 0
    frames_sampled: int = 0
    frames_moving: int = 0
    duration_s: float = 0.0


def open_segment(storage: Storage, uri: str) -> av.container.InputContainer:
    try:
        if is_remote(uri):
            fs, path = storage.fs(uri)
            return av.open(fs.open(path, "rb"), "r")
        return av.open(uri, "r")
    except FileNotFoundError as exc:
        raise BadInputError(f"segment {uri} does not exist") from exc
    except av.error.FFmpegError as exc:
        raise BadInputError(f"segment {uri} is not a readable video: {exc}") from exc
    except STORAGE_IO_ERRORS as exc:
        raise TransientError(f"could not open segment {uri}: {exc}") from exc


class MotionGate:
    """Frame differencing on a small grey copy: is anything moving?"""

    def __init__(
        self, pixel_delta: int, min_fraction: float, width: int = 160, ignore: list[list[int]] | None = None
    ) -> None:
        self.ignore = ignore or []  # overlay boxes (frame pixels) that never count as motion
        self.pixel_delta = pixel_delta
        self.min_fraction = min_fraction
        self.width = width
        self._previous: np.ndarray | None = None
        self.regions: list[tuple[int, int, int, int]] = []  # moving boxes, frame pixels

    def moving(self, image: np.ndarray) -> bool:
        height = max(1, round(image.shape[0] * self.width / image.shape[1]))
        small = cv2.resize(image, (self.width, height), interpolation=cv2.INTER_AREA)
        grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0)
        scale = self.width / image.shape[1]
        for x1, y1, x2, y2 in self.ignore:
            grey[
                int(y1 * scale) : int(np.ceil(y2 * scale)) + 1, int(x1 * scale) : int(np.ceil(x2 * scale)) + 1
            ] = 0
        previous, self._previous = self._previous, grey
        if previous is None:
            self.regions = [(0, 0, image.shape[1], image.shape[0])]
            return True
        mask = cv2.absdiff(grey, previous) > self.pixel_delta
        moving = bool(np.count_nonzero(mask) / grey.size >= self.min_fraction)
        self.regions = moving_regions(mask, image.shape[1] / self.width) if moving else []
        return moving


def moving_regions(mask: np.ndarray, scale: float, max_regions: int = 8) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (frame pixels) of the moving blobs of a small motion mask."""
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8), iterations=2)
    count, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    boxes = sorted((stats[i] for i in range(1, count)), key=lambda s: int(s[cv2.CC_STAT_AREA]), reverse=True)[
        :max_regions
    ]
    height, width = mask.shape
    out = []
    for x, y, w, h, _area in boxes:
        x1, y1, x2, y2 = clip(expand((x, y, x + w, y + h), 2, 2), width, height)
        out.append((int(x1 * scale), int(y1 * scale), int(x2 * scale), int(y2 * scale)))
    return out


def sample_frames(
    storage: Storage, uri: str, *, sample_fps: float, gate: MotionGate, stats: DecodeStats, threads: int = 1
) -> Iterator[SampledFrame]:
    """Yield frames every ``1/sample_fps`` seconds of the segment, with a motion flag."""
    with open_segment(storage, uri) as container:
        if not container.streams.video:
            raise BadInputError(f"segment {uri} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        step = 1.0 / sample_fps
        next_t = 0.0
        first_pts: float | None = None
        try:
            for frame in container.decode(stream):
                stats.frames_decoded += 1
                if frame.time is None:
                    continue
                if first_pts is None:
                    first_pts = float(frame.time)
                offset = float(frame.time) - first_pts
                stats.duration_s = max(stats.duration_s, offset)
                if offset + 1e-6 < next_t:
                    continue
                while next_t <= offset + 1e-6:
                    next_t += step
                image = frame.to_ndarray(format="bgr24")
                moving = gate.moving(image)
                stats.frames_moving += int(moving)
                yield SampledFrame(stats.frames_sampled, offset, image, moving)
                stats.frames_sampled += 1
        except av.error.FFmpegError as exc:
            raise BadInputError(
                f"segment {uri} is corrupt after {stats.frames_decoded} frames: {exc}"
            ) from exc
    if stats.frames_decoded == 0:
        raise BadInputError(f"segment {uri} holds no decodable video frames")
