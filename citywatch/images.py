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
