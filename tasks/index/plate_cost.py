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

import cv2
import numpy as np

from citywatch.geometry import PixelBox


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
    x1, y1, x2, y2 = region
    grey = cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
    # a plate's glyphs are ~1/6 of its width apart: at full size the closing joins the
    # smallest plates' glyphs; larger plates are looked for on halved copies, where
    # their glyph gaps shrink to the same few pixels
    # at each size also at twice the contrast: a low threshold on a busy background
    # can join a plate's strokes with its surroundings into one blob of no line's shape
    while grey.shape[0] >= 8 and grey.shape[1] >= min_plate_px:
        gx = np.abs(cv2.Sobel(grey, cv2.CV_16S, 1, 0, ksize=3))
        if any(_stroke_band(gx, min_plate_px, c) for c in (min_contrast, 2 * min_contrast)):
            return True
        grey = cv2.pyrDown(grey)
    return False


def _stroke_band(gx: np.ndarray, min_plate_px: int, min_contrast: int) -> bool:
    """In ``gx`` (|3x3 Sobel x| of a grey image): a band of strong vertical strokes at
    least ``min_plate_px`` wide, wider than tall (one line of glyphs, joined)."""
    strong = (gx >= 4 * min_contrast).astype(np.uint8)  # a 3x3 Sobel gives 4x the step
    if int(strong.sum()) < min_plate_px // 2:
        return False
    gap = max(4, min_plate_px // 4)  # between two glyphs (or groups: "VK 3") of the smallest plate
    joined = cv2.morphologyEx(strong, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (gap, 1)))
    count, _labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    for i in range(1, count):
        _x, _y, w, h, area = (int(v) for v in stats[i])
        if w < 0.6 * min_plate_px or h < 4:
            continue  # too narrow or too flat
        if w < 1.5 * h:
            continue  # a line of glyphs is wider than tall (a two-line plate: each line)
        if area < 0.25 * w * h:
            continue  # a thin outline (a car's edge, a kerb), not a row of strokes
        return True
    return False
