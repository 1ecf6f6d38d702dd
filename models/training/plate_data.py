"""Synthetic training crops for the plate recogniser (numpy + OpenCV, no PyTorch).

Each example: a random mark (half HK-style, half random 1-8 characters of A-Z0-9 so
the model does not learn one region's grammar), rendered front or rear by
:mod:`citywatch.sample.plate_render` in one of several bold sans fonts, 30-230 px wide,
warped (rotation, perspective), motion-blurred, noised, pasted on a patch of a street
photo, brightness/contrast changed, JPEG-compressed (quality 25-95), then cropped
around the characters with margins that cover where PP-OCR's detector puts its text
box, and turned into the model input by :func:`models.plate_rec.prepare_crop` (the
same function the reader uses).

The street photos are chosen by the caller: the plate benchmark's backgrounds
(``building.jpg``, ``home.jpg`` and four ``vtest.avi`` frames) are kept out of
training (see :func:`training_backgrounds`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from citywatch.models.plate_rec import ALPHABET, INPUT_H, INPUT_W, plate_crop_box, prepare_crop
from citywatch.sample.plate_render import (
    FONT_PATH,
    PlateStyle,
    degrade_plate_warp,
    paste_plate,
    random_hk_plate,
    render_plate,
)

_MASTER_W = 1040  # plate_render's master width: rendering at it gives the unscaled plate
BENCHMARK_BACKGROUNDS = ("building.jpg", "home.jpg")
BENCHMARK_VTEST_FRAMES = (0, 250, 500, 750)
TRAIN_VTEST_FRAMES = (120, 380, 620, 790)


@dataclass(frozen=True, slots=True)
class Example:
    x: np.ndarray  # 1 x 32 x 128 float32 (prepare_crop)
    text: str
    width_px: int


def training_backgrounds(data_dir: Path, max_side: int = 1280) -> list[np.ndarray]:
    """Street/indoor photos from OpenCV's sample data, without the benchmark's ones."""
    frames = []
    for path in sorted(data_dir.glob("*.jpg")):
        if path.name in BENCHMARK_BACKGROUNDS:
            continue
        image = cv2.imread(str(path))
        if image is not None and min(image.shape[:2]) >= 200:
            frames.append(image)
    video = cv2.VideoCapture(str(data_dir / "vtest.avi"))
    for index in TRAIN_VTEST_FRAMES:
        video.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = video.read()
        if ok:
            frames.append(frame)
    video.release()
    out = []
    for image in frames:
        scale = min(1.0, max_side / max(image.shape[:2]))
        out.append(
            cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
        )
    return out


def random_text(rng: np.random.Generator) -> str:
    if rng.uniform() < 0.5:
        return random_hk_plate(rng)
    length = int(rng.choice([1, 2, 3, 4, 5, 6, 7, 8], p=[0.03, 0.07, 0.12, 0.16, 0.18, 0.2, 0.14, 0.1]))
    return "".join(rng.choice(list(ALPHABET), size=length))


def _ink_box(master: np.ndarray) -> tuple[float, float, float, float]:
    """x1, y1, x2, y2 of the characters on a master-size plate (border excluded)."""
    grey = cv2.cvtColor(master, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape
    inner = grey[int(0.08 * h) : int(0.92 * h), int(0.02 * w) : int(0.98 * w)] < 100
    rows, cols = np.nonzero(inner)
    return (
        cols.min() + int(0.02 * w),
        rows.min() + int(0.08 * h),
        cols.max() + 1 + int(0.02 * w),
        rows.max() + 1 + int(0.08 * h),
    )


@dataclass(frozen=True, slots=True)
class Scene:
    patch: np.ndarray  # BGR street patch with the plate in it, JPEG-compressed
    ink: tuple[float, float, float, float]  # x1, y1, x2, y2 of the characters in the patch
    text: str
    width_px: int


def make_scene(
    rng: np.random.Generator,
    backgrounds: list[np.ndarray],
    *,
    width_range: tuple[int, int] = (30, 230),
    text: str | None = None,
    font_path: Path = FONT_PATH,
) -> Scene:
    """A degraded plate on a street patch, and where its characters are."""
    text = text or random_text(rng)
    width = int(round(np.exp(rng.uniform(np.log(width_range[0]), np.log(width_range[1])))))
    style: PlateStyle = "front" if rng.uniform() < 0.5 else "rear"
    master = render_plate(text, style=style, width_px=_MASTER_W, rng=rng, font_path=font_path)
    ix1, iy1, ix2, iy2 = _ink_box(master)
    height = max(4, int(round(width * master.shape[0] / master.shape[1])))
    plate = cv2.resize(master, (width, height), interpolation=cv2.INTER_AREA)
    s = width / master.shape[1]
    warped, matrix = degrade_plate_warp(
        plate,
        rng,
        blur=float(rng.uniform(0.0, 3.0)) if rng.uniform() < 0.85 else 0.0,
        rotation_deg=float(rng.uniform(-10.0, 10.0)),
        perspective=float(rng.uniform(0.0, 0.1)),
        noise=float(rng.uniform(0.0, 10.0)),
        jpeg_quality=None,
    )
    ink = np.array([[ix1, iy1], [ix2, iy1], [ix2, iy2], [ix1, iy2]], dtype=np.float32) * s
    quad = cv2.perspectiveTransform(ink[np.newaxis], matrix)[0]
    # a street patch around the plate, the plate at a random offset (JPEG block phase)
    ph, pw = warped.shape[:2]
    pad = max(16, 2 * ph)
    ox, oy = pad + int(rng.integers(0, 8)), pad + int(rng.integers(0, 8))
    patch_w, patch_h = pw + 2 * pad + 8, ph + 2 * pad + 8
    background = backgrounds[int(rng.integers(len(backgrounds)))]
    bh, bw = background.shape[:2]
    if bw < patch_w or bh < patch_h:
        f = max(patch_w / bw, patch_h / bh) * 1.05
        background = cv2.resize(background, None, fx=f, fy=f, interpolation=cv2.INTER_LINEAR)
        bh, bw = background.shape[:2]
    bx, by = int(rng.integers(0, bw - patch_w + 1)), int(rng.integers(0, bh - patch_h + 1))
    patch = paste_plate(background[by : by + patch_h, bx : bx + patch_w], warped, ox, oy)
    gain, bias = rng.uniform(0.55, 1.3), rng.uniform(-40, 40)
    patch = np.clip(patch.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
    if rng.uniform() < 0.15:  # slight defocus
        patch = cv2.GaussianBlur(patch, (0, 0), float(rng.uniform(0.4, 1.0)))
    _, buf = cv2.imencode(".jpg", patch, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 96))])
    patch = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    ink_box = (
        float(quad[:, 0].min() + ox),
        float(quad[:, 1].min() + oy),
        float(quad[:, 0].max() + ox),
        float(quad[:, 1].max() + oy),
    )
    return Scene(patch=patch, ink=ink_box, text=text, width_px=width)


def make_example(
    rng: np.random.Generator,
    backgrounds: list[np.ndarray],
    *,
    width_range: tuple[int, int] = (30, 230),
    font_path: Path = FONT_PATH,
) -> Example:
    """A scene cropped as the reader would crop it around a detected text box."""
    scene = make_scene(rng, backgrounds, width_range=width_range, font_path=font_path)
    patch = scene.patch
    # the detector's text box: around the ink, by a spread measured on PP-OCRv4's boxes
    qx1, qy1, qx2, qy2 = scene.ink
    qh = qy2 - qy1

    def out(lo: float, hi: float, far: float) -> float:  # 10%: the box also took in the surroundings
        return float(rng.uniform(lo, hi) if rng.uniform() < 0.9 else rng.uniform(hi, far))

    det = (
        qx1 - out(-0.05, 0.6, 1.4) * qh,
        qy1 - out(0.05, 0.45, 0.7) * qh,
        qx2 + out(-0.05, 0.6, 1.4) * qh,
        qy2 + out(0.05, 0.45, 0.7) * qh,
    )
    box = plate_crop_box(det, patch.shape[1], patch.shape[0])  # as the reader crops it
    return Example(x=prepare_crop(patch, box), text=scene.text, width_px=scene.width_px)


def make_batch(
    seed: int,
    n: int,
    backgrounds: list[np.ndarray],
    fonts: list[tuple[Path, float]],
    width_range: tuple[int, int] = (30, 230),
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``n`` examples from ``seed``: (N x 1 x 32 x 128 float16, texts, widths)."""
    rng = np.random.default_rng(seed)
    paths = [p for p, _ in fonts]
    weights = np.array([w for _, w in fonts], dtype=np.float64)
    font_path = paths[int(rng.choice(len(paths), p=weights / weights.sum()))]
    xs = np.empty((n, 1, INPUT_H, INPUT_W), dtype=np.float16)
    texts, widths = [], np.empty(n, dtype=np.int32)
    for i in range(n):
        ex = make_example(rng, backgrounds, width_range=width_range, font_path=font_path)
        xs[i], widths[i] = ex.x, ex.width_px
        texts.append(ex.text)
    return xs, texts, widths
