"""Plates among other text: precision and recall of plate rows, plate gate off and on.

    python benchmarks/plate_text.py [--n 240] [--seed 1]

Each scene is two 1280x720 frames half a second apart of a street photo (the OpenCV
sample photos and vtest.avi frames of benchmarks/plates.py) holding distractor text:
shop signs and wall lettering (board tight or loose around the text, several DejaVu
fonts, light or dark), and one moving object, by kind:

- ``car``: a car (citywatch.sample.cars) with its HK plate 40-200 px wide, a dealer
  frame round the plate (dealer name above or below it), a model badge on the body
  and, in half the scenes, a sign in the background behind it;
- ``van``: a box van with lettering on its side (a company name, a slogan), no plate;
- ``sign``: no vehicle; a shop sign that lights up between the frames (the motion).

The pair goes through the pipeline's path: the motion gate (tasks.index.decode.MotionGate)
forms the moving regions, ``SegmentPlates.add_frame`` reads them (region filter, merge,
reader, format, gate). A plate row is *real* when its box overlaps the true plate (IoU
>= 0.3); recall counts plates read exactly. Both runs (``plates.gate_enabled`` false,
then true) read the same scenes in one process.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from plates import load_backgrounds  # benchmarks/plates.py (this folder is on sys.path)

from citywatch.geometry import iou
from citywatch.models.plate_reader import load_plate_reader
from citywatch.sample.cars import render_car
from citywatch.sample.plate_render import random_hk_plate
from citywatch.settings import Settings
from citywatch.tasks.index.decode import MotionGate
from citywatch.tasks.index.plates import SegmentPlates

FONTS = [
    Path("/usr/share/fonts/truetype/dejavu") / name
    for name in (
        "DejaVuSans-Bold.ttf",
        "DejaVuSerif-Bold.ttf",
        "DejaVuSansCondensed-Bold.ttf",
        "DejaVuSansMono-Bold.ttf",
        "DejaVuSans.ttf",
        "DejaVuSerif.ttf",
        "DejaVuSans-Oblique.ttf",
    )
]
SIGN_WORDS = (
    "SUNTRUP",
    "SPORT",
    "CALIFORNIA",
    "WHGOV",
    "QZ01",
    "PHARMACY",
    "BAKERY",
    "SALE 50",
    "OPEN 24H",
    "HOTEL",
    "TAXI",
    "NOODLES",
    "BANK",
    "GOLD 88",
    "CAFE",
    "KTV",
    "7 ELEVEN",
    "EXIT",
    "PARKING",
    "FLORIDA",
    "TEXAS",
    "GLX",
    "TURBO",
    "HYBRID",
    "AMG",
    "V6",
    "LIVE FREE",
    "SUNSHINE",
    "DEALER 1",
    "MOTORS",
)
KINDS = ("car", "car", "van", "sign")
FRAME = (1280, 720)


@dataclass(frozen=True, slots=True)
class Scene:
    kind: str
    previous: np.ndarray
    frame: np.ndarray
    plate: str  # "" when no plate
    plate_box: tuple[float, float, float, float] | None


def text_image(
    text: str, height_px: int, font: Path, ink: tuple[int, ...], ground: tuple[int, ...], margin: float
) -> np.ndarray:
    """``text`` on a board ``margin`` x the text height larger on each side (BGR)."""
    size = max(6, int(height_px * 1.35))
    face = ImageFont.truetype(str(font), size)
    left, top, right, bottom = face.getbbox(text)
    pad = int(margin * height_px)
    img = Image.new("RGB", (right - left + 2 * pad, bottom - top + 2 * pad), ground[::-1])
    ImageDraw.Draw(img).text((pad - left, pad - top), text, font=face, fill=ink[::-1])
    return cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)


def _colours(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    dark = tuple(int(v) for v in rng.integers(0, 70, 3))
    light = tuple(int(v) for v in rng.integers(170, 256, 3))
    return (dark, light) if rng.uniform() < 0.5 else (light, dark)


def _paste(frame: np.ndarray, img: np.ndarray, x: int, y: int) -> tuple[int, int, int, int]:
    h, w = img.shape[:2]
    x, y = max(0, min(frame.shape[1] - w, x)), max(0, min(frame.shape[0] - h, y))
    frame[y : y + h, x : x + w] = img[: frame.shape[0] - y, : frame.shape[1] - x]
    return x, y, x + w, y + h


def _sign(rng: np.random.Generator, height: tuple[int, int]) -> np.ndarray:
    word = SIGN_WORDS[int(rng.integers(len(SIGN_WORDS)))]
    ink, ground = _colours(rng)
    font = FONTS[int(rng.integers(len(FONTS)))]
    margin = float(rng.choice([0.2, 0.35, 0.6, 1.5]))
    return text_image(word, int(rng.integers(*height)), font, ink, ground, margin)


def _car(rng: np.random.Generator, plate: str, plate_px: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    """A car sprite (BGR premultiplied, alpha) with a dealer frame and a badge."""
    body = tuple(int(v) for v in rng.integers(20, 236, 3))
    sprite = render_car(plate, "front" if rng.uniform() < 0.5 else "rear", plate_px, body, rng)
    rgb = sprite.premult.copy()
    x1, y1, x2, y2 = (int(round(v)) for v in sprite.plate_box)
    ph = y2 - y1
    # dealer frame: a dark band round the plate, the dealer's name on it above or below
    band = max(2, int(0.55 * ph))
    frame_colour = (20, 20, 20) if rng.uniform() < 0.7 else (200, 200, 200)
    cv2.rectangle(rgb, (x1 - band // 2, y1 - band), (x2 + band // 2, y2 + band), frame_colour, -1)
    rgb[y1:y2, x1:x2] = sprite.premult[y1:y2, x1:x2]
    word = SIGN_WORDS[int(rng.integers(len(SIGN_WORDS)))]
    ink = (235, 235, 235) if frame_colour[0] < 100 else (20, 20, 20)
    label = text_image(
        word, max(4, int(0.7 * band)), FONTS[int(rng.integers(len(FONTS)))], ink, frame_colour, 0.1
    )
    lw = min(label.shape[1], x2 - x1)
    label = cv2.resize(label, (lw, label.shape[0]))
    ly = (
        y1 - band + (band - label.shape[0]) // 2 if rng.uniform() < 0.5 else y2 + (band - label.shape[0]) // 2
    )
    lx = (x1 + x2 - lw) // 2
    if 0 <= ly and ly + label.shape[0] <= rgb.shape[0]:
        rgb[ly : ly + label.shape[0], lx : lx + lw] = label
    # a model badge on the body, above the plate to one side
    badge_h = max(5, int(0.6 * ph))
    badge = text_image(
        SIGN_WORDS[int(rng.integers(len(SIGN_WORDS)))],
        badge_h,
        FONTS[int(rng.integers(len(FONTS)))],
        (210, 210, 215),
        body,
        0.05,
    )
    bx = x2 + int(0.3 * ph) if rng.uniform() < 0.5 else max(0, x1 - badge.shape[1] - int(0.3 * ph))
    by = y1 - int(2.2 * ph)
    if by >= 0 and bx + badge.shape[1] <= rgb.shape[1]:  # chrome letters only, on the lit body
        spot = rgb[by : by + badge.shape[0], bx : bx + badge.shape[1]]
        letters = np.abs(badge.astype(np.int16) - body).max(axis=2) > 40
        spot[letters] = badge[letters]
    rgb = (rgb.astype(np.float32) * sprite.alpha[..., None]).astype(np.uint8)
    return rgb, sprite.alpha, (x1, y1, x2, y2)


def _composite(background: np.ndarray, premult: np.ndarray, alpha: np.ndarray, x: int, y: int) -> np.ndarray:
    out = background.copy()
    h, w = alpha.shape
    roi = out[y : y + h, x : x + w].astype(np.float32)
    out[y : y + h, x : x + w] = (premult + roi * (1 - alpha[..., None])).clip(0, 255).astype(np.uint8)
    return out


def _jpeg(frame: np.ndarray, quality: int) -> np.ndarray:
    _, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def make_scene(index: int, rng: np.random.Generator, backgrounds: list[np.ndarray]) -> Scene:
    kind = KINDS[index % len(KINDS)]
    street = backgrounds[int(rng.integers(len(backgrounds)))].copy()
    for _ in range(int(rng.integers(1, 4))):  # signs on the walls
        _paste(street, _sign(rng, (14, 60)), int(rng.integers(0, 1100)), int(rng.integers(0, 500)))
    quality = int(rng.integers(45, 91))
    if kind == "car":
        plate, plate_px = random_hk_plate(rng), int(rng.integers(40, 200))
        premult, alpha, (px1, py1, px2, py2) = _car(rng, plate, plate_px)
        h, w = alpha.shape
        x, y = int(rng.integers(0, FRAME[0] - w - 60)), int(rng.integers(0, FRAME[1] - h))
        if rng.uniform() < 0.5:  # a sign behind the car, where its region will be
            _paste(street, _sign(rng, (14, 40)), x + int(rng.integers(0, w)), max(0, y - 40))
        shift = int(rng.integers(15, 60))
        previous = _composite(street, premult, alpha, x, y)
        frame = _composite(street, premult, alpha, x + shift, y)
        box = (x + shift + px1, y + py1, x + shift + px2, y + py2)
        return Scene(kind, _jpeg(previous, quality), _jpeg(frame, quality), plate, box)
    if kind == "van":
        height = int(rng.integers(150, 420))
        width = int(height * rng.uniform(1.6, 2.4))
        colour = tuple(int(v) for v in rng.integers(20, 236, 3))
        van = np.zeros((height, width, 3), np.uint8)
        van[:] = colour
        ink = (20, 20, 20) if sum(colour) > 380 else (240, 240, 240)
        word = SIGN_WORDS[int(rng.integers(len(SIGN_WORDS)))]
        lettering = text_image(
            word, int(height * rng.uniform(0.08, 0.2)), FONTS[int(rng.integers(len(FONTS)))], ink, colour, 0.1
        )
        lettering = lettering[:, : width - 10]
        _paste(
            van,
            lettering,
            int(rng.integers(5, max(6, width - lettering.shape[1] - 5))),
            int(height * rng.uniform(0.1, 0.6)),
        )
        alpha = np.ones((height, width), np.float32)
        x, y = int(rng.integers(0, FRAME[0] - width - 60)), int(rng.integers(0, FRAME[1] - height))
        shift = int(rng.integers(15, 60))
        previous = _composite(street, van, alpha, x, y)
        frame = _composite(street, van, alpha, x + shift, y)
        return Scene(kind, _jpeg(previous, quality), _jpeg(frame, quality), "", None)
    sign = _sign(rng, (30, 90))
    x, y = int(rng.integers(0, 1000)), int(rng.integers(0, 550))
    dim = street.copy()
    frame = street.copy()
    x1, y1, x2, y2 = _paste(frame, sign, x, y)
    dim[y1:y2, x1:x2] = (sign[: y2 - y1, : x2 - x1] * 0.45).astype(np.uint8)  # unlit
    return Scene(kind, _jpeg(dim, quality), _jpeg(frame, quality), "", None)


@dataclass
class Tally:
    rows: int = 0
    real: int = 0
    plates: int = 0
    exact: int = 0
    rejected: int = 0
    cpu_s: float = 0.0


def run(scenes: list[Scene], settings: Settings, verbose: bool) -> dict[str, Tally]:
    reader = load_plate_reader(settings.plates.min_confidence, settings.plates.detect_side_px)
    tallies: dict[str, Tally] = {}
    for scene in scenes:
        tally = tallies.setdefault(scene.kind, Tally())
        gate = MotionGate(settings.decode.motion_pixel_delta, settings.decode.motion_min_fraction)
        gate.moving(scene.previous)
        started = time.process_time()
        plates = SegmentPlates(reader, settings.plates, settings.tracking)
        if gate.moving(scene.frame):
            plates.add_frame(0.0, scene.frame, gate.regions, gate.mask)
        tally.cpu_s += time.process_time() - started
        tally.rejected += plates.rejected_text
        reads = [c for track in plates.tracker.tracks for c in track.items]
        tally.plates += bool(scene.plate)
        tally.exact += any(c.text == scene.plate for c in reads) if scene.plate else 0
        for c in reads:
            real = scene.plate_box is not None and iou(c.bbox, scene.plate_box) >= 0.3
            tally.rows += 1
            tally.real += real
            if verbose and not real:
                print(f"    not a plate: {scene.kind} {c.text!r} gate score {c.gate_score}")
    return tallies


def report(name: str, tallies: dict[str, Tally]) -> tuple[float, float]:
    total = Tally()
    for kind, t in sorted(tallies.items()):
        for f in ("rows", "real", "plates", "exact", "rejected"):
            setattr(total, f, getattr(total, f) + getattr(t, f))
        total.cpu_s += t.cpu_s
        print(
            f"  {name:<9} {kind:<5} rows {t.rows:4d} real {t.real:4d} plates {t.plates:4d} "
            f"exact {t.exact:4d} rejected {t.rejected:4d}"
        )
    precision = total.real / total.rows if total.rows else 1.0
    recall = total.exact / total.plates if total.plates else 0.0
    print(
        f"  {name:<9} all   rows {total.rows:4d} real {total.real:4d}  precision {100 * precision:5.1f}%  "
        f"recall {100 * recall:5.1f}% ({total.exact}/{total.plates})  lines rejected {total.rejected}  "
        f"cpu {total.cpu_s:.1f} s"
    )
    return precision, recall


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--n", type=int, default=240, help="scenes (default 240: 120 cars, 60 vans, 60 signs)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="print every row that is not a plate")
    parser.add_argument(
        "--bands",
        action="store_true",
        help="also run gate on + plates.detect_in_bands (text detection only round the stroke bands)",
    )
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    backgrounds = load_backgrounds()
    scenes = [make_scene(i, rng, backgrounds) for i in range(args.n)]
    print(f"plate_text: {args.n} scenes, seed {args.seed}")
    results = {}
    runs = [("gate off", False, False), ("gate on", True, False)] + (
        [("bands", True, True)] if args.bands else []
    )
    for name, enabled, bands in runs:
        settings = Settings()
        update = {"gate_enabled": enabled, "detect_in_bands": bands}
        settings = settings.model_copy(update={"plates": settings.plates.model_copy(update=update)})
        results[name] = report(name, run(scenes, settings, args.verbose))
    (p0, r0), (p1, r1) = results["gate off"], results["gate on"]
    print(f"precision {100 * p0:.1f}% -> {100 * p1:.1f}%, recall {100 * r0:.1f}% -> {100 * r1:.1f}%")
    if args.bands:
        p2, r2 = results["bands"]
        print(
            f"bands: precision {100 * p2:.1f}%, recall {100 * r2:.1f}% "
            f"(gate on: {100 * p1:.1f}%, {100 * r1:.1f}%)"
        )


if __name__ == "__main__":
    main()
