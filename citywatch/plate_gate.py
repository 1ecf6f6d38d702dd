"""Plate acceptance: is a read line of text a licence plate, or a sign, badge or slogan?

Text detection finds every line of text in a moving region: shop signs, dealer frames,
model badges, state names and slogans read as well as a plate does, and many of them
fit a permissive plate format (Hong Kong personalised marks accept ``SUNTRUP``). A plate
differs from them in how it looks, not in what it says:

- **background**: the characters sit on a plate, a uniform light or dark panel only a
  little larger than the line of text, edged by a border or by the car around it. The
  panel is found as the pixels of the line's background class (Otsu threshold inside
  the text box: the class of most of the box is background) connected to the text box, inside a
  probe window ``probe`` x the text height around it. A sign's board, a wall, a car body
  under a badge or a dealer frame wrapping round the plate reach the probe's edge; a
  plate's panel stops within it. ``open_sides`` counts the sides (top, bottom, left,
  right) where the panel reaches the probe's edge.
- **contrast**: ink against panel (plates are made to be read: black on white or
  yellow, white on black), as a share of the full 0-255 range.
- **shape**: the line's width per character in text heights (a plate font is even and
  close to square-ish cells; display lettering is wider or narrower), and the line's
  height against the moving region it was read in (a plate is a small part of a
  vehicle; a sign that moves as a whole fills its region).
- **motion**: the line's box, and the box grown by a text height each way, moved since
  the previous frame (the motion gate's mask): a plate moves with its vehicle, and the
  vehicle round it; a sign behind the vehicle, inside its moving region, stays put, or
  moves only where the vehicle's edge crosses it.
- **captions**: a line just above or below a clearly taller line in the same place is
  that line's caption (dealer frame, state name, slogan), not a plate.
- **format**: the read fits a pattern of the city's plate format (``plates.format``).

:func:`plate_gate` returns a :class:`GateVerdict` with the measured features, whether the
line is accepted and a score in 0..1 (the share of checks passed). The score is stored
in plate rows (``gate_score``); :func:`accepts_row` applies the same rule to a stored
row (the watchlist sweep), so a sign can never raise a plate alert.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from citywatch.plates import PlateGrammar

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class GateThresholds:
    """The rule's thresholds (``plates.gate_*`` settings)."""

    max_open_sides: int = 0  # panel sides allowed to reach the probe's edge
    probe: float = 0.8  # probe window margin, in text heights, around the text box
    plate_width: float = 7.5  # the widest plate, in text heights (sideways probe)
    min_contrast: float = 0.18  # ink vs panel, share of 0-255
    min_char_aspect: float = 0.3  # line width / height / characters
    max_char_aspect: float = 0.8
    max_region_share: float = 0.15  # line height / moving region height
    min_moving_share: float = 0.35  # share of the line's box that moved since the last frame
    min_moving_around: float = 0.5  # ... and of the box grown by a text height each way
    caption_ratio: float = 1.3  # a line next to one this much taller is a caption
    min_score: float = 1.0  # share of checks a row must pass (stored rows: the sweep)


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """What the rule measured on one line of text, and its decision."""

    accepted: bool
    score: float  # share of checks passed, 0..1
    open_sides: int  # -1: not measured (box too small or outside the image)
    contrast: float
    char_aspect: float
    region_share: float | None  # None: no moving region known
    moving_share: float | None  # None: no motion mask known
    moving_around: float | None
    caption: bool  # just above or below a clearly taller line
    fits_format: bool
    reason: str  # the first failed check, "" when accepted


def _panel(image: np.ndarray, box: Box, probe: float, plate_width: float) -> tuple[int, float]:
    """(open sides, contrast) of the text box's background panel inside the probe window.

    The window reaches ``probe`` text heights above and below the box, and sideways
    ``probe`` text heights or as far as a plate ``plate_width`` text heights wide would
    (a short mark sits in the middle of a long plate). The panel is the pixels whose
    colour is close to the line's background colour (the Otsu class of most of the
    box), connected to the box.
    """
    x1, y1, x2, y2 = box
    h = max(1.0, y2 - y1)
    side = max(probe * h, (plate_width * h - (x2 - x1)) / 2)
    height, width = image.shape[:2]
    want = (x1 - side, y1 - probe * h, x2 + side, y2 + probe * h)
    px1, py1 = max(0, int(want[0])), max(0, int(want[1]))
    px2, py2 = min(width, int(np.ceil(want[2]))), min(height, int(np.ceil(want[3])))
    tx1, ty1 = max(0, int(round(x1)) - px1), max(0, int(round(y1)) - py1)
    tx2, ty2 = max(0, int(round(x2)) - px1), max(0, int(round(y2)) - py1)
    window = image[py1:py2, px1:px2]
    inner = window[ty1:ty2, tx1:tx2]
    if inner.shape[0] < 4 or inner.shape[1] < 4:
        return -1, 0.0
    gray = cv2.cvtColor(inner, cv2.COLOR_BGR2GRAY) if inner.ndim == 3 else inner
    threshold, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    light = gray > threshold
    # the background is the class of most of the box; when that is close (bold lettering
    # in a tight box), the class of most of its left and right edges (ink rarely runs
    # along them; the top and bottom rows may hold a plate's border)
    share = float(light.mean())
    if abs(share - 0.5) < 0.12:
        share = float(np.concatenate([light[:, 0], light[:, -1]]).mean())
    background_light = share >= 0.5
    is_ground = light == background_light
    if is_ground.all() or not is_ground.any():
        return 4, 0.0
    pixels = inner.reshape(-1, inner.shape[2]) if inner.ndim == 3 else inner.reshape(-1, 1)
    ground_colour = np.median(pixels[is_ground.ravel()], axis=0)
    ink_colour = np.median(pixels[~is_ground.ravel()], axis=0)
    contrast = abs(float(np.median(gray[is_ground])) - float(np.median(gray[~is_ground]))) / 255.0
    # close to the background colour: within a third of the way to the ink colour
    tolerance = max(18.0, float(np.linalg.norm(ground_colour - ink_colour)) / 3)
    flat = window.reshape(window.shape[0], window.shape[1], -1).astype(np.float32)
    mask = (np.linalg.norm(flat - ground_colour, axis=2) <= tolerance).astype(np.uint8)
    count, labels = cv2.connectedComponents(mask, connectivity=4)
    inside = labels[ty1:ty2, tx1:tx2]
    panel_labels = np.unique(inside[inside > 0])
    if count <= 1 or panel_labels.size == 0:
        return 4, contrast
    panel = np.isin(labels, panel_labels)
    # a side is open when the panel reaches the window's edge there, unless that edge is
    # the frame's (a plate cut by the frame edge is not open there)
    sides = (
        want[1] >= 0 and bool(panel[0].any()),
        want[3] <= height and bool(panel[-1].any()),
        want[0] >= 0 and bool(panel[:, 0].any()),
        want[2] <= width and bool(panel[:, -1].any()),
    )
    return sum(sides), contrast


def _moving_share(motion: np.ndarray, box: Box, frame_width: int) -> float:
    """The share of ``box`` (frame pixels) inside the motion mask, grown by a cell each way
    (the mask is a small, blurred copy: a small plate's own change can fall just short)."""
    scale = motion.shape[1] / frame_width
    grown = cv2.dilate(motion.astype(np.uint8), np.ones((5, 5), np.uint8))
    x1, y1, x2, y2 = box
    cell = grown[
        max(0, int(y1 * scale)) : max(1, int(np.ceil(y2 * scale))),
        max(0, int(x1 * scale)) : max(1, int(np.ceil(x2 * scale))),
    ]
    return float(cell.mean()) if cell.size else 0.0


def _captions(big: Box, small: Box, ratio: float) -> bool:
    """``small`` is a caption of ``big``: ``big`` at least ``ratio`` x taller, their columns
    overlapping by half the narrower, ``small`` above or below within ``big``'s height."""
    bh, sh = big[3] - big[1], small[3] - small[1]
    if sh <= 0 or bh < ratio * sh:
        return False
    overlap = min(big[2], small[2]) - max(big[0], small[0])
    if overlap < 0.5 * min(big[2] - big[0], small[2] - small[0]):
        return False
    gap = max(big[1], small[1]) - min(big[3], small[3])  # < 0: rows overlap
    return -0.25 * sh <= gap <= bh


def plate_gate(
    image: np.ndarray,
    bbox: Box,
    text: str,
    grammar: PlateGrammar,
    thresholds: GateThresholds,
    regions: list[tuple[int, int, int, int]] | None = None,
    motion: np.ndarray | None = None,
    lines: list[Box] | None = None,
) -> GateVerdict:
    """Whether the line of ``text`` read at ``bbox`` of ``image`` (BGR) is a plate.

    ``regions``: the vehicle-sized moving regions of the frame (None: not known); the
    line's height is compared with the smallest region holding its centre. ``motion``:
    the motion gate's mask (a small copy of the frame, True where it changed; None: not
    known): a plate moves with its vehicle, a sign behind the vehicle, inside its region,
    does not. ``lines``: every text line read near this one (this one may be among them):
    a line just above or below a clearly taller one is its caption (a dealer frame's
    name, a state name, a slogan), not the plate.
    """
    x1, y1, x2, y2 = bbox
    h, w = max(1e-6, y2 - y1), max(0.0, x2 - x1)
    char_aspect = w / h / max(1, len(text))
    open_sides, contrast = _panel(image, bbox, thresholds.probe, thresholds.plate_width)
    region_share: float | None = None
    if regions:
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        holding = [r for r in regions if r[0] <= cx <= r[2] and r[1] <= cy <= r[3]]
        if holding:
            region_share = h / max(1, min(r[3] - r[1] for r in holding))
    moving = around = None
    if motion is not None:
        moving = _moving_share(motion, bbox, image.shape[1])
        around = _moving_share(motion, (x1 - h, y1 - h, x2 + h, y2 + h), image.shape[1])
    caption = any(_captions(other, bbox, thresholds.caption_ratio) for other in lines or [])
    fits = grammar.rank(text) is not None
    checks = (
        ("panel open on too many sides", 0 <= open_sides <= thresholds.max_open_sides),
        ("low contrast", contrast >= thresholds.min_contrast),
        ("character shape", thresholds.min_char_aspect <= char_aspect <= thresholds.max_char_aspect),
        ("outside the moving regions", not regions or region_share is not None),
        ("too tall for its region", region_share is None or region_share <= thresholds.max_region_share),
        (
            "not moving",
            moving is None
            or around is None
            or (moving >= thresholds.min_moving_share and around >= thresholds.min_moving_around),
        ),
        ("caption of a taller line", not caption),
    )
    failed = [name for name, ok in checks if not ok]
    score = round((len(checks) - len(failed)) / len(checks), 4)
    return GateVerdict(
        accepted=not failed and score >= thresholds.min_score,
        score=score,
        open_sides=open_sides,
        contrast=round(contrast, 4),
        char_aspect=round(char_aspect, 4),
        region_share=None if region_share is None else round(region_share, 4),
        moving_share=None if moving is None else round(moving, 4),
        moving_around=None if around is None else round(around, 4),
        caption=caption,
        fits_format=fits,
        reason=failed[0] if failed else "",
    )


def accepts_row(gate_score: float | None, text: str, grammar: PlateGrammar, min_score: float) -> bool:
    """The rule for a stored plate row: its gate score reached ``min_score`` when it was
    read (None: a row indexed with the gate off) and its text is a plate's shape."""
    return gate_score is not None and gate_score >= min_score and 2 <= len(text) <= 10
