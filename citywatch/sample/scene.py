"""Scene layers of the sample footage: backgrounds, sprite tracks, the camera's look.

A camera's frame at time ``t`` (seconds since the camera's first segment) is
``look.apply(background.frame_at(t) + every active Sprite drawn far-to-near)``. People
are ``PersonTrack``s, cars ``sample_vehicles.VehicleTrack``s; a mobile camera's view is
a ``PanningBackground``. Sprites draw in place and touch only their own region.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import av
import cv2
import numpy as np

from citywatch.errors import BadInputError
from citywatch.geometry import PixelBox
from citywatch.sample.faces import HeadSprite, ImageU8


class Sprite(Protocol):
    """Something composited over the background for a time interval (camera time, s)."""

    @property
    def t_start(self) -> float: ...

    @property
    def t_end(self) -> float: ...

    def depth(self, t: float) -> float:
        """Bigger is nearer the camera; nearer sprites are drawn last."""
        ...

    def draw(self, frame: ImageU8, t: float) -> None:
        """Draw onto ``frame`` in place, touching only the sprite's region."""
        ...


class Background(Protocol):
    def frame_at(self, t: float) -> ImageU8:
        """A fresh, writable BGR frame for time ``t``."""
        ...


def fit_to_frame(image: ImageU8, size: tuple[int, int], crop_top: float) -> ImageU8:
    """Crop ``image`` to the aspect of ``size`` (``crop_top`` in [0, 1] picks the band)."""
    width, height = size
    h, w = image.shape[:2]
    if w * height >= h * width:
        new_w = round(h * width / height)
        x0 = (w - new_w) // 2
        image = image[:, x0 : x0 + new_w]
    else:
        new_h = round(w * height / width)
        y0 = round((h - new_h) * crop_top)
        image = image[y0 : y0 + new_h]
    interp = cv2.INTER_CUBIC if image.shape[1] < width else cv2.INTER_AREA
    return np.ascontiguousarray(cv2.resize(image, (width, height), interpolation=interp))


class StillBackground:
    """A street photo, upscaled once; the camera look adds drift and noise."""

    def __init__(self, path: Path, size: tuple[int, int], crop_top: float) -> None:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise BadInputError(f"background image {path} is missing or not an image")
        self._base = fit_to_frame(image, size, crop_top)

    def frame_at(self, t: float) -> ImageU8:
        return self._base.copy()


class VideoBackground:
    """Real footage (e.g. opencv-doc vtest.avi), looped and cropped to the frame size.

    Frames are decoded in order; asking for an earlier time reopens the file.
    """

    def __init__(self, path: Path, size: tuple[int, int], crop_top: float) -> None:
        self._path, self._size, self._crop_top = path, size, crop_top
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            self._rate = float(stream.average_rate or 0) or 10.0
            self._count = stream.frames or sum(1 for _ in container.decode(stream))
        if self._count == 0:
            raise BadInputError(f"background video {path} has no frames")
        self._container: av.container.InputContainer | None = None
        self._frames: Iterator[av.VideoFrame] | None = None
        self._index = -1
        self._cached: tuple[int, ImageU8] | None = None

    def _reopen(self) -> Iterator[av.VideoFrame]:
        if self._container is not None:
            self._container.close()
        self._container = av.open(str(self._path))
        self._frames = self._container.decode(video=0)
        self._index = -1
        return self._frames

    def _source_frame(self, index: int) -> ImageU8:
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        frames = self._frames
        if frames is None or index <= self._index:
            frames = self._reopen()
        frame: av.VideoFrame | None = None
        while self._index < index:
            frame = next(frames, None)
            if frame is None:
                raise BadInputError(f"background video {self._path} ended before frame {index}")
            self._index += 1
        if frame is None:  # not reached: index > self._index after a reopen
            raise BadInputError(f"background video {self._path}: no frame {index}")
        image = fit_to_frame(frame.to_ndarray(format="bgr24"), self._size, self._crop_top)
        self._cached = (index, image)
        return image

    def frame_at(self, t: float) -> ImageU8:
        return self._source_frame(int(t * self._rate + 1e-6) % self._count).copy()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


class PanningBackground:
    """A camera in a moving car: street photos joined into a strip (then mirrored, so
    the strip repeats seamlessly) slide past at ``pan_px_per_s``, with a small bob."""

    _BOB_PX = 3

    def __init__(self, paths: list[Path], size: tuple[int, int], pan_px_per_s: float) -> None:
        width, height = size
        tall = height + 2 * self._BOB_PX
        tiles = []
        for path in paths:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise BadInputError(f"background image {path} is missing or not an image")
            new_w = round(image.shape[1] * tall / image.shape[0])
            tiles.append(cv2.resize(image, (new_w, tall), interpolation=cv2.INTER_CUBIC))
        strip = tiles + [np.ascontiguousarray(tile[:, ::-1]) for tile in reversed(tiles)]
        self._period = sum(tile.shape[1] for tile in strip)
        repeats = 2 + math.ceil(width / self._period)  # enough to cut any window from
        self._strip = np.ascontiguousarray(np.hstack(strip * repeats)[:, : self._period + width])
        self._size, self._pan = size, pan_px_per_s

    def frame_at(self, t: float) -> ImageU8:
        width, height = self._size
        x = round(self._pan * t) % self._period
        y = self._BOB_PX + round(self._BOB_PX * 0.7 * math.sin(2 * math.pi * t / 1.3))
        return self._strip[y : y + height, x : x + width].copy()


@dataclass(frozen=True)
class SensorLook:
    """Slow lighting drift and sensor noise, applied to the whole composited frame."""

    noise_bank: tuple[ImageU8, ...]  # uint8 noise frames centred on 128
    drift_amplitude: float
    drift_period_s: float
    drift_phase: float

    @classmethod
    def create(cls, rng: np.random.Generator, size: tuple[int, int], sigma: float) -> SensorLook:
        width, height = size
        bank = tuple(
            (128.5 + sigma * rng.standard_normal((height, width, 3), dtype=np.float32))
            .clip(0, 255)
            .astype(np.uint8)
            for _ in range(4)
        )
        return cls(
            bank,
            float(rng.uniform(0.03, 0.07)),
            float(rng.uniform(40, 90)),
            float(rng.uniform(0, 2 * math.pi)),
        )

    def apply(self, frame: ImageU8, t: float, noise_index: int) -> ImageU8:
        gain = 1.0 + self.drift_amplitude * math.sin(2 * math.pi * t / self.drift_period_s + self.drift_phase)
        noise = self.noise_bank[noise_index % len(self.noise_bank)]
        return cv2.addWeighted(frame, gain, noise, 1.0, -128.0)


@dataclass(frozen=True)
class PersonTrack:
    """A person walking on a straight path: a real head crop on a drawn body.

    The face centre moves linearly from ``start`` to ``end`` (x, y, face height in px)
    between ``t_start`` and ``t_end`` (camera time, s), with a small walking bob.
    """

    person_id: str
    head: HeadSprite
    t_start: float
    t_end: float
    start: tuple[float, float, float]
    end: tuple[float, float, float]
    torso_bgr: tuple[int, int, int]
    legs_bgr: tuple[int, int, int]
    gait_phase: float

    def _state(self, t: float) -> tuple[float, float, float, float]:
        u = min(1.0, max(0.0, (t - self.t_start) / (self.t_end - self.t_start)))
        x, y, s = (a + (b - a) * u for a, b in zip(self.start, self.end))
        phase = self.gait_phase + 2 * math.pi * 1.8 * (t - self.t_start)
        return x, y - 0.03 * s * abs(math.sin(phase)), s, phase

    def _head_placement(self, t: float) -> tuple[int, int, int, int, float]:
        x, y, s, phase = self._state(t)
        hx1, hy1, hx2, hy2 = self.head.face_box
        scale = s / self.head.face_height
        src_h, src_w = self.head.pixels.shape[:2]
        new_w, new_h = max(2, round(src_w * scale)), max(2, round(src_h * scale))
        x0 = round(x - scale * (hx1 + hx2) / 2)
        y0 = round(y - scale * (hy1 + hy2) / 2)
        return x0, y0, new_w, new_h, phase

    def face_box(self, t: float) -> PixelBox:
        """The face box as composited at ``t`` (not clipped to the frame)."""
        x0, y0, new_w, new_h, _ = self._head_placement(t)
        src_h, src_w = self.head.pixels.shape[:2]
        rx, ry = new_w / src_w, new_h / src_h
        hx1, hy1, hx2, hy2 = self.head.face_box
        return (round(x0 + hx1 * rx), round(y0 + hy1 * ry), round(x0 + hx2 * rx), round(y0 + hy2 * ry))

    def extent(self, t: float) -> PixelBox:
        """A box holding the whole person (head, arms, legs) at ``t``."""
        x1, y1, x2, y2 = self.face_box(t)
        fw, s = x2 - x1, y2 - y1
        cx = (x1 + x2) / 2
        half = 1.25 * fw + 0.85 * s  # swinging hands reach this far out
        return (int(cx - half), int(y1 - 0.4 * s), int(cx + half) + 1, int(y2 + 6.0 * s) + 1)

    def depth(self, t: float) -> float:
        return self._state(t)[2]

    def draw(self, frame: ImageU8, t: float) -> None:
        self._draw_body(frame, t)
        self._draw_head(frame, t)

    def _draw_body(self, frame: ImageU8, t: float) -> None:
        x1, y1, x2, y2 = self.face_box(t)
        fw, s = x2 - x1, y2 - y1
        cx = (x1 + x2) / 2
        phase = self._state(t)[3]
        swing = math.sin(phase)
        neck_y, shoulder_y = y2 - 0.1 * s, y2 + 0.18 * s
        hip_y = shoulder_y + 2.4 * s
        sw, hw = 1.25 * fw, 0.85 * fw
        _line(frame, (cx, neck_y), (cx, shoulder_y + 0.1 * s), self.head.skin_bgr, 0.42 * fw)
        for side in (-1, 1):
            leg_top = (cx + side * 0.42 * fw, hip_y - 0.1 * s)
            angle = side * 0.35 * swing
            foot = (leg_top[0] + 3.0 * s * math.sin(angle), leg_top[1] + 3.0 * s * math.cos(angle))
            _line(frame, leg_top, foot, self.legs_bgr, 0.55 * fw)
            _line(frame, foot, (foot[0] + 0.35 * fw, foot[1]), (30, 30, 35), 0.3 * fw)
        torso = np.array(
            [
                (cx - sw, shoulder_y + 0.2 * s),
                (cx - 0.85 * sw, shoulder_y),
                (cx + 0.85 * sw, shoulder_y),
                (cx + sw, shoulder_y + 0.2 * s),
                (cx + hw, hip_y),
                (cx - hw, hip_y),
            ]
        )
        cv2.fillPoly(
            frame, [np.round(torso * 16).astype(np.int32)], self.torso_bgr, lineType=cv2.LINE_AA, shift=4
        )
        b, g, r = (int(c * 0.85) for c in self.torso_bgr)
        sleeve = (b, g, r)
        for side in (-1, 1):
            shoulder = (cx + side * 0.95 * sw, shoulder_y + 0.2 * s)
            angle = -side * 0.3 * swing + side * 0.08
            hand = (shoulder[0] + 2.2 * s * math.sin(angle), shoulder[1] + 2.2 * s * math.cos(angle))
            _line(frame, shoulder, hand, sleeve, 0.42 * fw)
            _line(frame, hand, hand, self.head.skin_bgr, 0.4 * fw)

    def _draw_head(self, frame: ImageU8, t: float) -> None:
        x0, y0, new_w, new_h, _ = self._head_placement(t)
        height, width = frame.shape[:2]
        xa, ya, xb, yb = max(0, x0), max(0, y0), min(width, x0 + new_w), min(height, y0 + new_h)
        if xa >= xb or ya >= yb:
            return
        interp = cv2.INTER_AREA if new_h < self.head.pixels.shape[0] else cv2.INTER_LINEAR
        pixels = cv2.resize(self.head.pixels, (new_w, new_h), interpolation=interp)
        pixels = cv2.GaussianBlur(pixels, (3, 3), 0.6)
        alpha = cv2.resize(self.head.alpha, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        sub = (slice(ya - y0, yb - y0), slice(xa - x0, xb - x0))
        a = alpha[sub][:, :, None]
        roi = frame[ya:yb, xa:xb]
        blended = pixels[sub].astype(np.float32) * a + roi.astype(np.float32) * (1.0 - a)
        roi[:] = (blended + 0.5).astype(np.uint8)


def _line(
    frame: ImageU8,
    p: tuple[float, float],
    q: tuple[float, float],
    colour: tuple[int, int, int],
    thickness: float,
) -> None:
    cv2.line(
        frame,
        (round(p[0] * 16), round(p[1] * 16)),
        (round(q[0] * 16), round(q[1] * 16)),
        colour,
        max(1, round(thickness)),
        lineType=cv2.LINE_AA,
        shift=4,
    )


def draw_osd(frame: ImageU8, text: str) -> None:
    """The camera's on-screen display (time and camera name), top left."""
    scale = frame.shape[0] / 720
    org = (round(16 * scale), round(34 * scale))
    for colour, weight in (((0, 0, 0), 4), ((235, 235, 235), 1)):
        cv2.putText(
            frame,
            text,
            org,
            cv2.FONT_HERSHEY_SIMPLEX,
            0.75 * scale,
            colour,
            max(1, round(weight * scale)),
            cv2.LINE_AA,
        )


def osd_box(size: tuple[int, int]) -> PixelBox:
    """The region the OSD may cover; no face is placed there."""
    scale = size[1] / 720
    return (0, 0, round(600 * scale), round(50 * scale))
