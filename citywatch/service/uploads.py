"""Uploaded images: checked from their header before anything is decoded or written."""

from __future__ import annotations

import io

from fastapi import UploadFile
from PIL import Image, UnidentifiedImageError

from citywatch.errors import BadInputError
from citywatch.images import MAX_IMAGE_PIXELS

IMAGE_TYPES = {"JPEG": "jpg", "PNG": "png"}


def read_image_upload(upload: UploadFile, what: str, max_bytes: int) -> tuple[bytes, str]:
    """(bytes, file extension) of an uploaded JPEG or PNG, else BadInputError naming the problem.

    Refuses other formats, files over ``max_bytes`` and images over the pixel limit
    (a decompression bomb: a small file that claims a huge image) from the header alone.
    """
    data = upload.file.read(max_bytes + 1)
    name = f"{what} {upload.filename or ''}".strip()
    if not data:
        raise BadInputError(f"{name} is empty")
    if len(data) > max_bytes:
        raise BadInputError(f"{name} is over the limit of {max_bytes} bytes")
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise BadInputError(f"{name} is not a readable JPEG or PNG image: {exc}") from exc
    if kind not in IMAGE_TYPES:
        raise BadInputError(f"{name} is a {kind} image; send a JPEG or PNG")
    if width * height > MAX_IMAGE_PIXELS:
        raise BadInputError(
            f"{name} claims {width}x{height} px; the limit is {MAX_IMAGE_PIXELS} pixels (decompression bomb?)"
        )
    return data, IMAGE_TYPES[kind]
