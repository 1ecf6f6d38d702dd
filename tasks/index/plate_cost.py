"""A cheap test before PP-OCR text detection: can this region hold a plate at all?

Text detection costs ~0.1 s of CPU per moving region (63 % of all indexing CPU before
issue #17). Most moving regions are people, shadows or car bodies without a readable
plate in view. A plate's characters are dark strokes on a light plate (or the reverse),
so its row of glyphs is a dense band of strong horizontal gradients, several strokes
wide and a few times wider than tall. ``may_hold_plate`` looks for such a band on the
region's grey pixels (Sobel x, threshold, a horizontal closing to join the strokes of
one line, connected components of plate-like size and shape); a region with none is
not sent to text detection. The classic plate-localisation recipe, ~1 ms per region.

It errs on the side of reading: any textured band of the right shape passes (signs,
patterned clothes), only flat or blob-like regions are skipped. Its recall on plates
is measured by ``benchmarks/plates.py`` (gate row) and guarded by
``tests/test_plate_cost.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from citywatch.geometry import PixelBox, merge_overlapping


def may_hold_plate(
    image: np.ndarray,
    region: PixelBox,
    *,
    min_plate_px: int = 32,
    min_contrast: int = 48,
) -> bool:
    """Whether ``region`` (x1, y1, x2, y2 of the BGR ``image``) may hold a plate line at
    least ``min_plate_px`` wide whose strokes differ by at least ``min_contrast`` grey
    levels from the plate."""
    return next(_bands(image, region, min_plate_px, min_contrast), None) is not None


def plate_bands(
    image: np.ndarray,
    region: PixelBox,
    *,
    min_plate_px: int = 32,
    min_contrast: int = 48,
) -> list[PixelBox]:
    """Every band of glyph strokes in ``region`` that ``may_hold_plate`` would accept,
    as boxes in ``image`` pixels (from every pyramid level and both contrasts)."""
    return list(_bands(image, region, min_plate_px, min_contrast))


def band_windows(bands: list[PixelBox], region: PixelBox, *, max_share: float = 0.6) -> list[PixelBox]:
    """Where text detection should look in ``region`` given its stroke ``bands``: each
    band grown by its height above and below (the other line of a two-line plate, the
    plate's border) and by 3x its height left and right (a glyph group the closing
    did not join, the plate's edge), overlapping windows merged, clipped to the region.
    When the windows would cover ``max_share`` of the region or more, the region itself
    (one detection over it costs less than several over most of it)."""
    rx1, ry1, rx2, ry2 = region
    windows: list[PixelBox] = []
    for x1, y1, x2, y2 in bands:
        h = y2 - y1
        grown = (
            max(rx1, x1 - 3 * h - 4),
            max(ry1, y1 - h - 4),
            min(rx2, x2 + 3 * h + 4),
            min(ry2, y2 + h + 4),
        )
        windows.append(grown)
    windows = merge_overlapping(windows, touching=True)
    area = sum((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in windows)
    if area >= max_share * (rx2 - rx1) * (ry2 - ry1):
        return [region]
    return sorted(windows)


def _bands(image: np.ndarray, region: PixelBox, min_plate_px: int, min_contrast: int) -> Iterator[PixelBox]:
    x1, y1, x2, y2 = region
    grey = cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
    # a plate's glyphs are ~1/6 of its width apart: at full size the closing joins the
    # smallest plates' glyphs; larger plates are looked for on halved copies, where
    # their glyph gaps shrink to the same few pixels
    # at each size also at twice the contrast: a low threshold on a busy background
    # can join a plate's strokes with its surroundings into one blob of no line's shape
    scale = 1
    while grey.shape[0] >= 8 and grey.shape[1] >= min_plate_px:
        gx = np.abs(cv2.Sobel(grey, cv2.CV_16S, 1, 0, ksize=3))
        for contrast in (min_contrast, 2 * min_contrast):
            for bx, by, bw, bh in _stroke_bands(gx, min_plate_px, contrast):
                yield (
                    x1 + bx * scale,
                    y1 + by * scale,
                    min(x2, x1 + (bx + bw) * scale),
                    min(y2, y1 + (by + bh) * scale),
                )
        grey = cv2.pyrDown(grey)
        scale *= 2


def _stroke_bands(
    gx: np.ndarray, min_plate_px: int, min_contrast: int
) -> Iterator[tuple[int, int, int, int]]:
    """In ``gx`` (|3x3 Sobel x| of a grey image): bands (x, y, w, h) of strong vertical
    strokes at least ``min_plate_px`` wide, wider than tall (one line of glyphs, joined)."""
    strong = (gx >= 4 * min_contrast).astype(np.uint8)  # a 3x3 Sobel gives 4x the step
    if int(strong.sum()) < min_plate_px // 2:
        return
    gap = max(4, min_plate_px // 4)  # between two glyphs (or groups: "VK 3") of the smallest plate
    joined = cv2.morphologyEx(strong, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (gap, 1)))
    count, _labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    for i in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[i])
        if w < 0.6 * min_plate_px or h < 4:
            continue  # too narrow or too flat
        if w < 1.5 * h:
            continue  # a line of glyphs is wider than tall (a two-line plate: each line)
        if area < 0.25 * w * h:
            continue  # a thin outline (a car's edge, a kerb), not a row of strokes
        yield x, y, w, h
