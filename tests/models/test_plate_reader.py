"""The real PP-OCRv4 plate reader on rendered plates pasted into a street frame."""

from __future__ import annotations

import numpy as np
import pytest

from citywatch.errors import BadInputError
from citywatch.models.plate_reader import (
    PlateRead,
    PlateReader,
    TextBox,
    group_plate_boxes,
    load_plate_reader,
)
from citywatch.plates import fix_confusables, normalise_plate
from citywatch.sample.plate_render import degrade_plate, paste_plate, render_plate


@pytest.fixture(scope="module")
def reader() -> PlateReader:
    return load_plate_reader()


def _scene(
    street: np.ndarray, text: str, width: int, style: str
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    rng = np.random.default_rng(width)
    plate = render_plate(text, style=style, width_px=width)  # type: ignore[arg-type]
    warped = degrade_plate(
        plate, rng, blur=1.0, rotation_deg=3.0, perspective=0.03, noise=3.0, jpeg_quality=75
    )
    x, y = 500, 420
    frame = paste_plate(street, warped, x, y)
    return frame, (x, y, x + warped.shape[1], y + warped.shape[0])


def _around(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    return x1 - w // 2, y1 - h // 2, x2 + w // 2, y2 + h // 2


def _overlaps(bbox: tuple[float, float, float, float], box: tuple[int, int, int, int]) -> bool:
    return bbox[0] < box[2] and box[0] < bbox[2] and bbox[1] < box[3] and box[1] < bbox[3]


@pytest.mark.parametrize(
    ("text", "width", "style"),
    [("AB1234", 80, "front"), ("KX88", 120, "rear"), ("BATMAN", 200, "front")],
)
def test_reads_rendered_plates_exactly(
    reader: PlateReader, street: np.ndarray, text: str, width: int, style: str
) -> None:
    frame, box = _scene(street, text, width, style)
    for region in (None, _around(box)):  # full frame, then a crop around the plate
        reads = [r for r in reader.read(frame, region) if _overlaps(r.bbox, box)]
        assert len(reads) == 1, (region, reads)
        read = reads[0]
        assert fix_confusables(normalise_plate(read.text)) == text
        assert 0.5 <= read.confidence <= 1.0
        assert len(read.char_confidences) == len(read.text)
        assert all(0.0 <= c <= 1.0 for c in read.char_confidences)
        # the box is in full-frame pixels and covers the plate's text
        cx, cy = (read.bbox[0] + read.bbox[2]) / 2, (read.bbox[1] + read.bbox[3]) / 2
        assert box[0] < cx < box[2] and box[1] < cy < box[3]


def test_reads_nothing_from_a_blank_frame(reader: PlateReader) -> None:
    assert reader.read(np.full((720, 1280, 3), 127, dtype=np.uint8)) == []
    assert reader.read(np.zeros((100, 200, 3), dtype=np.uint8), (10, 10, 150, 90)) == []


def test_identity_and_caching(reader: PlateReader) -> None:
    assert load_plate_reader() is reader
    assert reader.name == "ppocrv4-det+rec"
    assert reader.version == "rapidocr-onnxruntime-1.4.4"


@pytest.mark.parametrize(
    ("image", "region", "message"),
    [
        (np.zeros((10, 10), dtype=np.float32), None, "uint8"),
        (np.zeros((10, 10, 4), dtype=np.uint8), None, "HxWx3"),
        (np.zeros((100, 100, 3), dtype=np.uint8), (200, 200, 300, 300), "region"),
        (np.zeros((100, 100, 3), dtype=np.uint8), (50, 50, 52, 90), "region"),
    ],
)
def test_rejects_bad_input(
    reader: PlateReader, image: np.ndarray, region: tuple[int, int, int, int] | None, message: str
) -> None:
    with pytest.raises(BadInputError, match=message):
        reader.read(image, region)


def _box(text: str, x1: float, y1: float, x2: float, y2: float) -> TextBox:
    return TextBox(text=text, char_confidences=(0.9,) * len(text), x1=x1, y1=y1, x2=x2, y2=y2)


@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        # split on one line with a small gap: joined left to right
        ([_box("1234", 60, 10, 120, 30), _box("AB", 20, 11, 52, 31)], ["AB1234"]),
        # two-line plate: stacked boxes of similar width, top line first
        ([_box("1234", 10, 40, 70, 60), _box("AB", 20, 14, 55, 36)], ["AB1234"]),
        # far apart on one line: two plates
        ([_box("AB12", 0, 10, 60, 30), _box("CD34", 300, 10, 360, 30)], ["AB12", "CD34"]),
        # very different heights: a sign and a plate, not joined
        ([_box("SHOP", 0, 0, 200, 60), _box("AB12", 205, 30, 245, 45)], ["SHOP", "AB12"]),
    ],
)
def test_group_plate_boxes(boxes: list[TextBox], expected: list[str]) -> None:
    groups = group_plate_boxes(boxes)
    assert ["".join(b.text for b in g) for g in groups] == expected


def test_plate_read_is_frozen() -> None:
    read = PlateRead(text="AB1", confidence=0.9, char_confidences=(0.9, 0.9, 0.9), bbox=(0, 0, 1, 1))
    with pytest.raises(AttributeError):
        read.text = "X"  # type: ignore[misc]
