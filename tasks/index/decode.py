"""Decode a segment at a sample rate and gate frames on motion."""

from __future__ import annotations

import heapq
import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import av
import cv2
import numpy as np

from citywatch.errors import BadInputError, TransientError
from citywatch.geometry import clip, expand
from citywatch.storage import STORAGE_IO_ERRORS, Storage, is_remote

log = logging.getLogger(__name__)


# Containers whose packets carry true presentation times (pts) and decode times (dts), so
# the sampler can rule on a frame before it is decoded. Not AVI (its packet "pts" are in
# decode order) nor Matroska (no dts: planning would switch itself off anyway).
PLANNED_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "mpegts"})


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
    packets_skippable: int = 0  # sent with skip_frame=NONREF (decoded anyway if a reference)
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
        self.mask: np.ndarray | None = None  # the last motion mask (width px wide), None: first frame
        self.cpu_s = 0.0  # this thread's CPU seconds spent in moving() (tasks/index/stages.py)

    def moving(self, image: np.ndarray) -> bool:
        started = time.thread_time()
        try:
            return self._moving(image)
        finally:
            self.cpu_s += time.thread_time() - started

    def _moving(self, image: np.ndarray) -> bool:
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
            self.mask = None
            return True
        mask = cv2.absdiff(grey, previous) > self.pixel_delta
        self.mask = mask
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
    storage: Storage,
    uri: str,
    *,
    sample_fps: float,
    gate: MotionGate,
    stats: DecodeStats,
    threads: int = 1,
    skip_unsampled: bool = True,
) -> Iterator[SampledFrame]:
    """Yield frames every ``1/sample_fps`` seconds of the segment, with a motion flag.

    A frame is sampled when it is the first (in presentation order) at or after the next
    sample time; times are offsets from the first frame. With ``skip_unsampled`` the
    decoder is told to skip non-reference frames that will not be sampled (nothing else
    depends on them), decided from the packets' timestamps before they are decoded: the
    sampled frames, their times and pixels are the same as decoding every frame. Only for
    containers in ``PLANNED_FORMATS``; others decode every frame.
    """
    with open_segment(storage, uri) as container:
        if not container.streams.video:
            raise BadInputError(f"segment {uri} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        sampler = _Sampler(1.0 / sample_fps)
        planned = skip_unsampled and container.format.name in PLANNED_FORMATS
        frames = (
            _decode_planned(container, stream, 1.0 / sample_fps, stats)
            if planned
            else container.decode(stream)
        )
        try:
            for frame in frames:
                stats.frames_decoded += 1
                if frame.time is None:
                    continue
                offset = sampler.offset(float(frame.time))
                stats.duration_s = max(stats.duration_s, offset)
                if not sampler.take(offset):
                    continue
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


class _Sampler:
    """The sampling rule, fed frame times in presentation order."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.next_t = 0.0
        self.first: float | None = None

    def offset(self, time: float) -> float:
        if self.first is None:
            self.first = time
        return time - self.first

    def take(self, offset: float) -> bool:
        """Is the frame at ``offset`` (the next in presentation order) sampled?"""
        if offset + 1e-6 < self.next_t:
            return False
        while self.next_t <= offset + 1e-6:
            self.next_t += self.step
        return True


def _decode_planned(
    container: av.container.InputContainer, stream: av.VideoStream, step: float, stats: DecodeStats
) -> Iterator[av.VideoFrame]:
    """Decode ``stream``, skipping non-reference frames the sampler will not take.

    Packets come in decode order; a packet's frame time (pts) is final in presentation
    order once a packet with a decode time (dts) at or after it has been read, because
    every later packet shows after its own dts. So packets wait in a short queue (the
    B-frame reorder depth) until a sampler, run on the packet times, has ruled on them;
    a packet that will not be sampled is sent with ``skip_frame = NONREF`` (the decoder
    drops it only if no other frame refers to it). A packet without pts/dts turns
    planning off: from there on every frame is decoded, as without planning.
    """
    codec = stream.codec_context
    sampler = _Sampler(step)
    pending: deque[av.Packet] = deque()
    unruled: list[float] = []  # heap of frame times not yet ruled on
    ruled: dict[float, list[bool]] = {}  # frame time -> will be sampled (per packet)
    repeated: set[float] = set()  # times two packets share: decoded, whatever the rule
    planning = True
    flush: av.Packet | None = None

    def rule(upto: float | None) -> None:
        while unruled and (upto is None or unruled[0] <= upto):
            t = heapq.heappop(unruled)
            offset = sampler.offset(t)
            stats.duration_s = max(stats.duration_s, offset)  # a skipped last frame still counts
            if t in ruled:
                repeated.add(t)
            ruled.setdefault(t, []).append(sampler.take(offset))

    def send(packet: av.Packet) -> Iterator[av.VideoFrame]:
        t = _packet_time(packet)
        keep = True
        if t is not None and t in ruled:
            keep = ruled[t].pop(0) or t in repeated or not planning
            if not ruled[t]:
                del ruled[t]
        codec.skip_frame = "DEFAULT" if keep else "NONREF"
        stats.packets_skippable += int(not keep)
        yield from packet.decode()

    for packet in container.demux(stream):
        if packet.size == 0:  # the demuxer's flush packet: sent last
            flush = packet
            continue
        t = _packet_time(packet)
        if planning and (t is None or packet.dts is None):
            planning = False  # unknown order: decode everything from here on
        if planning:
            assert t is not None and packet.dts is not None and packet.time_base is not None
            heapq.heappush(unruled, t)
            rule(float(packet.dts * packet.time_base))
        pending.append(packet)
        while pending and (not planning or _packet_time(pending[0]) in ruled):
            yield from send(pending.popleft())
    rule(None)
    while pending:
        yield from send(pending.popleft())
    codec.skip_frame = "DEFAULT"
    if flush is not None:
        yield from flush.decode()


def _packet_time(packet: av.Packet) -> float | None:
    return None if packet.pts is None or packet.time_base is None else float(packet.pts * packet.time_base)
