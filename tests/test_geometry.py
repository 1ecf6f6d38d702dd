"""The one Box type's helpers: grow, clip, pixels, union, lerp, IoU."""

from __future__ import annotations

import pytest

from citywatch.geometry import Box, PixelBox, clip, expand, grow, iou, lerp, to_pixels, union


@pytest.mark.parametrize(
    ("box", "margin", "size", "expected"),
    [
        ((10, 10, 20, 20), 0.0, (100, 100), (10, 10, 20, 20)),
        ((10, 10, 20, 20), 0.5, (100, 100), (5, 5, 25, 25)),
        ((10.2, 10.7, 19.1, 19.9), 0.0, (100, 100), (10, 10, 20, 20)),  # covers the box
        ((2, 3, 12, 13), 0.5, (100, 100), (0, 0, 17, 18)),  # clipped at the top-left
        ((90, 90, 100, 100), 0.5, (95, 98), (85, 85, 95, 98)),  # and at the bottom-right
        ((10, 10, 30, 20), 0.25, (100, 100), (5, 7, 35, 23)),  # margin x width / x height
    ],
)
def test_grow(box: Box, margin: float, size: tuple[int, int], expected: PixelBox) -> None:
    assert grow(box, margin, *size) == expected


def test_expand_clip_and_pixels() -> None:
    assert expand((10, 10, 20, 20), 3, 1) == (7, 9, 23, 21)
    assert clip((-5.5, 2, 120, 80.5), 100, 80) == (0, 2, 100, 80)
    assert to_pixels((1.5, 2.5, 3.5, 4.5)) == (1, 2, 4, 5)
    assert to_pixels((1.5, 2.5, 3.5, 4.5), outward=False) == (1, 2, 3, 4)
    assert all(isinstance(v, int) for v in to_pixels((1.5, 2.5, 3.5, 4.5)))


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),
        ((0, 0, 10, 10), (5, 0, 15, 10), 50 / 150),
        ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),  # touching edges do not overlap
        ((0, 0, 0, 0), (0, 0, 0, 0), 0.0),  # empty boxes: no division by zero
    ],
)
def test_iou(a: Box, b: Box, expected: float) -> None:
    assert iou(a, b) == pytest.approx(expected)
    assert iou(b, a) == pytest.approx(expected)


def test_union_and_lerp() -> None:
    assert union((0, 5, 10, 10), (3, 0, 12, 8)) == (0, 0, 12, 10)
    assert lerp((0, 0, 10, 10), (10, 20, 30, 40), 0.5) == (5, 10, 20, 25)
    assert lerp((0, 0, 10, 10), (10, 20, 30, 40), 0.0) == (0, 0, 10, 10)
