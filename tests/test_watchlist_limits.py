"""Limits on what a watchlist entry or a probe may be (issue 13, items 5 and 8)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from citywatch.errors import BadInputError
from citywatch.images import decode_image
from citywatch.settings import Settings


def _jpeg(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (120, 120, 120)).save(buf, format="JPEG", quality=40)
    return buf.getvalue()


def test_a_probe_over_the_pixel_budget_is_refused_from_its_header() -> None:
    budget = Settings().probe_max_pixels
    assert budget == 25_000_000
    with pytest.raises(
        BadInputError, match=r"6000x4400 px .* the limit is 25,000,000 pixels \(probe_max_pixels\)"
    ):
        decode_image(_jpeg(6000, 4400), "big.jpg", max_pixels=budget)  # 26.4 MP: 39 MP cost 550 MB
    assert decode_image(_jpeg(5000, 4000), "ok.jpg", max_pixels=budget).shape == (4000, 5000, 3)
