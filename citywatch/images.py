"""Decoding user-supplied images (probes, enrolment photos) with size limits."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from citywatch.errors import BadInputError

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 25_000_000  # Settings.search.probe_max_pixels' default


def decode_image(
    data: bytes, source: str, *, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS
) -> np.ndarray:
    """BGR uint8 image from encoded bytes; refuses empty, huge or undecodable input."""
    if not data:
        raise BadInputError(f"image {source} is empty")
    if len(data) > max_bytes:
        raise BadInputError(f"image {source} is {len(data)} bytes; the limit is {max_bytes}")
    try:
        with Image.open(io.BytesIO(data)) as probe:  # reads the header only
            width, height = probe.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise BadInputError(f"image {source} is not a readable image: {exc}") from exc
    if width * height > max_pixels:
        raise BadInputError(
            f"image {source} is {width}x{height} px ({width * height:,} pixels); the limit is "
            f"{max_pixels:,} pixels (probe_max_pixels): scale it down or crop it"
        )
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise BadInputError(f"image {source} could not be decoded")
    return image


def face_crop_jpeg(image: np.ndarray, bbox: tuple[float, float, float, float], max_side: int = 160) -> bytes:
    """A JPEG of one face with a little context (a fifth of its size each side), long side
    at most ``max_side``: what a reviewer needs to compare, not the photo it came from."""
    x0, y0, x1, y1 = (int(round(v)) for v in bbox)
    pad = int(0.2 * max(x1 - x0, y1 - y0))
    height, width = image.shape[:2]
    patch = image[max(0, y0 - pad) : min(height, y1 + pad), max(0, x0 - pad) : min(width, x1 + pad)]
    if not patch.size:
        return b""
    scale = min(1.0, max_side / max(patch.shape[:2]))
    if scale < 1.0:
        patch = cv2.resize(patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", patch, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else b""
