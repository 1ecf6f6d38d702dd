"""Synthetic Hong Kong-like licence plates for tests and benchmarks.

A plate is 520 x 110 mm, one line of black bold characters on white (front) or
yellow (rear) with a thin black border. Characters are DejaVu Sans Bold fitted to
fixed-width cells (except 1 and I) to resemble the tall, even plate font. Standard
marks are shown with a gap between letters and number (``AB 1234``), as on real plates.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypedDict, Unpack

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from citywatch.errors import BadInputError

FONT_PATH = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
PLATE_MM = (520.0, 110.0)
_PX_PER_MM = 2.0  # master rendering resolution, resized down to the asked width
_CHAR_HEIGHT_MM = 76.0
_STANDARD = re.compile(r"^([A-Z]{1,2})([0-9]{1,4})$")
_WHITE_BGR = (245, 245, 245)
_YELLOW_BGR = (20, 200, 250)

PlateStyle = Literal["front", "rear"]


@lru_cache(maxsize=16)
def _font(path: Path, size_px: int) -> ImageFont.FreeTypeFont:
    if not path.is_file():
        raise BadInputError(f"plate font {path}: not found (install fonts-dejavu-core)")
    return ImageFont.truetype(str(path), size_px)


def display_text(text: str) -> str:
    """How a mark is laid out on the plate: ``AB1234`` -> ``AB 1234``; others as given."""
    match = _STANDARD.match(text)
    return f"{match.group(1)} {match.group(2)}" if match else text


def _glyph(char: str, height_px: int, cell_ratio: float, font_path: Path) -> np.ndarray:
    """Grey mask (255 = ink) of one glyph, exactly ``height_px`` tall.

    Like the HK/UK plate font, glyph widths are evened out: each is condensed to
    0.85 of its natural width, then clamped to ``cell_ratio`` x height +-8% (so J
    gets wider and M narrower), except the narrow ``1`` and ``I``. Every glyph has
    the same height (DejaVu's J descends, plate fonts' does not).
    """
    font = _font(font_path, int(height_px * 1.38))  # DejaVu cap height is ~0.73 em
    left, top, right, bottom = font.getbbox(char)
    canvas = Image.new("L", (int(right - left) + 4, int(bottom - top) + 4), 0)
    ImageDraw.Draw(canvas).text((2 - left, 2 - top), char, font=font, fill=255)
    mask = np.asarray(canvas)
    rows, cols = np.nonzero(mask > 0)
    mask = mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    natural_w = mask.shape[1] * height_px / mask.shape[0]
    if char in "1I":
        new_w = natural_w * 0.8
    else:
        new_w = float(
            np.clip(natural_w * 0.85, (cell_ratio - 0.08) * height_px, (cell_ratio + 0.08) * height_px)
        )
    return cv2.resize(mask, (max(1, int(round(new_w))), height_px), interpolation=cv2.INTER_AREA)


def _text_layer(text: str, height_px: int, cell_ratio: float, font_path: Path) -> np.ndarray:
    """Grey mask of ``text``: glyphs 0.14 x height apart, 0.42 x height between groups."""
    gap = int(0.14 * height_px)
    parts: list[np.ndarray] = []
    for char in text:
        if char == " ":
            parts.append(np.zeros((height_px, int(0.28 * height_px)), dtype=np.uint8))
            continue
        if parts:
            parts.append(np.zeros((height_px, gap), dtype=np.uint8))
        parts.append(_glyph(char, height_px, cell_ratio, font_path))
    return np.hstack(parts)


def render_plate(
    text: str,
    *,
    style: PlateStyle,
    width_px: int,
    rng: np.random.Generator | None = None,
    font_path: Path = FONT_PATH,
) -> np.ndarray:
    """A BGR uint8 plate of ``width_px`` x ~0.21*``width_px`` showing ``text``.

    ``rng`` adds small variation (tint, glyph width, border); None gives a fixed look.
    ``font_path``: a TrueType font for the characters (training uses several).
    """
    if style not in ("front", "rear"):
        raise BadInputError(f"plate style {style!r}: expected 'front' or 'rear'")
    if width_px < 16:
        raise BadInputError(f"plate width {width_px}px: at least 16px needed")
    shown = display_text(text.strip().upper())
    if not shown or len(shown) > 10:
        raise BadInputError(f"plate text {text!r}: need 1..10 characters")
    master_w = int(PLATE_MM[0] * _PX_PER_MM)
    master_h = int(PLATE_MM[1] * _PX_PER_MM)
    base = np.array(_WHITE_BGR if style == "front" else _YELLOW_BGR, dtype=np.float32)
    cell_ratio = 0.63  # 50 mm wide glyphs, 79 mm tall
    border = int(2.5 * _PX_PER_MM)
    if rng is not None:
        base = np.clip(base * rng.uniform(0.85, 1.0) + rng.normal(0.0, 5.0, 3), 0, 255)
        cell_ratio = float(rng.uniform(0.56, 0.66))
        border = int(rng.uniform(1.5, 4.0) * _PX_PER_MM)
    plate = np.empty((master_h, master_w, 3), dtype=np.float32)
    plate[:] = base
    cv2.rectangle(
        plate,
        (border // 2, border // 2),
        (master_w - 1 - border // 2, master_h - 1 - border // 2),
        (15, 15, 15),
        thickness=border,
    )
    ink = _text_layer(shown, int(_CHAR_HEIGHT_MM * _PX_PER_MM), cell_ratio, font_path)
    usable_w = master_w - 2 * int(15 * _PX_PER_MM)
    if ink.shape[1] > usable_w:  # long personalised marks: squeeze further to fit
        ink = cv2.resize(ink, (usable_w, ink.shape[0]), interpolation=cv2.INTER_AREA)
    y0 = (master_h - ink.shape[0]) // 2
    x0 = (master_w - ink.shape[1]) // 2
    alpha = ink.astype(np.float32)[..., None] / 255.0
    region = plate[y0 : y0 + ink.shape[0], x0 : x0 + ink.shape[1]]
    region[:] = region * (1.0 - alpha) + 15.0 * alpha
    height_px = max(4, int(round(width_px * PLATE_MM[1] / PLATE_MM[0])))
    out = cv2.resize(plate, (width_px, height_px), interpolation=cv2.INTER_AREA)
    return np.clip(out, 0, 255).astype(np.uint8)


def _motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    size = max(3, int(np.ceil(length)) | 1)
    kernel = np.zeros((size, size), dtype=np.float32)
    centre = size // 2
    dx = np.cos(np.deg2rad(angle_deg)) * length / 2
    dy = np.sin(np.deg2rad(angle_deg)) * length / 2
    cv2.line(
        kernel,
        (int(round(centre - dx)), int(round(centre - dy))),
        (int(round(centre + dx)), int(round(centre + dy))),
        1.0,
        thickness=1,
        lineType=cv2.LINE_AA,
    )
    return kernel / kernel.sum()


class DegradeOptions(TypedDict, total=False):
    """How :func:`degrade_plate_warp` degrades a plate (every key optional)."""

    blur: float
    rotation_deg: float
    perspective: float
    noise: float
    jpeg_quality: int | None


def degrade_plate(img: np.ndarray, rng: np.random.Generator, **options: Unpack[DegradeOptions]) -> np.ndarray:
    """Warp and degrade a BGR plate; returns BGRA (alpha marks where the plate is).

    The options are :func:`degrade_plate_warp`'s, which also returns the warp.
    """
    return degrade_plate_warp(img, rng, **options)[0]


def degrade_plate_warp(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    blur: float = 0.0,
    rotation_deg: float = 0.0,
    perspective: float = 0.0,
    noise: float = 0.0,
    jpeg_quality: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Warp and degrade a BGR plate: (BGRA image, 3x3 perspective matrix plate -> image).

    Alpha marks where the plate is; the matrix maps plate pixels to the returned
    image's pixels (training data uses it to find where the characters went).

    ``blur``: motion-blur length in pixels (direction drawn from ``rng``);
    ``rotation_deg``: in-plane rotation; ``perspective``: corner jitter as a fraction
    of the plate's size (0..0.4); ``noise``: Gaussian sigma in grey levels;
    ``jpeg_quality``: 1..100 or None for no JPEG round-trip. The canvas grows to hold
    the warped plate; pixels outside it have alpha 0.
    """
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise BadInputError(f"plate image: expected HxWx3 uint8, got {img.shape} {img.dtype}")
    if not 0.0 <= perspective <= 0.4:
        raise BadInputError(f"plate perspective {perspective}: expected 0..0.4")
    if jpeg_quality is not None and not 1 <= jpeg_quality <= 100:
        raise BadInputError(f"plate jpeg_quality {jpeg_quality}: expected 1..100")
    h, w = img.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    jitter = rng.uniform(-perspective, perspective, size=(4, 2)) * np.array([w, h], dtype=np.float32)
    centre = np.array([w / 2, h / 2], dtype=np.float32)
    theta = np.deg2rad(rotation_deg)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]], dtype=np.float32)
    dst = (src + jitter - centre) @ rot.T
    pad = int(np.ceil(blur)) + 2
    dst -= dst.min(axis=0) - pad
    out_w = int(np.ceil(dst[:, 0].max())) + pad
    out_h = int(np.ceil(dst[:, 1].max())) + pad
    matrix = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    bgra = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    warped = cv2.warpPerspective(
        bgra,
        matrix,
        (out_w, out_h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0, 0),
    ).astype(np.float32)
    if blur > 0.5:  # blur premultiplied colour and alpha together so the edges blend
        alpha = warped[..., 3:] / 255.0
        premult = np.concatenate([warped[..., :3] * alpha, warped[..., 3:]], axis=2)
        premult = cv2.filter2D(premult, -1, _motion_kernel(blur, float(rng.uniform(0, 180))))
        alpha = np.maximum(premult[..., 3:] / 255.0, 1e-6)
        warped = np.concatenate([premult[..., :3] / alpha, premult[..., 3:]], axis=2)
    if noise > 0:
        warped[..., :3] += rng.normal(0.0, noise, size=warped[..., :3].shape)
    result = np.clip(warped, 0, 255).astype(np.uint8)
    if jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", result[..., :3], [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        if not ok:
            raise BadInputError("plate image: JPEG encoding failed")
        result[..., :3] = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return result, matrix


def paste_plate(frame: np.ndarray, plate_img: np.ndarray, x: int, y: int) -> np.ndarray:
    """A copy of ``frame`` with the plate's top-left corner at (x, y), clipped to the frame.

    A BGRA plate is alpha-blended; a BGR plate is copied as is.
    """
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise BadInputError(f"frame: expected HxWx3, got {frame.shape}")
    if plate_img.ndim != 3 or plate_img.shape[2] not in (3, 4):
        raise BadInputError(f"plate image: expected HxWx3 or HxWx4, got {plate_img.shape}")
    out = frame.copy()
    fh, fw = frame.shape[:2]
    ph, pw = plate_img.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + pw, fw), min(y + ph, fh)
    if x0 >= x1 or y0 >= y1:
        return out
    patch = plate_img[y0 - y : y1 - y, x0 - x : x1 - x]
    if patch.shape[2] == 3:
        out[y0:y1, x0:x1] = patch
        return out
    alpha = patch[..., 3:].astype(np.float32) / 255.0
    blended = patch[..., :3].astype(np.float32) * alpha + out[y0:y1, x0:x1].astype(np.float32) * (1 - alpha)
    out[y0:y1, x0:x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return out


_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"  # HK ordinary marks skip I, O and Q
_PERSONALISED = (
    "BATMAN",
    "HK7",
    "LUCKY8",
    "DRAGON",
    "CITYWAY",
    "JC2024",
    "MYCAR",
    "FLY",
    "88ROSE",
    "TAXIKING",
)


def random_hk_plate(rng: np.random.Generator) -> str:
    """A plausible HK mark: mostly ``AB1234``-style, some short (``HK7``) or personalised."""
    kind = rng.uniform()
    if kind < 0.06:
        return str(rng.choice(_PERSONALISED))
    if kind < 0.12:  # word-like personalised mark: 2-6 letters, sometimes 1-2 digits after
        letters = "".join(rng.choice(list(_LETTERS), size=int(rng.integers(2, 7))))
        digits = "".join(rng.choice(list("123456789"), size=int(rng.choice([0, 0, 1, 2]))))
        return letters + digits
    n_letters = 2 if rng.uniform() < 0.85 else 1
    letters = "".join(rng.choice(list(_LETTERS), size=n_letters))
    n_digits = int(rng.choice([1, 2, 3, 4], p=[0.08, 0.12, 0.2, 0.6]))
    number = str(int(rng.integers(10 ** (n_digits - 1), 10**n_digits)))
    return letters + number
