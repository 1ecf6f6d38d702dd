"""The plate-specific recogniser for small plates (shipped ONNX weights, real model)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from citywatch.errors import BadInputError
from citywatch.models.plate_reader import PlateReader
from citywatch.models.plate_rec import (
    WEIGHTS,
    PlateRecogniser,
    ctc_best_path,
    load_plate_recogniser,
    prepare_crop,
)
from citywatch.models.training.plate_data import (
    BENCHMARK_BACKGROUNDS,
    make_batch,
    make_scene,
    training_backgrounds,
)
from citywatch.plates import fix_confusables, normalise_plate
from citywatch.sample.plate_render import FONT_PATH, degrade_plate, paste_plate, render_plate

DATA = Path("/usr/share/doc/opencv-doc/examples/data")
# small marks (48-58 px wide: glyphs ~8 px tall), blurred and JPEG'd like a far camera
SMALL = (("AB1234", 52), ("KX807", 48), ("TM5067", 56), ("HK7", 50), ("LUCKY8", 58), ("ZS680", 54))


def _scene(
    street: np.ndarray, text: str, width: int, font_path: Path = FONT_PATH
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    rng = np.random.default_rng(width)
    plate = render_plate(text, style="rear" if width % 2 else "front", width_px=width, font_path=font_path)
    warped = degrade_plate(plate, rng, blur=1.2, rotation_deg=2.0, perspective=0.03, noise=3.0)
    x, y = 600, 430
    frame = paste_plate(street, warped, x, y)
    _, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 60])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR), (x, y, x + warped.shape[1], y + warped.shape[0])


def _region(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    return x1 - w // 2, y1 - h // 2, x2 + w // 2, y2 + h // 2


def test_weights_ship_with_the_package() -> None:
    assert WEIGHTS.is_file() and WEIGHTS.stat().st_size < 5_000_000
    assert isinstance(load_plate_recogniser(), PlateRecogniser)


def test_small_plates_are_read_exactly_with_the_plate_recogniser(street: np.ndarray) -> None:
    with_model = PlateReader(small_plate_reader=load_plate_recogniser())
    ppocr_only = PlateReader()
    hits, ppocr_hits = 0, 0
    for text, width in SMALL:
        frame, box = _scene(street, text, width)
        reads = with_model.read(frame, _region(box))
        hits += any(fix_confusables(normalise_plate(r.text)) == text for r in reads)
        ppocr_hits += any(
            fix_confusables(normalise_plate(r.text)) == text for r in ppocr_only.read(frame, _region(box))
        )
    assert hits >= len(SMALL) - 1, f"{hits}/{len(SMALL)} small plates read"
    assert hits >= ppocr_hits


def test_recogniser_reads_a_crop_and_reports_per_character_confidence(street: np.ndarray) -> None:
    frame, (x1, y1, x2, y2) = _scene(street, "AB1234", 90)
    h = y2 - y1
    text, confs = load_plate_recogniser().read(
        frame, (x1 + 0.1 * h, y1 + 0.2 * h, x2 - 0.1 * h, y2 - 0.2 * h)
    )
    assert text == "AB1234"
    assert len(confs) == 6 and all(0.5 < c <= 1.0 for c in confs)


def test_tiny_crop_is_a_clear_error() -> None:
    with pytest.raises(BadInputError, match="smaller than 2x2"):
        prepare_crop(np.zeros((10, 10, 3), np.uint8), (3, 3, 4, 4))


def test_missing_weights_leave_ppocr_alone(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not found"):
        PlateRecogniser(tmp_path / "none.onnx")


def test_ctc_decoding_merges_repeats_and_skips_blanks() -> None:
    probs = np.full((6, 37), 0.001, np.float32)
    for t, cls in enumerate([1, 1, 0, 1, 27, 0]):  # A A _ A 0 _
        probs[t, cls] = 0.9
    assert ctc_best_path(probs)[0] == "AA0"


def test_training_data_keeps_the_benchmark_backgrounds_out() -> None:
    if not DATA.is_dir():
        pytest.skip("opencv-doc sample data missing")
    backgrounds = training_backgrounds(DATA)
    benchmark = [cv2.resize(cv2.imread(str(DATA / n)), (320, 180)) for n in BENCHMARK_BACKGROUNDS]
    for image in backgrounds:
        small = cv2.resize(image, (320, 180))
        assert all(float(np.abs(small.astype(int) - b).mean()) > 1 for b in benchmark)
    rng = np.random.default_rng(0)
    scene = make_scene(rng, backgrounds, text="AB123")
    x1, y1, x2, y2 = scene.ink
    assert 0 <= x1 < x2 <= scene.patch.shape[1] and 0 <= y1 < y2 <= scene.patch.shape[0]
    xs, texts, widths = make_batch(
        1, 4, backgrounds, [(Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"), 1.0)]
    )
    assert xs.shape == (4, 1, 32, 128) and len(texts) == 4 and all(30 <= w <= 230 for w in widths)


def test_large_plates_in_an_unseen_font_keep_ppocrs_read(street: np.ndarray) -> None:
    """The plate recogniser knows only its training fonts: on plates large enough for
    PP-OCR to be sure, PP-OCR's read stands (measured: it would otherwise cost 2% of
    80-250 px plates in DejaVu Serif Condensed Bold)."""
    serif = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerifCondensed-Bold.ttf")
    combined, ppocr = PlateReader(small_plate_reader=load_plate_recogniser()), PlateReader()
    for text, width in (("CV5296", 130), ("VB185", 110), ("AB1234", 160)):
        frame, box = _scene(street, text, width, serif)
        reads = {fix_confusables(normalise_plate(r.text)) for r in combined.read(frame, _region(box))}
        assert text in reads
        assert reads == {fix_confusables(normalise_plate(r.text)) for r in ppocr.read(frame, _region(box))}
