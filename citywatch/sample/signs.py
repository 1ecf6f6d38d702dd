"""Shop signs on the walls of one sample camera: text that is not a plate.

Street cameras see shop signs, and text detection reads them as well as a plate: the
plate branch made plate rows such as ``WHGOV`` and ``QZ01`` from a sign (issue 18). The
sample draws signs on the walls of ``SIGN_CAMERA`` above the pavement, behind everyone
(people walk in front of them): lettering on a board much larger than the text, or
straight on the wall, and a neon ``OPEN`` sign that blinks (it moves for the motion
gate, in a region of vehicle size). They fit the Hong Kong personalised-mark pattern, so
only the plate gate (citywatch/plate_gate.py) keeps them out of the plates table.
Positions are for a 1280x720 frame and scaled to the frame size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from citywatch.geometry import PixelBox
from citywatch.sample.faces import ImageU8

SIGN_CAMERA = "cam-hennessy-rd"  # left of its privacy mask (x >= 600, y < 250), above the heads
_FONTS = Path("/usr/share/fonts/truetype/dejavu")


@dataclass(frozen=True)
class ShopSign:
    text: str
    x: int  # board's top-left corner, 1280x720 frame pixels
    y: int
    text_px: int  # letter height
    ink: tuple[int, int, int]  # BGR
    board: tuple[int, int, int]  # BGR
    margin: float  # board margin round the text, in text heights (0: lettering on the wall)
    font: str
    blink_s: float = 0.0  # > 0: lit for blink_s, dark for blink_s (a neon sign)

    def box(self, size: tuple[int, int]) -> PixelBox:
        """The board (or lettering) in pixels of a ``size`` frame."""
        img = _render(self, size)
        x, y = _origin(self, size)
        return x, y, x + img.shape[1], y + img.shape[0]


SIGNS: tuple[ShopSign, ...] = (
    ShopSign("WHGOV", 20, 20, 36, (250, 250, 250), (120, 60, 20), 1.0, "DejaVuSans-Bold.ttf"),
    ShopSign("OPEN", 330, 60, 44, (80, 60, 255), (30, 20, 30), 0.8, "DejaVuSans-Bold.ttf", blink_s=1.0),
    ShopSign("SUNTRUP", 700, 275, 34, (110, 40, 20), (0, 0, 0), 0.0, "DejaVuSansCondensed-Bold.ttf"),
    ShopSign("QZ01", 990, 300, 34, (20, 20, 200), (225, 235, 240), 1.5, "DejaVuSerif-Bold.ttf"),
)


def _origin(sign: ShopSign, size: tuple[int, int]) -> tuple[int, int]:
    return round(sign.x * size[0] / 1280), round(sign.y * size[1] / 720)


@lru_cache(maxsize=32)
def _render(sign: ShopSign, size: tuple[int, int]) -> ImageU8:
    """The sign's board with its text (BGR); lettering on the wall has no board."""
    height = max(8, round(sign.text_px * size[1] / 720))
    face = ImageFont.truetype(str(_FONTS / sign.font), int(height * 1.35))
    left, top, right, bottom = (int(v) for v in face.getbbox(sign.text))
    pad = max(2, int(sign.margin * height)) if sign.margin > 0 else 2
    img = Image.new("RGB", (right - left + 2 * pad, bottom - top + 2 * pad), sign.board[::-1])
    ImageDraw.Draw(img).text((pad - left, pad - top), sign.text, font=face, fill=sign.ink[::-1])
    return np.ascontiguousarray(cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR))


@dataclass(frozen=True)
class SignSprite:
    """A sign on the wall for the whole segment, drawn behind every person and car."""

    sign: ShopSign
    size: tuple[int, int]

    @property
    def t_start(self) -> float:
        return -math.inf

    @property
    def t_end(self) -> float:
        return math.inf

    def depth(self, t: float) -> float:
        return -math.inf  # on the wall: behind everyone

    def draw(self, frame: ImageU8, t: float) -> None:
        img = _render(self.sign, self.size)
        x, y = _origin(self.sign, self.size)
        h, w = min(img.shape[0], frame.shape[0] - y), min(img.shape[1], frame.shape[1] - x)
        if h <= 0 or w <= 0:
            return
        region = frame[y : y + h, x : x + w]
        if self.sign.margin <= 0:  # lettering on the wall: only the letters are painted
            ink = np.any(np.abs(img[:h, :w].astype(np.int16) - self.sign.board) > 40, axis=2)
            region[ink] = img[:h, :w][ink]
            return
        lit = self.sign.blink_s <= 0 or int(t // self.sign.blink_s) % 2 == 0
        region[:] = img[:h, :w] if lit else (img[:h, :w] * 0.35).astype(np.uint8)


def sign_sprites(camera_id: str, size: tuple[int, int]) -> tuple[SignSprite, ...]:
    """The signs on ``camera_id``'s walls (none but at ``SIGN_CAMERA``)."""
    return tuple(SignSprite(s, size) for s in SIGNS) if camera_id == SIGN_CAMERA else ()
