"""Boxes in image pixels: the one ``Box`` type and its grow / clip / IoU helpers.

A box is ``(x1, y1, x2, y2)`` with ``x1 <= x2`` and ``y1 <= y2``, in pixels of the
image it was found in (``x2``/``y2`` exclusive when whole pixels). Detectors, trackers,
redaction and thumbnails all use these; nothing here knows what is inside a box.
"""

from __future__ import annotations

import math

Box = tuple[float, float, float, float]
PixelBox = tuple[int, int, int, int]  # whole pixels, e.g. to slice an array


def expand(box: Box, dx: float, dy: float) -> Box:
    """``box`` with ``dx`` added left and right and ``dy`` above and below (no clipping)."""
    x1, y1, x2, y2 = box
    return (x1 - dx, y1 - dy, x2 + dx, y2 + dy)


def clip(box: Box, width: float, height: float) -> Box:
    """``box`` limited to the image ``[0, width] x [0, height]`` (it may end up empty)."""
    x1, y1, x2, y2 = box
    return (max(0, x1), max(0, y1), min(width, x2), min(height, y2))


def to_pixels(box: Box, *, outward: bool = True) -> PixelBox:
    """Whole pixels: ``outward`` floors the top-left and ceils the bottom-right (covers the
    box); otherwise both corners are floored (truncated, for non-negative boxes)."""
    x1, y1, x2, y2 = box
    if outward:
        return (math.floor(x1), math.floor(y1), math.ceil(x2), math.ceil(y2))
    return (math.floor(x1), math.floor(y1), math.floor(x2), math.floor(y2))


def grow(box: Box, margin: float, width: int, height: int) -> PixelBox:
    """``box`` grown by ``margin`` x its size on each side, as whole pixels in the image."""
    x1, y1, x2, y2 = box
    return to_pixels(clip(expand(box, margin * (x2 - x1), margin * (y2 - y1)), width, height))


def union(a: Box, b: Box) -> Box:
    """The smallest box holding both."""
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def lerp(a: Box, b: Box, w: float) -> Box:
    """The box ``w`` of the way from ``a`` to ``b`` (0: ``a``, 1: ``b``; beyond extrapolates)."""
    return (
        a[0] + (b[0] - a[0]) * w,
        a[1] + (b[1] - a[1]) * w,
        a[2] + (b[2] - a[2]) * w,
        a[3] + (b[3] - a[3]) * w,
    )


def iou(a: Box, b: Box) -> float:
    """Intersection over union, 0..1 (0 when either box is empty)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union_area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union_area if union_area > 0 else 0.0


def merge_overlapping(boxes: list[PixelBox], *, touching: bool = False) -> list[PixelBox]:
    """Boxes that overlap (or, with ``touching``, share an edge) replaced by their union,
    until none do."""
    out = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                if touching:
                    meet = a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]
                else:
                    meet = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
                if meet:
                    out[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del out[j]
                    merged = True
                    break
            if merged:
                break
    return out
